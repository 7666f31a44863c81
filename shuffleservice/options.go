package shuffleservice

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/prometheus/client_golang/prometheus"

	"shoal/internal/catalogdb"
	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/shuffle"
)

// Defaults of Options.
const (
	DefaultIndexCacheBytes     = 64 << 20
	DefaultAppTTL              = 2 * time.Minute
	DefaultMaxBlocksPerRequest = 65536
	DefaultChunkSize           = nodewire.DefaultChunkSize
	// DefaultCacheBytes is `shoal node --cache-bytes`'s default, the
	// memory tier of the block store. (Options.CacheBytes 0 means no
	// memory tier.)
	DefaultCacheBytes         = 256 << 20
	DefaultMaxBlockBytes      = 512 << 20
	DefaultBlockBytesInFlight = 1 << 30

	// maxChunkSize keeps a chunk plus one maximal frame under the
	// largest message.
	maxChunkSize = nodewire.MaxChunkSize
)

// Options configure a node service (Open). The zero value of every field
// but Dirs is replaced by its default in EnsureDefaults.
type Options struct {
	// Dirs are the node's local directories, where map outputs are written
	// (one per disk, say). Required. The durable catalogue lives in
	// Dirs[0]/.catalog. A directory must not be shared with anything else:
	// at startup the node deletes what it does not recognise in it.
	Dirs []string
	// IndexCacheBytes bounds the memory held by decoded index files
	// (8 bytes per offset). Default 64 MiB.
	IndexCacheBytes int64
	// AppTTL is how long an application registered without its own TTL
	// lives without a heartbeat before the node removes it and its files.
	// Default 2 minutes.
	AppTTL time.Duration
	// JanitorInterval is how often expired applications are looked for.
	// Default AppTTL/4.
	JanitorInterval time.Duration
	// MaxBlocksPerRequest bounds the blocks one Fetch may ask for.
	// Default 65536.
	MaxBlocksPerRequest int
	// ChunkSize is the most bytes of whole frames that one FetchChunk
	// carries; a single frame larger than ChunkSize goes alone. Default
	// 1 MiB, at most 8 MiB.
	ChunkSize int
	// CacheBytes bounds the bytes of cached blocks the block store holds
	// in memory (`shoal node --cache-bytes`, whose default is
	// DefaultCacheBytes). Zero means no memory tier: only DiskOnly blocks
	// are accepted.
	CacheBytes int64
	// MaxBlockBytes is the largest block PutBlock accepts; a larger one is
	// refused (InvalidArgument) from its header, before any of it is
	// received. A block is held whole in memory while it is received (and
	// while a disk block is read for GetBlock), so this bounds what one
	// call can cost. Default 512 MiB.
	MaxBlockBytes int64
	// BlockBytesInFlight bounds the bytes of all PutBlock calls being
	// received at once: a put waits until its size fits. At least
	// MaxBlockBytes. Default 1 GiB, or MaxBlockBytes if that is larger.
	BlockBytesInFlight int64
	// Logger receives the node's log; it is given component=shuffle (the
	// block store's, component=blockstore).
	// Default: discard.
	Logger *slog.Logger
	// CatalogFS is the file system of the pebble catalogue (shared by the
	// shuffle service and the block store). Default
	// vfs.Default (the OS); tests may pass vfs.NewMem().
	CatalogFS vfs.FS
	// Addr is the node's advertised address, reported by Status only. If
	// empty, Serve fills in its listener's address.
	Addr string
	// Registry, if set, receives the node's Prometheus metrics
	// (metrics.go; `shoal node --metrics-addr` serves them). One per
	// process, made by its main: the package keeps no global one.
	Registry prometheus.Registerer
}

// EnsureDefaults replaces zero fields by their defaults.
func (o *Options) EnsureDefaults() {
	if o.IndexCacheBytes == 0 {
		o.IndexCacheBytes = DefaultIndexCacheBytes
	}
	if o.AppTTL == 0 {
		o.AppTTL = DefaultAppTTL
	}
	if o.JanitorInterval == 0 {
		o.JanitorInterval = o.AppTTL / 4
		if o.JanitorInterval <= 0 {
			o.JanitorInterval = time.Millisecond
		}
	}
	if o.MaxBlocksPerRequest == 0 {
		o.MaxBlocksPerRequest = DefaultMaxBlocksPerRequest
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.MaxBlockBytes == 0 {
		o.MaxBlockBytes = DefaultMaxBlockBytes
	}
	if o.BlockBytesInFlight == 0 {
		o.BlockBytesInFlight = max(DefaultBlockBytesInFlight, o.MaxBlockBytes)
	}
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
		errs = append(errs, fmt.Errorf("%w: options: "+format, append([]any{shuffle.ErrInvalidArgument}, args...)...))
	}
	for _, p := range catalogdb.DirsProblems(o.Dirs) {
		bad("%s", p)
	}
	if o.IndexCacheBytes < 0 {
		bad("IndexCacheBytes %d is negative", o.IndexCacheBytes)
	}
	if o.AppTTL < 0 {
		bad("AppTTL %v is negative", o.AppTTL)
	}
	if o.JanitorInterval < 0 {
		bad("JanitorInterval %v is negative", o.JanitorInterval)
	}
	if o.MaxBlocksPerRequest < 0 {
		bad("MaxBlocksPerRequest %d is negative", o.MaxBlocksPerRequest)
	}
	if o.ChunkSize < 0 || o.ChunkSize > maxChunkSize {
		bad("ChunkSize %d is outside [1, %d]", o.ChunkSize, maxChunkSize)
	}
	if o.CacheBytes < 0 {
		bad("CacheBytes %d is negative (0 means no memory tier: --cache-bytes 0)", o.CacheBytes)
	}
	if o.MaxBlockBytes < 0 {
		bad("MaxBlockBytes %d is negative", o.MaxBlockBytes)
	}
	if o.BlockBytesInFlight < o.MaxBlockBytes {
		bad("BlockBytesInFlight %d is below MaxBlockBytes %d (a block of the maximum size could never be received)", o.BlockBytesInFlight, o.MaxBlockBytes)
	}
	return errors.Join(errs...)
}
