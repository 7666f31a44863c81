package shuffle

import (
	"errors"
	"slices"
	"testing"
)

func TestIndexRoundTrip(t *testing.T) {
	for _, lengths := range [][]uint64{{0}, {5}, {0, 0, 7, 0}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}} {
		off := OffsetsOf(lengths)
		got, err := DecodeIndex(EncodeIndex(off))
		if err != nil || !slices.Equal(got, off) {
			t.Fatalf("lengths %v: decoded %v, %v; want %v", lengths, got, err, off)
		}
		if len(EncodeIndex(off)) != IndexSize(len(lengths)) {
			t.Fatalf("size %d, want %d", len(EncodeIndex(off)), IndexSize(len(lengths)))
		}
	}
}

func TestIndexCorruptionDetected(t *testing.T) {
	good := EncodeIndex(OffsetsOf([]uint64{10, 0, 20, 30}))
	for i := range good {
		bad := slices.Clone(good)
		bad[i] ^= 0x01
		if _, err := DecodeIndex(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d flipped: %v, want ErrCorrupt", i, err)
		}
	}
	for n := range len(good) {
		if _, err := DecodeIndex(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: %v, want ErrCorrupt", n, err)
		}
	}
	// Offsets that go backwards are rejected even with a valid checksum.
	if _, err := DecodeIndex(EncodeIndex([]uint64{0, 10, 5})); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("decreasing offsets: %v, want ErrCorrupt", err)
	}
	if _, err := DecodeIndex(EncodeIndex([]uint64{3, 10})); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("first offset not 0: %v, want ErrCorrupt", err)
	}
}

func TestRecordEncoding(t *testing.T) {
	var b []byte
	keys := [][]byte{{}, []byte("k"), make([]byte, 300)}
	vals := [][]byte{[]byte("v"), {}, make([]byte, 70_000)}
	for i := range keys {
		b = AppendRecord(b, keys[i], vals[i])
	}
	total := 0
	for i := range keys {
		total += recordSize(keys[i], vals[i])
	}
	if total != len(b) {
		t.Fatalf("recordSize sum %d, encoded %d", total, len(b))
	}
	for i := range keys {
		k, v, rest, err := NextRecord(b)
		if err != nil || !slices.Equal(k, keys[i]) || !slices.Equal(v, vals[i]) {
			t.Fatalf("record %d: %q %d %v", i, k, len(v), err)
		}
		b = rest
	}
	// A record whose lengths overrun the frame is corrupt, never a panic.
	for _, bad := range [][]byte{{0x05, 0x00, 'a'}, {0x00, 0x05}, {0xff}, {0x80, 0x80}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00}} {
		if _, _, _, err := NextRecord(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("NextRecord(%x): %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"app-1", true}, {"A.b_c-9", true}, {"..", false}, {"../x", false}, {"a/b", false},
		{"", false}, {".hidden", false}, {"x\x00", false}, {string(make([]byte, 129)), false},
	} {
		err := ValidateID("application", tc.id)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidArgument)) {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
	}
}
