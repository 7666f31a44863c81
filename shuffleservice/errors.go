package shuffleservice

import (
	"fmt"

	"shoal/shuffleservice/shuffle"
)

// The node service's errors are package shuffle's sentinels (shuffle.ErrCorrupt,
// shuffle.ErrUnknownApp...) and the block store's, wrapped with what
// happened to what; nodewire.ToStatus puts them on the wire.

// corruptf returns an error wrapping shuffle.ErrCorrupt.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{shuffle.ErrCorrupt}, args...)...)
}
