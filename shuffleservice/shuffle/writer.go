package shuffle

import (
	"context"
	"fmt"
	"time"

	"shoal/shuffleservice/shufflepb"
)

// Mode selects the map-output writer.
type Mode uint8

const (
	// ModeSort buffers records in a bounded arena, sorts them by
	// (partition, key), spills sorted runs and merges them into one data
	// file and one index file. The default.
	ModeSort Mode = iota
	// ModeBypass keeps one buffer per reduce partition and concatenates
	// them into the same data + index pair: no sort, for few partitions
	// and no map-side combine.
	ModeBypass
	// ModeHash writes one file per reduce partition: M×R files.
	ModeHash
)

func (m Mode) String() string {
	switch m {
	case ModeSort:
		return "sort"
	case ModeBypass:
		return "bypass"
	case ModeHash:
		return "hash"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseMode parses "sort", "bypass" or "hash".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "sort":
		return ModeSort, nil
	case "bypass":
		return ModeBypass, nil
	case "hash":
		return ModeHash, nil
	}
	return 0, fmt.Errorf("%w: shuffle mode %q (want sort, bypass or hash)", ErrInvalidArgument, s)
}

// CombineFunc merges two values of the same key: it appends the merged
// value to dst and returns it. It must not retain a or b.
type CombineFunc func(dst, a, b []byte) []byte

// DefaultMemoryLimit bounds a writer's buffered records.
const DefaultMemoryLimit = 64 << 20

// WriterOptions configure a map-output writer.
type WriterOptions struct {
	// Layout is the node's local directories (from RegisterWorker).
	Layout Layout
	// App, Shuffle, Map and Attempt identify the map output.
	App     string
	Shuffle uint32
	Map     uint32
	Attempt uint32
	// Epoch is recorded with the commit (see shufflepb.MapOutput).
	Epoch uint64
	// Partitions is R, the number of reduce partitions, in [1, MaxPartitions].
	Partitions int
	// Mode selects the writer; default ModeSort.
	Mode Mode
	// Codec compresses frames; default DefaultCodec.
	Codec Codec
	// MemoryLimit bounds the bytes of buffered records (and, in sort mode,
	// their sort entries); default DefaultMemoryLimit. Reaching it spills.
	MemoryLimit int
	// SpillCodec compresses the sort writer's spilled runs; default
	// CodecNone. Runs live only until the merge and usually stay in the
	// page cache, where compressing them costs more CPU than the bytes it
	// saves; set it to Codec where disks are slow.
	SpillCodec Codec
	// FrameSize is the raw size at which a frame is closed; default
	// DefaultFrameSize.
	FrameSize int
	// Buffers, if set, lends and takes back the sort writer's memory, so
	// that consecutive map tasks reuse it (see BufferPool).
	Buffers *BufferPool
	// Combine, if set, merges the values of equal keys on the map side
	// (sort mode only).
	Combine CombineFunc
}

// Committer records a finished map output with its node service.
// nodeclient.Client implements it, and shuffleservice.Server.Committer
// commits in process; tests may use a fake.
type Committer interface {
	CommitMapOutput(ctx context.Context, app string, out *shufflepb.MapOutput) (committed *shufflepb.MapOutput, err error)
}

// Writer writes one map task's output. Records are handed to Write in any
// order; nothing is visible to readers until Commit returns. Every error
// path ends in Discard, which removes whatever was written.
type Writer interface {
	// Write adds a record for reduce partition p.
	Write(p int, key, value []byte) error
	// Commit finishes the files, renames them to their final names and
	// commits them to the node service. It returns the output the node now
	// serves (possibly an earlier attempt's, if that one was reused).
	Commit(ctx context.Context, c Committer) (*shufflepb.MapOutput, error)
	// Discard removes every file the writer created. Safe after Commit (it
	// then does nothing) and safe to call twice.
	Discard() error
	// Stats reports what the writer did so far.
	Stats() WriterStats
}

// WriterStats describe a writer's work.
type WriterStats struct {
	Records      int64         // records written
	BytesWritten int64         // bytes of final files on disk
	Spills       int           // sorted runs spilled (sort mode)
	SpillBytes   int64         // bytes of spilled runs
	SpillTime    time.Duration // time spent spilling runs
	FilesCreated int           // final files
	PeakMemory   int64         // peak buffered bytes, never above MemoryLimit
}
