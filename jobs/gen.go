package jobs

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"sort"
	"strings"
)

// A GenFunc writes records records of one kind of input to w, the same
// bytes for the same seed.
type GenFunc func(w io.Writer, records int64, seed uint64) error

// generators lists the generators by the name `shoal gen` knows them by.
func generators() map[string]GenFunc {
	return map[string]GenFunc{
		"text":       GenText,
		"ecommerce":  GenEcommerce,
		"graph":      GenGraph,
		"sort":       GenSort,
		"sort-ascii": GenSortASCII,
	}
}

// GenKinds returns the names Generate accepts, sorted.
func GenKinds() []string {
	g := generators()
	kinds := make([]string, 0, len(g))
	for k := range g {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// Generate runs the generator called kind (see GenKinds).
func Generate(kind string, w io.Writer, records int64, seed uint64) error {
	gen, ok := generators()[kind]
	if !ok {
		return fmt.Errorf("jobs: no generator %q (choose one of %s)", kind, strings.Join(GenKinds(), ", "))
	}
	return gen(w, records, seed)
}

// genBufferSize is the size of every generator's write buffer.
const genBufferSize = 1 << 16

// Random streams, one per generator, so that equal seeds give unrelated
// data across kinds.
const (
	streamText      = 0x7465787400000001
	streamEcommerce = 0x65636f6d00000002
	streamGraph     = 0x6772617000000003
	streamSort      = 0x736f727400000004
)

func newRand(seed, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, stream))
}

// checkRecords rejects a negative record count.
func checkRecords(kind string, records int64) error {
	if records < 0 {
		return fmt.Errorf("jobs: gen %s: records must be >= 0, got %d", kind, records)
	}
	return nil
}

// newGenWriter returns the buffered writer generators write through.
func newGenWriter(w io.Writer) *bufio.Writer {
	return bufio.NewWriterSize(w, genBufferSize)
}

// mix64 is the SplitMix64 finaliser: a cheap, well-spread hash of x, used
// to derive fixed attributes (a product's price, whether a page is
// dangling) from an index without storing them.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

const hexUpper = "0123456789ABCDEF"
const hexLower = "0123456789abcdef"

// aliasTable samples k in [0, n) with probability proportional to
// weights[k] in constant time (Vose's alias method): one random number
// per sample, against rand.Zipf's logarithms and exponentials.
type aliasTable struct {
	prob  []uint64 // threshold of a 64-bit random number to keep k
	alias []int32
}

func newAliasTable(weights []float64) *aliasTable {
	n := len(weights)
	t := &aliasTable{prob: make([]uint64, n), alias: make([]int32, n)}
	var total float64
	for _, w := range weights {
		total += w
	}
	scaled := make([]float64, n)
	var small, large []int32
	for i, w := range weights {
		scaled[i] = w * float64(n) / total
		if scaled[i] < 1 {
			small = append(small, int32(i))
		} else {
			large = append(large, int32(i))
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		t.prob[s] = uint64(scaled[s] * 0x1p64) // scaled[s] < 1: fits
		t.alias[s] = l
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, i := range append(small, large...) {
		t.prob[i] = math.MaxUint64 // 1, up to rounding
		t.alias[i] = i
	}
	return t
}

// zipfWeights returns (v+k)^-s for k in [0, n): rand.Zipf's distribution.
func zipfWeights(n int, s, v float64) []float64 {
	w := make([]float64, n)
	for k := range w {
		w[k] = math.Pow(v+float64(k), -s)
	}
	return w
}

func (t *aliasTable) sample(rng *rand.Rand) int {
	// x*n/2^64 is uniform on [0, n): its integer part picks a column and
	// its fraction, lo/2^64, is the coin.
	hi, lo := bits.Mul64(rng.Uint64(), uint64(len(t.prob)))
	if lo < t.prob[hi] {
		return int(hi)
	}
	return int(t.alias[hi])
}
