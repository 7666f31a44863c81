package shuffle

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// spillRun is a sorted run written to a temporary file: its records in
// frames, grouped by partition, partition r at bytes
// [offsets[r], offsets[r+1]).
type spillRun struct {
	path    string
	offsets []uint64
	f       *os.File // open between the spill and the merge
}

// spill sorts the sorter's records, writes them as a run and empties the
// sorter.
func (w *sortWriter) spill() error {
	start := time.Now()
	defer func() { w.stats.SpillTime += time.Since(start) }()
	w.s.sort(w.opts.Partitions)
	path := w.tempPath(w.dataPath(), "spill-"+strconv.Itoa(len(w.runs))+"-")
	f, err := w.createTemp(path)
	if err != nil {
		return err
	}
	run := spillRun{path: path, offsets: make([]uint64, w.opts.Partitions+1), f: f}
	if w.spillFr == nil {
		enc, err := NewFrameEncoder(w.opts.SpillCodec)
		if err != nil {
			f.Close()
			return err
		}
		w.spillFr = newFramer(enc, w.opts.FrameSize)
	}
	w.spillFr.reset(f)
	w.writeRun(w.spillFr, run.offsets)
	if err := w.spillFr.finish(); err != nil {
		f.Close()
		return fmt.Errorf("shuffle: writer: spill of map %d to %s: %w", w.opts.Map, path, err)
	}
	w.runs = append(w.runs, run)
	w.stats.Spills++
	w.stats.SpillBytes += int64(run.offsets[w.opts.Partitions])
	w.s.reset()
	return nil
}

// prefetchDistance is how many records ahead writeRun touches the arena.
const prefetchDistance = 8

// writeRun writes the sorted records of the sorter to fr, one block per
// partition, combining equal keys if asked to; offsets[r+1] is set to the
// end of block r.
func (w *sortWriter) writeRun(fr *framer, offsets []uint64) {
	e, arena := w.s.entries, w.s.arena
	i := 0
	for r := range w.opts.Partitions {
		end := w.s.partitionEnd(i, uint32(r))
		if w.comb == nil {
			for ; i < end; i++ {
				// Touch the record prefetchDistance ahead: the sorted
				// order reads the arena at random, and independent loads
				// let the CPU overlap the cache misses.
				if j := i + prefetchDistance; j < len(e) {
					w.touched += arena[e[j].off]
				}
				off := e[i].off
				_, n := recordAt(arena, off)
				fr.addEncoded(arena[off : int(off)+n])
			}
		} else {
			for ; i < end; i++ {
				k, v := recordKV(arena, e[i].off)
				w.comb.add(fr, k, v)
			}
			w.comb.flush(fr)
		}
		offsets[r+1] = uint64(fr.endBlock())
	}
}
