package blockstore

import (
	"errors"
	"fmt"
)

// Sentinel errors, tested with errors.Is. When the store gets a gRPC
// service, each will map to one status code there (as shuffleservice's
// status.go does), in one place.
var (
	// ErrInvalidArgument: a malformed request or option (bad ID, unknown
	// level, a memory level on a store without memory). Retrying the same
	// request fails the same way.
	ErrInvalidArgument = errors.New("blockstore: invalid argument")
	// ErrCorrupt: a block file fails its checksum, does not parse or has
	// vanished. Its bytes are never returned; the block is removed and must
	// be recomputed (or read from a replica).
	ErrCorrupt = errors.New("blockstore: corrupt block")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("blockstore: closed")
)

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}
