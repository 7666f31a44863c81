package shuffle

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors of the shuffle: of the writers and the reader here, and
// of the node service (package shuffleservice), whose errors the node
// client (package nodeclient) turns back into these. Callers test them
// with errors.Is; the node translates each to one gRPC status
// (shuffleservice/internal/nodewire) and the client translates it back,
// so they survive the wire.
var (
	// ErrInvalidArgument: a request is malformed (bad ID, bad range, too
	// large). Retrying the same request fails the same way.
	ErrInvalidArgument = errors.New("shuffle: invalid argument")
	// ErrUnknownApp: the node has no such application (never registered,
	// removed, or expired after its TTL).
	ErrUnknownApp = errors.New("shuffle: unknown application")
	// ErrNoMapOutput: the node holds no committed output for a map task.
	ErrNoMapOutput = errors.New("shuffle: no such map output")
	// ErrOutOfRange: a reduce partition outside [0, R).
	ErrOutOfRange = errors.New("shuffle: partition out of range")
	// ErrCorrupt: bytes on disk or on the wire fail their checksum or do not
	// parse. Corrupt data is never returned as records.
	ErrCorrupt = errors.New("shuffle: corrupt data")
	// ErrClosed: the writer, reader or server is closed.
	ErrClosed = errors.New("shuffle: closed")
	// ErrUnauthenticated: a call about an application carries no
	// application token.
	ErrUnauthenticated = errors.New("shuffle: unauthenticated")
	// ErrPermissionDenied: a call about an application carries another
	// application's token.
	ErrPermissionDenied = errors.New("shuffle: permission denied")
	// ErrQueueFull: the node's checkpoint upload queue has no room for a
	// hand-off (PutCheckpoint). Retrying later succeeds once uploads
	// have finished.
	ErrQueueFull = errors.New("shuffle: checkpoint upload queue full")
	// ErrNoCheckpointStore: the node has no checkpoint store, or another
	// one than the call names (`node --checkpoint-dir`).
	ErrNoCheckpointStore = errors.New("shuffle: not this node's checkpoint store")
	// ErrCheckpointStore: the node could not read from its checkpoint
	// store (unreachable, refused, or the object is not there).
	ErrCheckpointStore = errors.New("shuffle: checkpoint store read failed")
)

// corruptf returns an error wrapping ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// FetchFailedError reports that a block of a map output could not be had
// from its node after retries. The driver reacts by recomputing that map
// output (and, for a lost node, every output the node held).
type FetchFailedError struct {
	App     string
	Shuffle uint32
	Map     uint32
	Reduce  int
	Node    string // the node service's address
	Err     error  // the cause: ErrCorrupt, ErrNoMapOutput, a network error...
}

func (e *FetchFailedError) Error() string {
	return fmt.Sprintf("shuffle: fetch failed: app %s shuffle %d map %d reduce %d from node %s: %v",
		e.App, e.Shuffle, e.Map, e.Reduce, e.Node, e.Err)
}

func (e *FetchFailedError) Unwrap() error { return e.Err }

// IsRetryable reports whether a failed call to a node service may succeed
// if made again: the node was unreachable, overloaded, or the call was cut
// off in flight. A corrupt block is retryable once (it may have been
// damaged on the wire); the reader decides that, not this function.
func IsRetryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.DeadlineExceeded:
		return true
	}
	return false
}
