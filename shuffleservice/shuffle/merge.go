package shuffle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// mergeReadBuffer is how much of a spilled run the merge reads at once
// (more if a frame is larger). The merge holds one such window per run,
// plus one decoded frame per run, on top of the sorter's memory; runs are
// merged in a single pass however many there are.
const mergeReadBuffer = 256 << 10

// runCursor walks the records of one sorted source, partition after
// partition: a spilled run read front to back, or the sorter's sorted
// remainder.
type runCursor struct {
	// A spilled run, read with pread into win: win holds bytes
	// [winOff, winOff+len(win)) of the file.
	f      *os.File
	win    []byte
	winOff int64
	dec    frameDecoder
	pos    int64 // bytes of the run consumed
	end    int64 // end of the current partition's block
	raw    []byte

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
	c.key, c.value, c.raw, err = NextRecord(c.raw)
	if err != nil {
		c.err = err
		return false
	}
	return true
}

// window returns bytes [pos, pos+n) of the run, reading ahead up to the
// end of the current partition's block. It is only called once the
// records of the previous window are consumed.
func (c *runCursor) window(n int) ([]byte, error) {
	if c.pos >= c.winOff && c.pos+int64(n) <= c.winOff+int64(len(c.win)) {
		return c.win[c.pos-c.winOff:], nil
	}
	if c.pos+int64(n) > c.end {
		return nil, corruptf("spilled run: frame at %d runs past its block end %d", c.pos, c.end)
	}
	size := int(min(int64(max(n, mergeReadBuffer)), c.end-c.pos))
	if cap(c.win) < size {
		c.win = make([]byte, size)
	}
	c.win = c.win[:size]
	if _, err := c.f.ReadAt(c.win, c.pos); err != nil {
		c.win = c.win[:0]
		if err == io.EOF {
			return nil, corruptf("spilled run: truncated at %d", c.pos)
		}
		return nil, fmt.Errorf("shuffle: writer: read spilled run: %w", err)
	}
	c.winOff = c.pos
	return c.win, nil
}

func (c *runCursor) readFrame() error {
	b, err := c.window(FrameHeaderSize)
	if err != nil {
		return err
	}
	h, err := parseFrameHeader(b)
	if err != nil {
		return err
	}
	if b, err = c.window(FrameHeaderSize + h.n); err != nil {
		return err
	}
	frame := b[:FrameHeaderSize+h.n]
	if err := h.check(frame[:FrameHeaderSize], frame[FrameHeaderSize:]); err != nil {
		return err
	}
	c.pos += int64(len(frame))
	c.raw, err = c.dec.decompress(h, frame[FrameHeaderSize:])
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
		c := &runCursor{f: run.f}
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
