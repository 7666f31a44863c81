package shuffleservice

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
)

// mergeReadBuffer is the read buffer of each spilled run during the merge.
// The merge holds one per run, plus one decoded frame per run, on top of
// the sorter's memory; runs are merged in a single pass however many
// there are.
const mergeReadBuffer = 64 << 10

// runCursor walks the records of one sorted source, partition after
// partition: a spilled run read front to back, or the sorter's sorted
// remainder.
type runCursor struct {
	// A spilled run.
	r       *bufio.Reader
	dec     frameDecoder
	hdr     [frameHeaderSize]byte
	payload []byte
	pos     int64 // bytes of the run consumed
	end     int64 // end of the current partition's block
	raw     []byte

	// The sorter's remainder: entries [i, j) are the current partition.
	mem  *sorter
	i, j int

	key, value []byte
	err        error
}

// next moves to the next record of the current partition.
func (c *runCursor) next() bool {
	if c.mem != nil {
		if c.i >= c.j {
			return false
		}
		c.key, c.value = recordKV(c.mem.arena, c.mem.entries[c.i].off)
		c.i++
		return true
	}
	for len(c.raw) == 0 {
		if c.pos >= c.end {
			return false
		}
		if err := c.readFrame(); err != nil {
			c.err = err
			return false
		}
	}
	var err error
	c.key, c.value, c.raw, err = nextRecord(c.raw)
	if err != nil {
		c.err = err
		return false
	}
	return true
}

func (c *runCursor) readFrame() error {
	if _, err := io.ReadFull(c.r, c.hdr[:]); err != nil {
		return fmt.Errorf("%w: spilled run: frame header at %d: %v", ErrCorrupt, c.pos, err)
	}
	h, err := parseFrameHeader(c.hdr[:])
	if err != nil {
		return err
	}
	if cap(c.payload) < h.n {
		c.payload = make([]byte, h.n)
	}
	payload := c.payload[:h.n]
	if _, err := io.ReadFull(c.r, payload); err != nil {
		return fmt.Errorf("%w: spilled run: frame at %d: %v", ErrCorrupt, c.pos, err)
	}
	if err := h.check(c.hdr[:], payload); err != nil {
		return err
	}
	c.pos += int64(frameHeaderSize + h.n)
	c.raw, err = c.dec.decompress(h, payload)
	return err
}

// cursorHeap is a binary min-heap of cursors ordered by their current key.
type cursorHeap []*runCursor

func (h cursorHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && bytes.Compare(h[r].key, h[l].key) < 0 {
			m = r
		}
		if bytes.Compare(h[m].key, h[i].key) >= 0 {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (h cursorHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// merge writes the k-way merge of the spilled runs and the sorted
// remainder to w.fr, one block per partition; offsets[r+1] is set to the
// end of block r.
func (w *sortWriter) merge(ctx context.Context, offsets []uint64) (err error) {
	cursors := make([]*runCursor, 0, len(w.runs)+1)
	for _, run := range w.runs {
		if _, err := run.f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		c := &runCursor{
			r:       bufio.NewReaderSize(run.f, mergeReadBuffer),
			payload: make([]byte, w.opts.FrameSize),
		}
		if w.opts.Codec != CodecNone {
			c.dec.buf = make([]byte, w.opts.FrameSize)
		}
		cursors = append(cursors, c)
	}
	defer func() {
		for k := range w.runs {
			cursors[k].dec.close()
			if cerr := w.runs[k].f.Close(); cerr != nil && err == nil {
				err = cerr
			}
			w.runs[k].f = nil
		}
	}()
	mem := &runCursor{mem: w.s}
	cursors = append(cursors, mem)

	h := make(cursorHeap, 0, len(cursors))
	fr := w.fr
	for r := range w.opts.Partitions {
		if r%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if fr.err != nil {
			return fr.err
		}
		h = h[:0]
		for k, c := range cursors[:len(w.runs)] {
			c.end = int64(w.runs[k].offsets[r+1])
		}
		mem.j = w.s.partitionEnd(mem.i, uint32(r))
		for _, c := range cursors {
			if c.next() {
				h = append(h, c)
			} else if c.err != nil {
				return c.err
			}
		}
		h.init()
		for len(h) > 0 {
			c := h[0]
			if w.comb != nil {
				w.comb.add(fr, c.key, c.value)
			} else {
				fr.add(c.key, c.value)
			}
			if !c.next() {
				if c.err != nil {
					return c.err
				}
				last := len(h) - 1
				h[0] = h[last]
				h = h[:last]
			}
			h.down(0)
		}
		if w.comb != nil {
			w.comb.flush(fr)
		}
		offsets[r+1] = uint64(fr.endBlock())
	}
	for k, c := range cursors[:len(w.runs)] {
		if c.pos != int64(w.runs[k].offsets[w.opts.Partitions]) {
			return errors.New("shuffle: writer: merge did not consume a spilled run")
		}
	}
	return nil
}
