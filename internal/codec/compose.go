package codec

import "encoding/binary"

// appendFramed appends c's encoding of v preceded by its length as a
// uvarint. It reserves one byte for the length, enough below 128 bytes, and
// moves the encoding along when the length needs more.
func appendFramed[V any](dst []byte, c Codec[V], v V) []byte {
	start := len(dst)
	dst = c.Append(append(dst, 0), v)
	n := len(dst) - start - 1
	if n < 0x80 {
		dst[start] = byte(n)
		return dst
	}
	var prefix [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(prefix[:], uint64(n))
	dst = append(dst, prefix[:k-1]...) // room to move the encoding along
	copy(dst[start+k:], dst[start+1:start+1+n])
	copy(dst[start:], prefix[:k])
	return dst
}

// readFrame splits src into the frame at its start and the rest.
func readFrame(src []byte) (frame, rest []byte, err error) {
	n, k := binary.Uvarint(src)
	if k <= 0 {
		return nil, nil, corrupt("bad length prefix %x", src[:min(len(src), binary.MaxVarintLen64)])
	}
	if n > uint64(len(src)-k) {
		return nil, nil, corrupt("length %d overruns the %d bytes left", n, len(src)-k)
	}
	return src[k : k+int(n)], src[k+int(n):], nil
}

// Tuple2 returns a codec for a T made of an A and a B, such as a key-value
// pair: split takes a T apart and join puts one together. The encoding is
// the length of a's encoding as a uvarint, a's encoding, then b's.
func Tuple2[T, A, B any](a Codec[A], b Codec[B], split func(T) (A, B), join func(A, B) T) Codec[T] {
	return &tuple2[T, A, B]{a, b, split, join}
}

type tuple2[T, A, B any] struct {
	a     Codec[A]
	b     Codec[B]
	split func(T) (A, B)
	join  func(A, B) T
}

func (c *tuple2[T, A, B]) Append(dst []byte, v T) []byte {
	x, y := c.split(v)
	return c.b.Append(appendFramed(dst, c.a, x), y)
}

func (c *tuple2[T, A, B]) Decode(src []byte) (T, error) {
	var zero T
	first, second, err := readFrame(src)
	if err != nil {
		return zero, err
	}
	x, err := c.a.Decode(first)
	if err != nil {
		return zero, err
	}
	y, err := c.b.Decode(second)
	if err != nil {
		return zero, err
	}
	return c.join(x, y), nil
}

// SliceOf returns a codec for slices of E: the count as a uvarint, then
// each element's encoding preceded by its length as a uvarint. Decoding a
// non-empty slice allocates it; an empty one decodes as nil.
func SliceOf[E any](e Codec[E]) Codec[[]E] { return sliceCodec[E]{e} }

type sliceCodec[E any] struct{ e Codec[E] }

func (c sliceCodec[E]) Append(dst []byte, v []E) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	for _, x := range v {
		dst = appendFramed(dst, c.e, x)
	}
	return dst
}

func (c sliceCodec[E]) Decode(src []byte) ([]E, error) {
	n, k := binary.Uvarint(src)
	switch {
	case k <= 0:
		return nil, corrupt("bad element count %x", src[:min(len(src), binary.MaxVarintLen64)])
	case n > uint64(len(src)-k): // each element takes at least a byte
		return nil, corrupt("%d elements cannot fit in %d bytes", n, len(src)-k)
	case n == 0:
		if k != len(src) {
			return nil, corrupt("%d bytes after an empty slice", len(src)-k)
		}
		return nil, nil
	}
	out := make([]E, n)
	rest := src[k:]
	for i := range out {
		var frame []byte
		var err error
		if frame, rest, err = readFrame(rest); err != nil {
			return nil, err
		}
		if out[i], err = c.e.Decode(frame); err != nil {
			return nil, err
		}
	}
	if len(rest) != 0 {
		return nil, corrupt("%d bytes after the last of %d elements", len(rest), n)
	}
	return out, nil
}
