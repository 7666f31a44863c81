package shuffle

import (
	"errors"
	"fmt"
	"math"
	"os"
)

// minMemoryLimit is the smallest MemoryLimit a writer accepts: room for a
// few small records and their sort entries (tests use such tiny limits to
// force spills).
const minMemoryLimit = 64

// NewWriter returns the map-output writer selected by opts.Mode. It fills
// zero MemoryLimit and FrameSize with their defaults (the zero Codec is
// CodecNone and stays so: pass DefaultCodec explicitly), validates every
// option and creates the map's directory.
func NewWriter(opts WriterOptions) (Writer, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	base, err := newWriterBase(opts)
	if err != nil {
		return nil, err
	}
	switch opts.Mode {
	case ModeSort:
		return newSortWriter(base)
	default: // ModeBypass, ModeHash; Validate rejected anything else
		return newBucketWriter(base)
	}
}

// EnsureDefaults fills the zero MemoryLimit and FrameSize with
// DefaultMemoryLimit and DefaultFrameSize. Mode and Codec keep their zero
// values (ModeSort, CodecNone), which are valid choices.
func (o *WriterOptions) EnsureDefaults() {
	if o.MemoryLimit == 0 {
		o.MemoryLimit = DefaultMemoryLimit
	}
	if o.FrameSize == 0 {
		o.FrameSize = DefaultFrameSize
	}
}

// Validate reports every problem of the options at once.
func (o *WriterOptions) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: writer: "+format, append([]any{ErrInvalidArgument}, args...)...))
	}
	if err := ValidateID("application", o.App); err != nil {
		errs = append(errs, err)
	}
	if len(o.Layout.Dirs) == 0 {
		bad("layout has no local directories (pass the dirs from RegisterWorker)")
	}
	for _, d := range o.Layout.Dirs {
		if d == "" {
			bad("layout holds an empty directory name")
		}
	}
	if o.Partitions < 1 || o.Partitions > MaxPartitions {
		bad("partitions %d outside [1, %d]", o.Partitions, MaxPartitions)
	}
	if o.Mode > ModeHash {
		bad("mode %v unknown (want sort, bypass or hash)", o.Mode)
	}
	if o.Codec > CodecZstd {
		bad("codec %v unknown (want none, s2 or zstd)", o.Codec)
	}
	if o.Combine != nil && o.Mode != ModeSort {
		bad("map-side combine needs mode sort, not %v", o.Mode)
	}
	if o.MemoryLimit < minMemoryLimit || o.MemoryLimit > math.MaxUint32 {
		bad("memory limit %d outside [%d, %d]", o.MemoryLimit, minMemoryLimit, uint64(math.MaxUint32))
	}
	if o.FrameSize < 1 || o.FrameSize > MaxFrameRaw {
		bad("frame size %d outside [1, %d]", o.FrameSize, MaxFrameRaw)
	}
	return errors.Join(errs...)
}

// maxRecordSize is the largest encoded record a writer accepts: a record
// must fit in one frame and in the writer's memory.
func (o *WriterOptions) maxRecordSize() int {
	return min(MaxFrameRaw, o.MemoryLimit-sortEntrySize)
}

// checkRecord validates one Write call.
func (o *WriterOptions) checkRecord(p int, key, value []byte) (int, error) {
	if p < 0 || p >= o.Partitions {
		return 0, fmt.Errorf("%w: writer: partition %d outside [0, %d)", ErrOutOfRange, p, o.Partitions)
	}
	n := recordSize(key, value)
	if n > o.maxRecordSize() {
		return 0, fmt.Errorf("%w: writer: record of %d bytes (key %d, value %d) exceeds the limit of %d bytes (raise MemoryLimit; a record must also fit in a %d-byte frame)",
			ErrInvalidArgument, n, len(key), len(value), o.maxRecordSize(), MaxFrameRaw)
	}
	return n, nil
}

// mkdirMap creates the map output's directory.
func mkdirMap(o *WriterOptions) (string, error) {
	dir := o.Layout.MapDir(o.App, o.Shuffle, o.Map)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("shuffle: writer: create map directory: %w", err)
	}
	return dir, nil
}
