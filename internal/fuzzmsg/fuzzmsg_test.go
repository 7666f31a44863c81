package fuzzmsg

import (
	"bytes"
	"testing"
)

func TestSplitFrames(t *testing.T) {
	in := append(append(Frame([]byte("ab")), Frame(nil)...), Frame([]byte("cde"))...)
	got := Split(append(in, 0xff)) // a bad prefix: the rest is one message
	want := [][]byte{[]byte("ab"), {}, []byte("cde"), {0xff}}
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("message %d: %q, want %q", i, got[i], want[i])
		}
	}
}
