package compute

import (
	"errors"
	"fmt"
)

// Sentinel errors; test them with errors.Is.
var (
	// ErrClosed: the endpoint is closed or shutting down.
	ErrClosed = errors.New("compute: endpoint closed")
	// ErrWorkerGone: the worker named in a call is not connected (never
	// was, or was lost). Its tasks must be placed elsewhere.
	ErrWorkerGone = errors.New("compute: worker not connected")
	// ErrDriverLost: a worker's stream to its driver broke; RunWorker
	// returns it (wrapped with the cause) and the worker process exits.
	ErrDriverLost = errors.New("compute: lost the driver")
)

// UserError marks an error of the task's own code (a user function that
// returned an error), as opposed to the infrastructure (a fetch, a disk, a
// node). A Runner returns it, as a value or a pointer, and the worker
// reports the task FAILED with user_error set; the driver then knows that
// retrying on another worker is unlikely to help.
type UserError struct {
	Err error
}

func (e UserError) Error() string {
	if e.Err == nil {
		return "user error"
	}
	return e.Err.Error()
}

func (e UserError) Unwrap() error { return e.Err }

// isUserError reports whether err is, or wraps, a UserError or a panic.
func isUserError(err error) bool {
	var v UserError
	var p *UserError
	var pe *panicError
	return errors.As(err, &v) || errors.As(err, &p) || errors.As(err, &pe)
}

// panicError is a panic of Runner.Run, recovered by the worker.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("panic: %v\n\n%s", e.value, e.stack)
}
