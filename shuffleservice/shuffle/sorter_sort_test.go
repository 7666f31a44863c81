package shuffle

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSorterSortProperty checks (*sorter).sort against slices.SortStableFunc
// by (partition, key bytes) on random inputs meant to hit every path of the
// radix sort: short and empty keys, shared prefixes, keys differing only
// after byte 8, heavy duplication, all-equal keys, partitions assigned at
// random or by the key's top bits, and 1 to 1000 partitions.
func TestSorterSortProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	iters := 600
	if testing.Short() {
		iters = 100
	}
	for it := range iters {
		r := 1 + rng.IntN(1000)
		if rng.IntN(3) == 0 {
			r = 1 + rng.IntN(8)
		}
		n := rng.IntN(5000)
		if rng.IntN(4) == 0 {
			n = rng.IntN(60)
		}
		gen := keyGenerators[rng.IntN(len(keyGenerators))]
		topBits := rng.IntN(2) == 0
		name := fmt.Sprintf("iter=%d,r=%d,n=%d,keys=%s,topbits=%v", it, r, n, gen.name, topBits)

		type rec struct {
			p   int
			key []byte
		}
		keys := gen.make(rng, n)
		recs := make([]rec, n)
		for i, k := range keys {
			p := rng.IntN(r)
			if topBits {
				hi, _ := bits.Mul64(keyPrefix(k), uint64(r))
				p = int(hi)
			}
			recs[i] = rec{p, k}
		}
		s := newSorter(1<<30, nil)
		for _, rc := range recs {
			if !s.add(rc.p, rc.key, []byte("v"), len(rc.key)+3) {
				t.Fatalf("%s: sorter full", name)
			}
		}
		s.sort(r)
		slices.SortStableFunc(recs, func(a, b rec) int {
			return cmp.Or(cmp.Compare(a.p, b.p), bytes.Compare(a.key, b.key))
		})
		if len(s.entries) != n {
			t.Fatalf("%s: %d entries, want %d", name, len(s.entries), n)
		}
		for i, e := range s.entries {
			k, _ := recordAt(s.arena, e.off)
			if int(e.partition()) != recs[i].p || !bytes.Equal(k, recs[i].key) {
				t.Fatalf("%s: entry %d is (%d, %q), want (%d, %q)", name, i, e.partition(), k, recs[i].p, recs[i].key)
			}
			if e.prefix != keyPrefix(k) {
				t.Fatalf("%s: entry %d: prefix %x of key %q", name, i, e.prefix, k)
			}
		}
		// Every record is still there exactly once.
		offs := make(map[uint32]bool, n)
		var off uint32
		for _, k := range keys {
			offs[off] = true
			off += uint32(len(AppendRecord(nil, k, []byte("v"))))
		}
		for _, e := range s.entries {
			if !offs[e.off] {
				t.Fatalf("%s: entry at offset %d duplicated or unknown", name, e.off)
			}
			delete(offs, e.off)
		}
	}
}

var keyGenerators = []struct {
	name string
	make func(rng *rand.Rand, n int) [][]byte
}{
	{"random10", func(rng *rand.Rand, n int) [][]byte {
		return genKeys(n, func() []byte { return randBytes(rng, 10, 256) })
	}},
	{"len0to20", func(rng *rand.Rand, n int) [][]byte {
		return genKeys(n, func() []byte { return randBytes(rng, rng.IntN(21), 256) })
	}},
	{"smallAlphabet", func(rng *rand.Rand, n int) [][]byte {
		// Bytes 0..2, lengths 0..20: many shared prefixes, duplicates,
		// and short keys equal to longer ones zero padded.
		return genKeys(n, func() []byte { return randBytes(rng, rng.IntN(21), 3) })
	}},
	{"sharedPrefix", func(rng *rand.Rand, n int) [][]byte {
		// One common 8-byte prefix: keys differ only after byte 8.
		return genKeys(n, func() []byte {
			return append([]byte("commonpf"), randBytes(rng, rng.IntN(13), 4)...)
		})
	}},
	{"fewPrefixes", func(rng *rand.Rand, n int) [][]byte {
		// A handful of prefixes, random tails.
		pfx := [][]byte{[]byte("aaaaaaaa"), []byte("aaaaaaab"), []byte("zzzz"), {}, []byte("aaaaaaaa\x00")}
		return genKeys(n, func() []byte {
			return append(slices.Clone(pfx[rng.IntN(len(pfx))]), randBytes(rng, rng.IntN(4), 256)...)
		})
	}},
	{"duplicates", func(rng *rand.Rand, n int) [][]byte {
		pool := genKeys(1+rng.IntN(10), func() []byte { return randBytes(rng, rng.IntN(16), 256) })
		return genKeys(n, func() []byte { return pool[rng.IntN(len(pool))] })
	}},
	{"allEqual", func(rng *rand.Rand, n int) [][]byte {
		k := randBytes(rng, rng.IntN(20), 256)
		return genKeys(n, func() []byte { return k })
	}},
	{"lowBitsOnly", func(rng *rand.Rand, n int) [][]byte {
		// Prefixes differing only in their low bits, and only in the
		// top bits: the radix digit sits at either end of the prefix.
		return genKeys(n, func() []byte {
			v := rng.Uint64() & 0x3ff
			if rng.IntN(2) == 0 {
				v <<= 54
			}
			return binary.BigEndian.AppendUint64(nil, v)
		})
	}},
	{"sorted", func(rng *rand.Rand, n int) [][]byte {
		var i uint64
		return genKeys(n, func() []byte {
			i += uint64(rng.IntN(3))
			return binary.BigEndian.AppendUint64(nil, i)
		})
	}},
	{"reversed", func(rng *rand.Rand, n int) [][]byte {
		i := uint64(1 << 40)
		return genKeys(n, func() []byte {
			i -= uint64(rng.IntN(3))
			return binary.BigEndian.AppendUint64(nil, i)
		})
	}},
}

func genKeys(n int, f func() []byte) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = f()
	}
	return keys
}

func randBytes(rng *rand.Rand, n, alphabet int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(alphabet))
	}
	return b
}
