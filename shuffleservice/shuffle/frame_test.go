package shuffle

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// testPayloads are raw frame payloads of several shapes.
func testPayloads() map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 50_000)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	var records []byte
	for i := range 2000 {
		records = AppendRecord(records, fmt.Appendf(nil, "key-%05d", i), bytes.Repeat([]byte{'v'}, i%40))
	}
	return map[string][]byte{
		"empty":      {},
		"one-byte":   {42},
		"random":     random,
		"repetitive": bytes.Repeat([]byte("shoal "), 20_000),
		"records":    records,
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecS2, CodecZstd} {
		for name, raw := range testPayloads() {
			t.Run(fmt.Sprintf("codec=%s/%s", codec, name), func(t *testing.T) {
				enc, err := NewFrameEncoder(codec)
				if err != nil {
					t.Fatal(err)
				}
				defer enc.Close()
				frame, err := enc.Encode(raw)
				if err != nil {
					t.Fatal(err)
				}
				frame = bytes.Clone(frame)
				if err := VerifyFrames(frame); err != nil {
					t.Fatalf("VerifyFrames: %v", err)
				}
				var dec frameDecoder
				defer dec.close()
				got, rest, err := dec.decode(frame)
				if err != nil {
					t.Fatal(err)
				}
				if len(rest) != 0 || !bytes.Equal(got, raw) {
					t.Fatalf("decoded %d bytes (rest %d), want %d", len(got), len(rest), len(raw))
				}
				// Decoding frames verified beforehand gives the same bytes.
				got, rest, err = dec.decodeVerified(frame)
				if err != nil || len(rest) != 0 || !bytes.Equal(got, raw) {
					t.Fatalf("decodeVerified: %d bytes (rest %d), %v; want %d", len(got), len(rest), err, len(raw))
				}
			})
		}
	}
}

func TestFrameIncompressibleStoredRaw(t *testing.T) {
	enc, _ := NewFrameEncoder(CodecZstd)
	defer enc.Close()
	frame, err := enc.Encode(testPayloads()["random"])
	if err != nil {
		t.Fatal(err)
	}
	if Codec(frame[8]) != CodecNone {
		t.Fatalf("random payload stored with codec %v, want none", Codec(frame[8]))
	}
	frame, _ = enc.Encode(testPayloads()["repetitive"])
	if Codec(frame[8]) != CodecZstd || len(frame) > 10_000 {
		t.Fatalf("repetitive payload: codec %v, %d bytes", Codec(frame[8]), len(frame))
	}
}

// Every single-byte change and every truncation of a frame is detected.
func TestFrameCorruptionDetected(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecS2, CodecZstd} {
		enc, _ := NewFrameEncoder(codec)
		frame, err := enc.Encode(testPayloads()["records"][:3000])
		enc.Close()
		if err != nil {
			t.Fatal(err)
		}
		frame = bytes.Clone(frame)
		var dec frameDecoder
		for i := range frame {
			bad := bytes.Clone(frame)
			bad[i] ^= 0x10
			if _, _, err := dec.decode(bad); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("codec %s: byte %d flipped: err %v, want ErrCorrupt", codec, i, err)
			}
		}
		for n := range len(frame) {
			if err := VerifyFrames(frame[:n]); n > 0 && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("codec %s: truncated to %d: err %v, want ErrCorrupt", codec, n, err)
			}
			if _, _, err := dec.decode(frame[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("codec %s: decoding a frame truncated to %d: err %v, want ErrCorrupt", codec, n, err)
			}
			if _, _, err := dec.decodeVerified(frame[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("codec %s: decodeVerified of a frame truncated to %d: err %v, want ErrCorrupt", codec, n, err)
			}
		}
		dec.close()
	}
}

func TestParseCodec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Codec
		ok   bool
	}{{"none", CodecNone, true}, {"s2", CodecS2, true}, {"zstd", CodecZstd, true}, {"lz4", 0, false}, {"", 0, false}} {
		got, err := ParseCodec(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseCodec(%q) = %v, %v", tc.in, got, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseCodec(%q) error %v is not ErrInvalidArgument", tc.in, err)
		}
	}
}
