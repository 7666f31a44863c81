package tail

import "testing"

func TestBufferKeepsTheEnd(t *testing.T) {
	b := &Buffer{Max: 5}
	for _, s := range []string{"ab", "cdef", "", "ghi"} {
		b.Write([]byte(s))
	}
	if got := b.String(); got != "efghi" {
		t.Fatalf("kept %q, want %q", got, "efghi")
	}
	b.Write([]byte("0123456789"))
	if got := b.String(); got != "56789" {
		t.Fatalf("kept %q after a write longer than Max, want %q", got, "56789")
	}
}
