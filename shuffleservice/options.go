package shuffleservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/prometheus/client_golang/prometheus"

	"shoal/checkpoint"
	"shoal/internal/catalogdb"
	"shoal/internal/ident"
	"shoal/objstore"
	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/launcher"
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
	// Defaults of the checkpoint uploader's Options.
	DefaultCheckpointUploads    = 4
	DefaultCheckpointQueueBytes = 1 << 30
	DefaultCheckpointCopyBytes  = 1 << 30
	// DefaultMaxStreamsPerApp is Options.MaxStreamsPerApp's default.
	DefaultMaxStreamsPerApp = 256

	// DefaultMaxBinaryBytes bounds an executable PutBinary accepts
	// (`shoal node --max-binary-bytes`); DefaultMaxBinaries is how many
	// the binary cache keeps.
	DefaultMaxBinaryBytes = launcher.DefaultMaxBinaryBytes
	DefaultMaxBinaries    = launcher.DefaultMaxBinaries
	// DefaultWorkers is how many workers StartWorkers starts when its
	// request says 0 (`shoal node --workers`); MaxWorkers bounds both.
	DefaultWorkers = 2
	MaxWorkers     = launcher.MaxWorkers
	// maxNameLen keeps a worker ID, w-NAME-K, within an ID's 128
	// characters.
	maxNameLen = 100

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
	// MaxStreamsPerApp bounds the streaming calls (Fetch, GetBlock,
	// PutBlock) one application may have open on the node at once; one
	// more is refused with ResourceExhausted, so that an application that
	// opens streams and never reads them holds a bounded share of the
	// node and the others keep being served. Default 256.
	MaxStreamsPerApp int
	// Logger receives the node's log; it is given component=shuffle (the
	// block store's, component=blockstore).
	// Default: discard.
	Logger *slog.Logger
	// CatalogFS is the file system of the pebble catalogue (shared by the
	// shuffle service and the block store). Default
	// vfs.Default (the OS); tests may pass vfs.NewMem().
	CatalogFS vfs.FS
	// Addr is the node's advertised address (`shoal node --advertise`):
	// what Status reports and what the workers it starts are told
	// (SHOAL_NODE). If empty, Serve fills in its listener's address.
	Addr string
	// Name identifies the node (`shoal node --name`). It is stored in the
	// catalogue on the first start; Open refuses directories whose
	// catalogue holds another name (a directory is one node's), so a
	// node restarted on its directories at another address is the same
	// node. It names the workers the node starts (w-NAME-K): nodes that
	// share a host need names of their own. An ID (letters, digits, '.',
	// '_', '-'; at most 100 characters). Default: the OS hostname.
	Name string
	// ClusterSecret, if set, is required of every call: the gRPC metadata
	// key shoal-cluster-secret must carry it (admission.go). The node
	// also gives it to the workers it starts (SHOAL_CLUSTER_SECRET).
	// RunNode refuses to serve on an address other than loopback
	// without one. Never logged.
	ClusterSecret string
	// TLSDir, if set, is the node's identity (`shoal node --tls-dir`):
	// ca.crt, tls.crt and tls.key (package internal/pki). The node then
	// serves only mutual TLS 1.3: a client must present a certificate of
	// the same CA. Open fails if the files are missing, unreadable, not
	// of one CA or expired. The node also gives the directory to the
	// workers it starts (SHOAL_TLS_DIR), which present its certificate.
	// RunNode refuses to serve on an address other than loopback
	// without it.
	TLSDir string
	// MaxBinaryBytes is the largest executable PutBinary accepts; a
	// larger one is refused (ResourceExhausted) from its header. Default
	// 512 MiB.
	MaxBinaryBytes int64
	// MaxBinaries is how many executables the binary cache keeps: the
	// least recently used one that no running worker uses is removed to
	// make room. Default 8.
	MaxBinaries int
	// Workers is how many workers StartWorkers starts when its request
	// says 0 (`shoal node --workers`). Default 2, at most MaxWorkers.
	Workers int
	// CheckpointDir is the checkpoint store whose partitions the node
	// holds and uploads (`shoal node --checkpoint-dir`: s3://bucket/prefix
	// or file:///abs/path; uploader.go). A hand-off naming another store
	// is refused; empty refuses them all. The store is opened, with
	// CheckpointS3, when first needed.
	CheckpointDir string
	// CheckpointS3 is the S3 client of an s3:// CheckpointDir: endpoint
	// (`--s3-endpoint`, else $AWS_ENDPOINT_URL), credentials
	// ($AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY: only the nodes hold
	// them), retries and timeouts. Never logged.
	CheckpointS3 objstore.Options
	// CheckpointUploads is how many partitions the node uploads at once
	// (`--checkpoint-uploads`). Default 4.
	CheckpointUploads int
	// CheckpointQueueBytes bounds the bytes of partitions handed to the
	// node and not yet durable in the store (`--checkpoint-queue-bytes`):
	// a hand-off that would exceed it is refused with ResourceExhausted,
	// and the task tries again. At least MaxBlockBytes. Default 1 GiB.
	CheckpointQueueBytes int64
	// CheckpointCopyBytes bounds the local copies of durable partitions
	// the node keeps to serve reads (`--checkpoint-copy-bytes`): the
	// least recently used are deleted beyond it. Default 1 GiB; negative
	// keeps none.
	CheckpointCopyBytes int64
	// CheckpointPutTimeout bounds one upload (or store read) of a
	// partition. Default 2 minutes.
	CheckpointPutTimeout time.Duration
	// CheckpointMaxBackoff is the longest pause between two attempts of
	// an upload (100 ms doubling up to it). Default 5 s.
	CheckpointMaxBackoff time.Duration
	// OpenCheckpointStore, if set, opens the checkpoint store instead of
	// checkpoint.Open(ctx, CheckpointDir, CheckpointS3): for tests.
	OpenCheckpointStore func(ctx context.Context) (checkpoint.Store, error)
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
	if o.MaxStreamsPerApp == 0 {
		o.MaxStreamsPerApp = DefaultMaxStreamsPerApp
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
	if o.Name == "" {
		if h, err := os.Hostname(); err == nil {
			o.Name = h
		}
	}
	if o.MaxBinaryBytes == 0 {
		o.MaxBinaryBytes = DefaultMaxBinaryBytes
	}
	if o.MaxBinaries == 0 {
		o.MaxBinaries = DefaultMaxBinaries
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	if o.CheckpointUploads == 0 {
		o.CheckpointUploads = DefaultCheckpointUploads
	}
	if o.CheckpointQueueBytes == 0 {
		o.CheckpointQueueBytes = max(DefaultCheckpointQueueBytes, o.MaxBlockBytes)
	}
	if o.CheckpointCopyBytes == 0 {
		o.CheckpointCopyBytes = DefaultCheckpointCopyBytes
	}
	if o.CheckpointPutTimeout == 0 {
		o.CheckpointPutTimeout = 2 * time.Minute
	}
	if o.CheckpointMaxBackoff == 0 {
		o.CheckpointMaxBackoff = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.CatalogFS == nil {
		o.CatalogFS = vfs.Default
	}
}

// openCheckpointStore opens CheckpointDir.
func (o *Options) openCheckpointStore(ctx context.Context) (checkpoint.Store, error) {
	if o.OpenCheckpointStore != nil {
		return o.OpenCheckpointStore(ctx)
	}
	return checkpoint.Open(ctx, o.CheckpointDir, o.CheckpointS3)
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
	if o.MaxStreamsPerApp < 0 {
		bad("MaxStreamsPerApp %d is negative", o.MaxStreamsPerApp)
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
	switch {
	case o.Name == "":
		bad("Name is empty and the OS gives no hostname (give the node a name: --name)")
	case !ident.Valid(o.Name) || len(o.Name) > maxNameLen:
		bad("Name %q must be 1-%d characters of letters, digits, '.', '_' or '-', starting with a letter or digit (give another: --name)", o.Name, maxNameLen)
	}
	if o.MaxBinaryBytes < 0 {
		bad("MaxBinaryBytes %d is negative", o.MaxBinaryBytes)
	}
	if o.MaxBinaries < 0 {
		bad("MaxBinaries %d is negative", o.MaxBinaries)
	}
	if o.Workers < 0 || o.Workers > MaxWorkers {
		bad("Workers %d is outside [1, %d]", o.Workers, MaxWorkers)
	}
	if o.CheckpointUploads < 0 || o.CheckpointUploads > 64 {
		bad("CheckpointUploads %d is outside [1, 64]", o.CheckpointUploads)
	}
	if o.CheckpointQueueBytes < o.MaxBlockBytes {
		bad("CheckpointQueueBytes %d is below MaxBlockBytes %d (a partition of the maximum size could never be handed over)", o.CheckpointQueueBytes, o.MaxBlockBytes)
	}
	if o.CheckpointPutTimeout < 0 || o.CheckpointMaxBackoff < 0 {
		bad("CheckpointPutTimeout %v and CheckpointMaxBackoff %v may not be negative", o.CheckpointPutTimeout, o.CheckpointMaxBackoff)
	}
	if u := o.CheckpointDir; u != "" && !strings.HasPrefix(u, "s3://") && !strings.HasPrefix(u, "file:///") && !filepath.IsAbs(u) {
		bad("CheckpointDir %q: want s3://bucket/prefix, file:///abs/path or an absolute path", u)
	}
	return errors.Join(errs...)
}
