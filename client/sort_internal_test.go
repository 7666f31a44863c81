package client

import (
	"bytes"
	"testing"
)

// TestSortArena: records come back whole from chunks, across chunk
// boundaries and for a record larger than a chunk, each copied once.
func TestSortArena(t *testing.T) {
	var a sortArena
	type rec struct {
		off  int
		k, v []byte
	}
	var recs []rec
	for i, n := range []int{10, sortChunk - 20, 30, sortChunk + 5, 7, 0} {
		k := bytes.Repeat([]byte{byte('a' + i)}, 3)
		v := bytes.Repeat([]byte{byte('A' + i)}, n)
		recs = append(recs, rec{a.add(k, v), k, v})
	}
	for i, r := range recs {
		if got := a.at(r.off, len(r.k)); !bytes.Equal(got, r.k) {
			t.Errorf("record %d: key %q", i, got)
		}
		if got := a.at(r.off+len(r.k), len(r.v)); !bytes.Equal(got, r.v) {
			t.Errorf("record %d: value of %d bytes differs", i, len(got))
		}
	}
	// 10+3 and sortChunk-17 fill the first chunk; 33 starts the second,
	// the large one has its own, 10 and 3 go in a fourth.
	if len(a.chunks) != 4 || a.size() != 3*sortChunk+sortChunk+8 {
		t.Errorf("%d chunks of %d bytes in all", len(a.chunks), a.size())
	}
}
