package shuffle

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeIndex: DecodeIndex never panics on any bytes, and what it
// accepts re-encodes to the same bytes.
func FuzzDecodeIndex(f *testing.F) {
	f.Add(EncodeIndex([]uint64{0}))
	f.Add(EncodeIndex([]uint64{0, 10, 10, 4096}))
	f.Add(EncodeIndex(OffsetsOf([]uint64{1, 2, 3, 0, 5})))
	f.Add([]byte("SHIX\x01\x00\x00\x00\xff\xff\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		offsets, err := DecodeIndex(b)
		if err != nil {
			return
		}
		if got := EncodeIndex(offsets); !bytes.Equal(got, b) {
			t.Fatalf("re-encoding %d offsets gives other bytes", len(offsets))
		}
	})
}

// FuzzFrames: VerifyFrames and frameDecoder.decode never panic, and agree:
// a stream decode accepts in full is accepted by VerifyFrames, and what
// VerifyFrames accepts fails to decode only as ErrCorrupt.
func FuzzFrames(f *testing.F) {
	for _, codec := range []Codec{CodecNone, CodecS2, CodecZstd} {
		enc, err := NewFrameEncoder(codec)
		if err != nil {
			f.Fatal(err)
		}
		var stream []byte
		for _, raw := range [][]byte{
			AppendRecord(nil, []byte("key"), []byte("value")),
			bytes.Repeat([]byte("abcd"), 1000),
			{},
		} {
			fr, err := enc.Encode(raw)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(bytes.Clone(fr))
			stream = append(stream, fr...)
		}
		f.Add(stream)
		enc.Close()
	}
	f.Add([]byte{1, 2, 3})
	var d frameDecoder // reused: creating a zstd decoder is slow
	defer d.close()
	f.Fuzz(func(t *testing.T, b []byte) {
		verr := VerifyFrames(b)
		rest := b
		for len(rest) > 0 {
			raw, r, err := d.decode(rest)
			if err != nil {
				// A frame whose checksum holds can still fail to
				// decompress (VerifyFrames does not decompress).
				if verr == nil && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("VerifyFrames accepted what decode rejects: %v", err)
				}
				return
			}
			if len(r) >= len(rest) {
				t.Fatalf("decode made no progress")
			}
			if len(raw) > MaxFrameRaw {
				t.Fatalf("raw payload of %d bytes", len(raw))
			}
			rest = r
		}
		if verr != nil {
			t.Fatalf("decode accepted every frame but VerifyFrames says %v", verr)
		}
	})
}
