package codec

import "encoding/binary"

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
	first, second, err := CutFramed(src)
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
		if frame, rest, err = CutFramed(rest); err != nil {
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
