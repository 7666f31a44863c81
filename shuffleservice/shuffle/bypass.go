package shuffle

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"

	"shoal/shuffleservice/shufflepb"
)

// bucketWriter is ModeBypass and ModeHash: records are not sorted but
// appended to a raw buffer of their partition; a full buffer becomes one
// frame appended to the partition's file. In bypass mode the R files are
// temporary and Commit concatenates them into one data file (Spark's
// bypass-merge); in hash mode they are the output (hash.go).
//
// Memory: a buffer holds min(FrameSize, MemoryLimit/R) bytes, at least 512
// (or FrameSize, or MemoryLimit, if smaller). At most MemoryLimit/buffer buffers exist; a
// partition that needs one when all are taken flushes the buffer of
// another (clock order) and takes it over. Files are written frame by frame
// without a write buffer. A record larger than a buffer is framed alone
// (through a scratch buffer outside the limit).
type bucketWriter struct {
	*writerBase
	per     int      // capacity of a buffer
	pool    int      // most buffers that may exist
	bufs    [][]byte // bufs[r]: partition r's buffer, nil if it holds none
	holders []int32  // partitions holding a buffer, in clock order
	hand    int
	big     []byte // scratch for a record larger than a buffer

	files []*os.File // files[r]: partition r's file, opened lazily
	paths []string   // paths[r]: its (temporary) name
	sizes []int64    // bytes written to file r
}

func newBucketWriter(b *writerBase) (*bucketWriter, error) {
	o := &b.opts
	per := min(max(min(o.FrameSize, o.MemoryLimit/o.Partitions), min(512, o.FrameSize)), o.MemoryLimit)
	w := &bucketWriter{
		writerBase: b,
		per:        per,
		pool:       max(1, o.MemoryLimit/per),
		bufs:       make([][]byte, o.Partitions),
		files:      make([]*os.File, o.Partitions),
		paths:      make([]string, o.Partitions),
		sizes:      make([]int64, o.Partitions),
	}
	return w, nil
}

// filePath is the temporary name of partition r's file.
func (w *bucketWriter) filePath(r int) string {
	if w.opts.Mode == ModeHash {
		return w.tempPath(w.hashPath(r), "")
	}
	return w.tempPath(w.dataPath(), "r-"+strconv.Itoa(r)+"-")
}

// Write adds a record for reduce partition p.
func (w *bucketWriter) Write(p int, key, value []byte) error {
	if w.state != stateOpen {
		return w.checkOpen()
	}
	n, err := w.opts.checkRecord(p, key, value)
	if err != nil {
		return err
	}
	buf := w.bufs[p]
	if buf == nil {
		if buf, err = w.acquire(p); err != nil {
			return w.fail(err)
		}
	}
	if len(buf)+n > cap(buf) {
		if len(buf) > 0 {
			if err := w.flush(p); err != nil {
				return w.fail(err)
			}
			buf = w.bufs[p]
		}
		if n > cap(buf) {
			w.big = AppendRecord(w.big[:0], key, value)
			if err := w.writeFrame(p, w.big); err != nil {
				return w.fail(err)
			}
			w.stats.Records++
			return nil
		}
	}
	w.bufs[p] = AppendRecord(buf, key, value)
	w.stats.Records++
	return nil
}

// acquire gives partition p a buffer: a new one while the pool allows,
// else the next one in clock order, flushed.
func (w *bucketWriter) acquire(p int) ([]byte, error) {
	if len(w.holders) < w.pool {
		w.holders = append(w.holders, int32(p))
		w.bufs[p] = make([]byte, 0, w.per)
		w.stats.PeakMemory = int64(len(w.holders) * w.per)
		return w.bufs[p], nil
	}
	victim := int(w.holders[w.hand])
	if err := w.flush(victim); err != nil {
		return nil, err
	}
	w.bufs[p], w.bufs[victim] = w.bufs[victim], nil
	w.holders[w.hand] = int32(p)
	w.hand = (w.hand + 1) % len(w.holders)
	return w.bufs[p], nil
}

