package bench

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"

	"github.com/cespare/xxhash/v2"
)

// KeyBytes is the key size of generated records, as in gensort.
const KeyBytes = 10

// recordGen makes gensort-like records: a 10-byte random key, then the
// record's number in hex and a filler of repeated letters, so values
// compress a little, as real data does. Deterministic for a seed.
type recordGen struct {
	rng *rand.Rand
	row uint64
	// bufs[k] holds the filler of rows with row%26 == k, written once, so
	// a record costs only its key and number.
	bufs [26][]byte
}

func newRecordGen(seed, stream uint64, firstRow uint64, recordBytes int) *recordGen {
	g := &recordGen{rng: rand.New(rand.NewPCG(seed, stream)), row: firstRow}
	var pattern []byte
	for i := 0; len(pattern) < 26*4+recordBytes; i++ {
		pattern = append(pattern, byte('A'+(i/4)%26))
	}
	for k := range g.bufs {
		b := make([]byte, recordBytes)
		if n := KeyBytes + 16; n < recordBytes {
			copy(b[n:], pattern[k*4:])
		}
		g.bufs[k] = b
	}
	return g
}

const hexDigits = "0123456789ABCDEF"

// next returns the next record as (key, value), valid until the next call.
// The value follows the key in memory.
func (g *recordGen) next() (key, value []byte) {
	b := g.bufs[g.row%26]
	var k [16]byte
	binary.BigEndian.PutUint64(k[0:], g.rng.Uint64())
	binary.BigEndian.PutUint64(k[8:], g.rng.Uint64())
	n := copy(b, k[:KeyBytes])
	var num [16]byte
	for i := range 8 {
		x := byte(g.row >> (56 - 8*i))
		num[2*i], num[2*i+1] = hexDigits[x>>4], hexDigits[x&0xf]
	}
	copy(b[n:], num[:])
	g.row++
	return b[:KeyBytes], b[KeyBytes:]
}

// partitionOf maps a random key uniformly onto [0, r) by its leading bytes.
func partitionOf(key []byte, r int) int {
	var k [8]byte
	copy(k[:], key)
	hi, _ := bits.Mul64(binary.BigEndian.Uint64(k[:]), uint64(r))
	return int(hi)
}

// Digest is an order-independent digest of a multiset of records: their
// count and the wrapping sums of two mixes of each record's 64-bit hash
// (xxhash of key and value concatenated, and the key's length). Two
// digests are equal when the same records arrived, each exactly once: a
// lost record and a duplicated one would have to have equal hashes to
// cancel out.
type Digest struct {
	Count uint64
	Sum   uint64
	Mix   uint64
	h     xxhash.Digest
}

// Add adds one record.
func (d *Digest) Add(key, value []byte) {
	x, ok := uint64(0), false
	if n, m := len(key), len(value); m > 0 && cap(key)-n >= m {
		// Records decoded from a frame, and generated ones, have the
		// value right after the key: hash them in one call.
		if ext := key[:n+m]; &ext[n] == &value[0] {
			x, ok = xxhash.Sum64(ext), true
		}
	}
	if !ok {
		d.h.Reset()
		d.h.Write(key)
		d.h.Write(value)
		x = d.h.Sum64()
	}
	x ^= uint64(len(key)) * 0xff51afd7ed558ccd
	d.Count++
	d.Sum += x
	d.Mix += bits.RotateLeft64(x*0x9e3779b97f4a7c15, 31) ^ x
}

// Merge adds the records of o.
func (d *Digest) Merge(o *Digest) {
	d.Count += o.Count
	d.Sum += o.Sum
	d.Mix += o.Mix
}

// String renders the digest as count-sum-mix in hex.
func (d *Digest) String() string {
	return fmt.Sprintf("%d-%016x-%016x", d.Count, d.Sum, d.Mix)
}
