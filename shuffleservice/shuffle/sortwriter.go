package shuffle

import (
	"context"
	"errors"
	"fmt"
	"os"

	"shoal/shuffleservice/shufflepb"
)

// sortWriter is ModeSort: records go to a sorter; a full sorter is sorted
// and spilled as a run (spill.go); Commit merges the runs and the sorted
// remainder into one data file (merge.go).
//
// A record larger than the memory limit (less one sort entry) or than a
// frame (MaxFrameRaw) is refused with ErrInvalidArgument; the writer stays
// usable.
type sortWriter struct {
	*writerBase
	s       *sorter
	fr      *framer   // the data file's
	spillFr *framer   // spilled runs', made at the first spill
	comb    *combiner // nil without map-side combine
	runs    []spillRun

	touched byte // sink of writeRun's prefetching loads
}

func newSortWriter(b *writerBase) (*sortWriter, error) {
	w := &sortWriter{
		writerBase: b,
		s:          newSorter(b.opts.MemoryLimit, b.opts.Buffers),
		fr:         newFramer(b.enc, b.opts.FrameSize),
	}
	if b.opts.Combine != nil {
		w.comb = &combiner{fn: b.opts.Combine}
	}
	w.stats.PeakMemory = int64(w.s.memory())
	return w, nil
}

// Write adds a record for reduce partition p.
func (w *sortWriter) Write(p int, key, value []byte) error {
	if w.state != stateOpen {
		return w.checkOpen()
	}
	n, err := w.opts.checkRecord(p, key, value)
	if err != nil {
		return err
	}
	if !w.s.add(p, key, value, n) {
		if w.s.len() > 0 {
			if err := w.spill(); err != nil {
				return w.fail(err)
			}
		}
		if !w.s.add(p, key, value, n) {
			w.s.makeRoom(n)
			w.s.add(p, key, value, n)
		}
		w.stats.PeakMemory = max(w.stats.PeakMemory, w.s.peak)
	}
	w.stats.Records++
	return nil
}

// Commit writes the data file, its index, and commits them.
func (w *sortWriter) Commit(ctx context.Context, c Committer) (*shufflepb.MapOutput, error) {
	if err := w.beginCommit(ctx, c); err != nil {
		return nil, err
	}
	w.stats.PeakMemory = max(w.stats.PeakMemory, w.s.peak)
	tmp := w.tempPath(w.dataPath(), "")
	f, err := w.createTemp(tmp)
	if err != nil {
		return nil, w.fail(err)
	}
	lengths, err := w.writeData(ctx, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("shuffle: writer: close %s: %w", tmp, cerr)
	}
	if err != nil {
		return nil, w.fail(err)
	}
	w.releaseMemory()
	return w.commitSorted(ctx, c, tmp, lengths)
}

// writeData writes the data file to f and returns its block lengths.
func (w *sortWriter) writeData(ctx context.Context, f *os.File) ([]uint64, error) {
	w.s.sort(w.opts.Partitions)
	offsets := make([]uint64, w.opts.Partitions+1)
	w.fr.reset(f)
	var err error
	if len(w.runs) == 0 {
		w.writeRun(w.fr, offsets)
	} else {
		err = w.merge(ctx, offsets)
	}
	err = errors.Join(err, w.fr.finish())
	if err != nil {
		return nil, fmt.Errorf("shuffle: writer: write data of map %d: %w", w.opts.Map, err)
	}
	for _, r := range w.runs {
		if rerr := w.removeTemp(r.path); rerr != nil {
			return nil, rerr
		}
	}
	w.runs = nil
	w.stats.BytesWritten += int64(offsets[len(offsets)-1])
	lengths := make([]uint64, w.opts.Partitions)
	for r := range lengths {
		lengths[r] = offsets[r+1] - offsets[r]
	}
	return lengths, nil
}

// Discard removes every file the writer created.
func (w *sortWriter) Discard() error {
	return w.discard(func() {
		for _, r := range w.runs {
			if r.f != nil {
				r.f.Close()
			}
		}
		w.runs = nil
		w.releaseMemory()
	})
}

// releaseMemory returns the sort memory to the pool once nothing reads it,
// and closes the spill encoder.
func (w *sortWriter) releaseMemory() {
	if w.s != nil {
		w.s.release(w.opts.Buffers)
		w.s = nil
	}
	if w.spillFr != nil {
		w.spillFr.enc.Close()
		w.spillFr = nil
	}
}
