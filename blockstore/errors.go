package blockstore

import (
	"errors"
	"fmt"
)

// Sentinel errors, tested with errors.Is. The node service maps each to
// one gRPC status code, in shuffleservice/status.go, and its client maps
// them back, so they match across the wire too.
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
