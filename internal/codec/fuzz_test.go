package codec

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoders. Each must either fail
// with ErrCorrupt or return a value that encodes to an equivalent record.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("12345678"))
	f.Add(kvCodec().Append(nil, kv{"key", -1}))
	f.Add(SliceOf(kvCodec()).Append(nil, []kv{{"a", 1}, {"", 2}}))
	f.Add([]byte("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01"))

	str, i64, f64 := must(For[string]()), must(For[int64]()), must(For[float64]())
	tup, slice, strs := kvCodec(), SliceOf(kvCodec()), must(For[[]string]())
	f.Fuzz(func(t *testing.T, src []byte) {
		// Fixed-width and raw encodings are canonical: they re-encode to
		// the same bytes.
		canonical(t, str, src, func(a, b string) bool { return a == b })
		canonical(t, i64, src, func(a, b int64) bool { return a == b })
		canonical(t, f64, src, func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) })
		// Uvarint prefixes may be written longer than need be, so
		// check only that what decodes survives another round trip.
		stable(t, tup, src)
		stable(t, slice, src)
		stable(t, strs, src)
	})
}

func canonical[T any](t *testing.T, c Codec[T], src []byte, equal func(a, b T) bool) {
	v, err := c.Decode(src)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%T: error %v does not wrap ErrCorrupt", c, err)
		}
		return
	}
	if enc := c.Append(nil, v); !bytes.Equal(enc, src) {
		t.Fatalf("%T: %x decodes to %v, which encodes as %x", c, src, v, enc)
	}
	if back, err := c.Decode(c.Append(nil, v)); err != nil || !equal(back, v) {
		t.Fatalf("%T: %v came back as %v, %v", c, v, back, err)
	}
}

func stable[T any](t *testing.T, c Codec[T], src []byte) {
	v, err := c.Decode(src)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%T: error %v does not wrap ErrCorrupt", c, err)
		}
		return
	}
	back, err := c.Decode(c.Append(nil, v))
	if err != nil || !reflect.DeepEqual(back, v) {
		t.Fatalf("%T: %v came back as %v, %v", c, v, back, err)
	}
}
