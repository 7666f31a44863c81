package launcher

import "errors"

// The launcher's sentinel errors. Callers match them with errors.Is; the
// node service turns them into gRPC codes in one place
// (shuffleservice/internal/nodewire), and nodeclient restores them.
var (
	// ErrInvalidArgument: a bad digest, a binary whose size or digest is
	// not the announced one, a bad environment or argument list, too
	// many workers. (InvalidArgument)
	ErrInvalidArgument = errors.New("launcher: invalid argument")
	// ErrCannotRun: the node cannot run this binary (not an ELF
	// executable, another architecture, dynamically linked); the message
	// says how to build one it can. (FailedPrecondition)
	ErrCannotRun = errors.New("launcher: the node cannot run this binary")
	// ErrAppNotRegistered: StartWorkers for an application the node does
	// not know (register it first). (FailedPrecondition)
	ErrAppNotRegistered = errors.New("launcher: application not registered")
	// ErrUnknownBinary: no binary of that digest in the node's cache
	// (upload it first). (NotFound)
	ErrUnknownBinary = errors.New("launcher: binary not in the node's cache")
	// ErrUnknownWorker: StopWorker of a worker the node does not run.
	// (NotFound)
	ErrUnknownWorker = errors.New("launcher: unknown worker")
	// ErrTooLarge: a binary above the node's maximum, or a cache whose
	// binaries are all in use. (ResourceExhausted)
	ErrTooLarge = errors.New("launcher: no room")
	// ErrClosed: the launcher is closed. (Unavailable)
	ErrClosed = errors.New("launcher: closed")
)
