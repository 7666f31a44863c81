package blockstore

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"shoal/internal/catalogdb"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configure a Store (Open).
type Options struct {
	// Dirs are the node's local directories (the node's --dir list, shared
	// with the shuffle service). Required. Disk blocks of application APP
	// live in DIR/APP/blocks/, DIR chosen among Dirs by a hash of the block
	// ID.
	Dirs []string
	// DB is the pebble database to keep the catalogue in: the node
	// service passes its own catalogue, opened with internal/catalogdb for
	// the same Dirs, so that the node has one catalogue (docs/DESIGN.md §3).
	// The store then writes only keys under "b/", and does not close DB:
	// its owner closes it after the Store. If DB is nil the store opens
	// and owns a database of its own in Dirs[0]/.blocks-catalog (on
	// CatalogFS).
	DB *pebble.DB
	// MemoryBytes bounds the bytes of blocks held in memory (the node's
	// --cache-bytes). Zero means no memory tier: only DiskOnly Puts are
	// accepted. Must not be negative.
	MemoryBytes int64
	// Logger receives the store's log; it is given component=blockstore.
	// Default: discard.
	Logger *slog.Logger
	// CatalogFS is the file system of the store's own pebble catalogue
	// (DB nil). Default vfs.Default (the OS); tests may pass vfs.NewMem()
	// (the catalogue then survives a reopen only if the same FS is passed
	// again).
	CatalogFS vfs.FS
}

// EnsureDefaults replaces zero fields by their defaults.
func (o *Options) EnsureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.CatalogFS == nil {
		o.CatalogFS = vfs.Default
	}
}

// Validate reports every problem of o at once. Call it after
// EnsureDefaults (Open does both).
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: options: "+format, append([]any{ErrInvalidArgument}, args...)...))
	}
	for _, p := range catalogdb.DirsProblems(o.Dirs) {
		bad("%s", p)
	}
	if o.MemoryBytes < 0 {
		bad("MemoryBytes %d is negative (pass --cache-bytes 0 for a disk-only store)", o.MemoryBytes)
	}
	if o.Logger == nil {
		bad("Logger is nil (call EnsureDefaults)")
	}
	if o.CatalogFS == nil && o.DB == nil {
		bad("CatalogFS is nil (call EnsureDefaults)")
	}
	return errors.Join(errs...)
}
