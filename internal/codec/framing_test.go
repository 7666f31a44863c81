package codec

import (
	"bytes"
	"errors"
	"testing"
)

// TestFraming: AppendFramed and the in-place appendFramed write the same
// bytes, and CutFramed reads them back, across the lengths where the
// uvarint grows.
func TestFraming(t *testing.T) {
	bc := must(For[[]byte]())
	for _, n := range []int{0, 1, 127, 128, 129, 16383, 16384, 1 << 21} {
		b := bytes.Repeat([]byte{'z'}, n)
		plain := AppendFramed([]byte("x"), b)
		inPlace := appendFramed([]byte("x"), bc, b)
		if !bytes.Equal(plain, inPlace) {
			t.Fatalf("n=%d: AppendFramed and appendFramed differ", n)
		}
		frame, rest, err := CutFramed(append(plain[1:], "tail"...))
		if err != nil || !bytes.Equal(frame, b) || string(rest) != "tail" {
			t.Fatalf("n=%d: CutFramed = %d bytes, rest %q, %v", n, len(frame), rest, err)
		}
	}
}

func TestCutFramedCorrupt(t *testing.T) {
	for _, bad := range [][]byte{
		{},               // no length
		{0x80},           // a length cut short
		{0x05, 'a', 'b'}, // a length past the end
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},       // a length past any end
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // a uvarint that overflows
	} {
		if _, _, err := CutFramed(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("CutFramed(%x) = %v, want ErrCorrupt", bad, err)
		}
	}
}
