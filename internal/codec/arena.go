package codec

import "unsafe"

const (
	// chunkSize is the size of a StringArena chunk.
	chunkSize = 64 << 10
	// ownAlloc is the length from which a string gets its own allocation
	// rather than a place in a chunk, which bounds the waste at the end
	// of a chunk to an eighth.
	ownAlloc = chunkSize / 8
)

// StringArena copies decoded strings and byte slices into large shared
// chunks, so that decoding them costs one allocation per chunk rather than
// one per record.
//
// Bytes in a chunk are never written again once handed out, so the results
// stay valid for as long as they are referenced; the garbage collector frees
// a chunk when nothing references any of it. The flip side is that one
// retained string keeps its whole chunk alive: a caller that keeps a few
// strings out of many should strings.Clone them.
//
// The zero value is ready to use. A StringArena is not safe for concurrent
// use.
type StringArena struct {
	chunk []byte // len is the part handed out
}

// Bytes returns a copy of b, with capacity equal to its length so that
// appending to it cannot overwrite its neighbours. It returns nil for an
// empty b.
func (a *StringArena) Bytes(b []byte) []byte {
	n := len(b)
	switch {
	case n == 0:
		return nil
	case n >= ownAlloc:
		return append([]byte(nil), b...)
	case n > cap(a.chunk)-len(a.chunk):
		a.chunk = make([]byte, 0, chunkSize)
	}
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return a.chunk[start : start+n : start+n]
}

// String returns b as a string.
func (a *StringArena) String(b []byte) string {
	c := a.Bytes(b)
	return unsafe.String(unsafe.SliceData(c), len(c))
}

// stringCodec encodes a string as its bytes.
type stringCodec struct{ arena *StringArena }

func (stringCodec) Append(dst []byte, v string) []byte { return append(dst, v...) }

func (c stringCodec) Decode(src []byte) (string, error) { return c.arena.String(src), nil }

// bytesCodec encodes a []byte as itself.
type bytesCodec struct{ arena *StringArena }

func (bytesCodec) Append(dst []byte, v []byte) []byte { return append(dst, v...) }

func (c bytesCodec) Decode(src []byte) ([]byte, error) { return c.arena.Bytes(src), nil }
