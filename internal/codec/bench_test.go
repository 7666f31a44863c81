package codec

import (
	"fmt"
	"testing"
)

func BenchmarkCodec(b *testing.B) {
	benchCodec(b, "string", must(For[string]()), "user-000123456")
	benchCodec(b, "int64", must(For[int64]()), -123456789)
	benchCodec(b, "float64", must(For[float64]()), -1234.5678)
	benchCodec(b, "tuple", kvCodec(), kv{"user-000123456", 42})
	benchCodec(b, "gob", must(For[gobbed]()), gobbed{Name: "user-000123456"})
}

func benchCodec[T any](b *testing.B, name string, c Codec[T], v T) {
	enc := c.Append(nil, v)
	b.Run(fmt.Sprintf("type=%s/op=append", name), func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		dst := make([]byte, 0, 4096)
		for b.Loop() {
			dst = c.Append(dst[:0], v)
		}
	})
	b.Run(fmt.Sprintf("type=%s/op=decode", name), func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := c.Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