// flush writes partition r's buffer as a frame and empties it.
func (w *bucketWriter) flush(r int) error {
	if len(w.bufs[r]) == 0 {
		return nil
	}
	err := w.writeFrame(r, w.bufs[r])
	w.bufs[r] = w.bufs[r][:0]
	return err
}

// writeFrame appends raw, as one frame, to partition r's file.
func (w *bucketWriter) writeFrame(r int, raw []byte) error {
	f, err := w.file(r)
	if err != nil {
		return err
	}
	frame, err := w.enc.Encode(raw)
	if err != nil {
		return err
	}
	n, err := f.Write(frame)
	w.sizes[r] += int64(n)
	if err != nil {
		return fmt.Errorf("shuffle: writer: write %s: %w", w.paths[r], err)
	}
	return nil
}

// file returns partition r's file, creating it on first use.
func (w *bucketWriter) file(r int) (*os.File, error) {
	if f := w.files[r]; f != nil {
		return f, nil
	}
	w.paths[r] = w.filePath(r)
	f, err := w.createTemp(w.paths[r])
	if err != nil {
		return nil, err
	}
	w.files[r] = f
	return f, nil
}

// finishFiles flushes every buffer and closes every file; with all set,
// it creates the files of partitions that got no record.
func (w *bucketWriter) finishFiles(all bool) error {
	for r := range w.bufs {
		if w.bufs[r] != nil {
			if err := w.flush(r); err != nil {
				return err
			}
		}
	}
	w.bufs, w.holders = nil, nil
	for r, f := range w.files {
		if f == nil && all {
			var err error
			if f, err = w.file(r); err != nil {
				return err
			}
		}
		if f == nil {
			continue
		}
		w.files[r] = nil
		if err := f.Close(); err != nil {
			return fmt.Errorf("shuffle: writer: close %s: %w", w.paths[r], err)
		}
	}
	return nil
}

func (w *bucketWriter) lengths() []uint64 {
	l := make([]uint64, len(w.sizes))
	for r, n := range w.sizes {
		l[r] = uint64(n)
	}
	return l
}

// Commit finishes the files and commits them.
func (w *bucketWriter) Commit(ctx context.Context, c Committer) (*shufflepb.MapOutput, error) {
	if err := w.beginCommit(ctx, c); err != nil {
		return nil, err
	}
	if w.opts.Mode == ModeHash {
		return w.commitHash(ctx, c)
	}
	if err := w.finishFiles(false); err != nil {
		return nil, w.fail(err)
	}
	tmp := w.tempPath(w.dataPath(), "")
	if err := w.concat(tmp); err != nil {
		return nil, w.fail(err)
	}
	return w.commitSorted(ctx, c, tmp, w.lengths())
}

// concat writes the partitions' files, in order, to the data file tmp and
// removes them.
func (w *bucketWriter) concat(tmp string) error {
	dst, err := w.createTemp(tmp)
	if err != nil {
		return err
	}
	var total int64
	for r, path := range w.paths {
		if path == "" {
			continue
		}
		src, err := os.Open(path)
		if err != nil {
			dst.Close()
			return fmt.Errorf("shuffle: writer: %w", err)
		}
		n, err := io.Copy(dst, src)
		src.Close()
		total += n
		if err == nil && n != w.sizes[r] {
			err = fmt.Errorf("copied %d of %d bytes", n, w.sizes[r])
		}
		if err != nil {
			dst.Close()
			return fmt.Errorf("shuffle: writer: copy %s to %s: %w", path, tmp, err)
		}
		if err := w.removeTemp(path); err != nil {
			dst.Close()
			return err
		}
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("shuffle: writer: close %s: %w", tmp, err)
	}
	w.stats.BytesWritten += total
	return nil
}

// Discard removes every file the writer created.
func (w *bucketWriter) Discard() error {
	return w.discard(func() {
		for r, f := range w.files {
			if f != nil {
				f.Close()
				w.files[r] = nil
			}
		}
		w.bufs, w.holders = nil, nil
	})
}
