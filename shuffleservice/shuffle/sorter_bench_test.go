package shuffle

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// BenchmarkSorterSort sorts 625k 100-byte records (10-byte random keys)
// into 256 partitions, assigned either by the key's top bits (so that the
// prefixes of a partition share their top 8 bits) or at random.
//
//	go test ./shuffleservice -run '^$' -bench SorterSort -count 5
func BenchmarkSorterSort(b *testing.B) {
	const n, r = 625_000, 256
	for _, c := range []struct {
		name string
		part func(rng *rand.Rand, key []byte) int
	}{
		{"part=topbits", func(_ *rand.Rand, key []byte) int {
			hi, _ := bits.Mul64(binary.BigEndian.Uint64(key), r)
			return int(hi)
		}},
		{"part=random", func(rng *rand.Rand, _ []byte) int { return rng.IntN(r) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			s := newSorter(n*(100+2+sortEntrySize), nil)
			key, value := make([]byte, 10), make([]byte, 88)
			for range n {
				for j := range key {
					key[j] = byte(rng.Uint32())
				}
				if !s.add(c.part(rng, key), key, value, 100) {
					b.Fatal("sorter full")
				}
			}
			unsorted := append([]sortEntry(nil), s.entries...)
			for b.Loop() {
				b.StopTimer()
				copy(s.entries, unsorted)
				b.StartTimer()
				s.sort(r)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/record")
		})
	}
}
