package client

import (
	"bytes"
	"testing"

	"shoal/internal/codec"
)

// KV and Pair records are encoded as their parts, framed (codec.Tuple2),
// not by the gob fallback, and round-trip, nested too.
func TestCodecOfPairs(t *testing.T) {
	kc, err := codecOf[KV[string, int64]]()
	if err != nil {
		t.Fatal(err)
	}
	ic, _ := codec.For[int64]()
	b := kc.Append(nil, KV[string, int64]{"ab", 7})
	if want := append([]byte{2, 'a', 'b'}, ic.Append(nil, 7)...); !bytes.Equal(b, want) {
		t.Fatalf("KV encoded as %x, want %x (its parts, framed)", b, want)
	}
	nested, err := codecOf[KV[string, Pair[float64, string]]]()
	if err != nil {
		t.Fatal(err)
	}
	v := KV[string, Pair[float64, string]]{"k", Pair[float64, string]{0.25, "v"}}
	got, err := nested.Decode(nested.Append(nil, v))
	if err != nil || got != v {
		t.Fatalf("round trip: %v, %v; want %v", got, err, v)
	}
	if n := testing.AllocsPerRun(100, func() { b = kc.Append(b[:0], KV[string, int64]{"ab", 7}) }); n != 0 {
		t.Errorf("encoding a KV[string, int64] allocates %v times", n)
	}
}
