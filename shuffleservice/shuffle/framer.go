package shuffle

import (
	"bufio"
	"bytes"
	"io"
)

// framer cuts a stream of records into frames of about frameSize raw
// bytes and writes them, compressed, to w. Blocks (one per reduce
// partition) end with endBlock, so that a block is always whole frames.
// Its buffers are reused across files: it allocates nothing once warm.
type framer struct {
	enc       *FrameEncoder
	w         *bufio.Writer
	raw       []byte
	frameSize int
	off       int64 // bytes written to the current file (buffered included)
	err       error // first write error, sticky
}

// framerBufSize is the write buffer of a framer's file.
const framerBufSize = 256 << 10

func newFramer(enc *FrameEncoder, frameSize int) *framer {
	return &framer{
		enc:       enc,
		w:         bufio.NewWriterSize(nil, framerBufSize),
		raw:       make([]byte, 0, frameSize),
		frameSize: frameSize,
	}
}

// reset starts a new file.
func (f *framer) reset(w io.Writer) {
	f.w.Reset(w)
	f.raw = f.raw[:0]
	f.off = 0
	f.err = nil
}

// add appends the record (key, value).
func (f *framer) add(key, value []byte) {
	if n := recordSize(key, value); len(f.raw) > 0 && len(f.raw)+n > f.frameSize {
		f.flushFrame()
	}
	f.raw = AppendRecord(f.raw, key, value)
}

// addEncoded appends a record already in the encoding of record.go.
func (f *framer) addEncoded(rec []byte) {
	if len(f.raw) > 0 && len(f.raw)+len(rec) > f.frameSize {
		f.flushFrame()
	}
	f.raw = append(f.raw, rec...)
}

func (f *framer) flushFrame() {
	if f.err != nil {
		f.raw = f.raw[:0]
		return
	}
	frame, err := f.enc.Encode(f.raw)
	f.raw = f.raw[:0]
	if err != nil {
		f.err = err
		return
	}
	n, err := f.w.Write(frame)
	f.off += int64(n)
	if err != nil {
		f.err = err
	}
}

// endBlock closes the current block and returns the file offset where
// the next block starts.
func (f *framer) endBlock() int64 {
	if len(f.raw) > 0 {
		f.flushFrame()
	}
	return f.off
}

// finish flushes the write buffer and returns the first error.
func (f *framer) finish() error {
	if f.err == nil {
		f.err = f.w.Flush()
	}
	f.w.Reset(nil)
	return f.err
}

// combiner merges the values of adjacent equal keys of a sorted stream
// (map-side combine) before they reach a framer. Its buffers are reused.
type combiner struct {
	fn         CombineFunc
	key        []byte
	val, spare []byte
	have       bool
}

// add takes the next record of the sorted stream.
func (c *combiner) add(f *framer, key, value []byte) {
	if c.have && bytes.Equal(c.key, key) {
		out := c.fn(c.spare[:0], c.val, value)
		c.spare, c.val = c.val, out
		return
	}
	if c.have {
		f.add(c.key, c.val)
	}
	c.key = append(c.key[:0], key...)
	c.val = append(c.val[:0], value...)
	c.have = true
}

// flush writes the pending record; called at the end of each block.
func (c *combiner) flush(f *framer) {
	if c.have {
		f.add(c.key, c.val)
		c.have = false
	}
}
