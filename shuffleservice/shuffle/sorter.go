package shuffle

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"slices"
)

// sorter is the sort writer's arena. Records are appended, in the encoding
// of record.go, to one byte slice; each gets a fixed-size sortEntry. The
// entries are sorted by (partition, key): by partition with an in-place
// counting sort, then by the key's 8-byte prefix, the full keys breaking
// ties. Nothing is allocated per record: the arena and the entries grow
// geometrically up to the memory limit and are reused after each spill.
//
// Memory: cap(arena) + sortEntrySize*cap(entries) never exceeds limit.
type sorter struct {
	limit   int
	arena   []byte
	entries []sortEntry
	peak    int64

	// starts and next are the counting sort's bucket bounds, R+1 each.
	starts, next []uint32

	// radix is sortEntries' scratch: at most radixScratchLen entries and
	// 1<<radixMaxBits+1 counts (72 KiB), allocated at the first sort that
	// needs it and kept; like starts and next, not counted in memory().
	radix radixScratch
}

// sortEntry locates one record of the arena.
type sortEntry struct {
	// part holds the partition in its low bits and, in its top 4 bits,
	// the key's length when it is at most 8 (9 when longer): with the
	// prefix, that orders keys of up to 8 bytes without reading the arena.
	part   uint32
	off    uint32 // offset of the record in the arena
	prefix uint64 // first 8 key bytes, big endian, zero padded
}

const (
	klenShift = 28
	partMask  = 1<<klenShift - 1 // MaxPartitions fits below it
)

func (e sortEntry) partition() uint32 { return e.part & partMask }
func (e sortEntry) klenCode() uint32  { return e.part >> klenShift }

const sortEntrySize = 16

// A sorter whose limit is at most sorterInitArena is allocated whole at
// once, a quarter for entries and the rest for the arena. A larger one
// starts with sorterInitArena bytes of arena and a quarter of that for
// entries, and both grow fourfold, as records need, up to the limit.
const sorterInitArena = 1 << 20

// sorterGrowth is the factor by which the arena and the entries grow: 4
// rather than 2 copies a third as many bytes on the way to a 64 MiB arena.
const sorterGrowth = 4

func newSorter(limit int, pool *BufferPool) *sorter {
	if b, ok := pool.get(limit); ok {
		s := &sorter{limit: limit, arena: b.arena, entries: b.entries}
		s.notePeak()
		return s
	}
	a, e := sorterInitArena, sorterInitArena/4/sortEntrySize
	if limit <= sorterInitArena {
		e = max(1, limit/4/sortEntrySize)
		a = limit - e*sortEntrySize
	}
	s := &sorter{
		limit:   limit,
		arena:   make([]byte, 0, a),
		entries: make([]sortEntry, 0, e),
	}
	s.notePeak()
	return s
}

// memory is the bytes the sorter holds.
func (s *sorter) memory() int { return cap(s.arena) + sortEntrySize*cap(s.entries) }

func (s *sorter) len() int { return len(s.entries) }

// add appends a record of encoded size n for partition p. It reports false,
// adding nothing, when the record does not fit in the memory limit.
func (s *sorter) add(p int, key, value []byte, n int) bool {
	if len(s.arena)+n > cap(s.arena) && !s.growArena(n) {
		return false
	}
	if len(s.entries) == cap(s.entries) && !s.growEntries() {
		return false
	}
	off := len(s.arena)
	s.arena = AppendRecord(s.arena, key, value)
	s.entries = append(s.entries, sortEntry{part: uint32(p) | uint32(min(len(key), 9))<<klenShift, off: uint32(off), prefix: keyPrefix(key)})
	return true
}

func (s *sorter) growArena(n int) bool {
	need := len(s.arena) + n
	c := max(sorterGrowth*cap(s.arena), need)
	if len(s.entries) > 0 {
		// Leave room for the entries of a full arena, at the record size
		// seen so far, so that neither slice starves the other.
		avg := int64(len(s.arena) / len(s.entries))
		c = min(c, max(need, int(int64(s.limit)*avg/(avg+sortEntrySize))))
	}
	c = min(c, s.limit-sortEntrySize*cap(s.entries))
	if c < need {
		return false
	}
	a := make([]byte, len(s.arena), c)
	copy(a, s.arena)
	s.arena = a
	s.notePeak()
	return true
}

func (s *sorter) growEntries() bool {
	c := min(sorterGrowth*cap(s.entries), (s.limit-cap(s.arena))/sortEntrySize)
	if c <= len(s.entries) {
		return false
	}
	e := make([]sortEntry, len(s.entries), c)
	copy(e, s.entries)
	s.entries = e
	s.notePeak()
	return true
}

// makeRoom reshapes an empty sorter so that a record of encoded size n
// fits, giving the entries' memory back to the arena if need be. The
// caller has checked n+sortEntrySize <= limit.
func (s *sorter) makeRoom(n int) {
	if cap(s.arena) >= n && cap(s.entries) > 0 {
		return
	}
	e := max(1, min(cap(s.entries), (s.limit-n)/sortEntrySize/2))
	s.entries = make([]sortEntry, 0, e)
	s.arena = make([]byte, 0, s.limit-sortEntrySize*e)
	s.notePeak()
}

func (s *sorter) notePeak() {
	s.peak = max(s.peak, int64(s.memory()))
}

// release gives the sorter's memory to pool; the sorter is unusable after.
func (s *sorter) release(pool *BufferPool) {
	pool.put(sorterBuffers{arena: s.arena, entries: s.entries})
	s.arena, s.entries = nil, nil
}

// reset empties the sorter, keeping its memory.
func (s *sorter) reset() {
	s.arena = s.arena[:0]
	s.entries = s.entries[:0]
}

// keyPrefix is the first 8 bytes of key, big endian, zero padded: prefixes
// compare as the keys do, except that equal prefixes say nothing.
func keyPrefix(key []byte) uint64 {
	if len(key) >= 8 {
		return binary.BigEndian.Uint64(key)
	}
	var b [8]byte
	copy(b[:], key)
	return binary.BigEndian.Uint64(b[:])
}

// recordAt returns the key of the record at off in arena and the length of
// the whole encoded record.
func recordAt(arena []byte, off uint32) (key []byte, n int) {
	b := arena[off:]
	h, kl, vl := recordHeader(b)
	return b[h : h+kl], h + kl + vl
}

// recordKV decodes the record at off in arena.
func recordKV(arena []byte, off uint32) (key, value []byte) {
	b := arena[off:]
	h, kl, vl := recordHeader(b)
	return b[h : h+kl], b[h+kl : h+kl+vl]
}

// sort orders the entries by (partition, key); r is the number of
// partitions.
func (s *sorter) sort(r int) {
	e := s.entries
	if len(e) < 2 {
		return
	}
	switch {
	case r == 1:
		s.sortKeys(e)
	case r <= len(e):
		s.bucket(r)
		for p := range r {
			if lo, hi := s.starts[p], s.starts[p+1]; hi-lo > 1 {
				s.sortKeys(e[lo:hi])
			}
		}
	default:
		// More partitions than records: a counting sort would spend its
		// time on empty buckets.
		arena := s.arena
		slices.SortFunc(e, func(a, b sortEntry) int {
			if pa, pb := a.partition(), b.partition(); pa != pb {
				if pa < pb {
					return -1
				}
				return 1
			}
			return compareEntryKeys(arena, a, b)
		})
	}
}

// Sorting. The entries are first grouped by partition with an in-place
// counting sort (bucket), then each partition is sorted by key with an
// adaptive MSD radix sort on the 8-byte prefixes (sortEntries):
//
//   - a range of at most insertionMax entries is insertion sorted with the
//     full comparison (prefix, then key bytes);
//   - otherwise the OR of prefix^first over the range gives the highest bit
//     at which its prefixes differ, and the range is distributed by the w
//     bits starting there, w chosen so that buckets hold one or two
//     entries (at most radixMaxBits). If no bucket exceeds insertionMax,
//     one insertion sort over the whole range finishes it (entries of
//     different buckets being in order already, it works within buckets);
//     else every bucket is sorted the same way, its prefixes now agreeing
//     on all those bits. Skipping the common leading bits matters:
//     partitions assigned by the key's top bits share them, as do keys
//     with a common text prefix;
//   - a range whose prefixes are all equal is sorted by the full keys
//     (slices.SortFunc, pattern-defeating quicksort: O(n log n) even on
//     all-equal keys).
//
// A range of up to radixScratchLen entries is distributed by a stable
// counting sort through the sorter's scratch (64 KiB of entries, 8 KiB of
// counts). A larger one (a huge partition, or the single partition of
// R = 1) is distributed in place, 8 bits at a time, by an American flag
// sort whose swaps do not chain (permute), so that their cache misses
// overlap; its buckets then mostly fit the scratch. bucket groups the
// partitions the same way.
//
// Each level consumes at least 4 bits of the prefix, so the recursion is at
// most 16 deep and does O(n) work per level.

const (
	// insertionMax is the largest range sortEntries insertion sorts.
	insertionMax = 24
	// radixMaxBits is the widest digit of the out-of-place distribution.
	radixMaxBits = 11
	// radixScratchLen is the largest range distributed out of place: 64 KiB
	// of entries.
	radixScratchLen = 4096
)

// radixScratch is the memory of sortEntries' out-of-place distribution.
type radixScratch struct {
	buf    []sortEntry
	counts []uint32
}

// sortKeys sorts entries of one partition by key.
func (s *sorter) sortKeys(e []sortEntry) {
	if len(e) <= insertionMax {
		insertionSort(e, s.arena)
		return
	}
	if n := min(len(s.entries), radixScratchLen); len(s.radix.buf) < n {
		s.radix.buf = make([]sortEntry, n)
		s.radix.counts = make([]uint32, 1<<radixMaxBits+1)
	}
	sortEntries(e, s.arena, &s.radix)
}

// sortEntries sorts entries of one partition by key: see above.
func sortEntries(e []sortEntry, arena []byte, sc *radixScratch) {
	if len(e) <= insertionMax {
		insertionSort(e, arena)
		return
	}
	first := e[0].prefix
	var diff uint64
	for i := range e {
		diff |= e[i].prefix ^ first
	}
	if diff == 0 {
		sortFullKeys(e, arena)
		return
	}
	if len(e) > len(sc.buf) {
		sortLarge(e, arena, sc, diff)
		return
	}

	// Distribute by the w bits below the highest differing one, w about
	// log2(n): one or two entries per bucket on random prefixes.
	w := min(radixMaxBits, bits.Len(uint(len(e)))-1)
	shift := uint(max(bits.Len64(diff)-w, 0))
	mask := uint64(1)<<w - 1
	counts := sc.counts[:mask+2]
	clear(counts)
	for i := range e {
		counts[e[i].prefix>>shift&mask+1]++
	}
	var biggest uint32
	for d := 1; d < len(counts); d++ {
		biggest = max(biggest, counts[d])
		counts[d] += counts[d-1]
	}
	buf := sc.buf[:len(e)]
	for _, x := range e {
		d := x.prefix >> shift & mask
		buf[counts[d]] = x
		counts[d]++
	}
	copy(e, buf)

	if biggest <= insertionMax {
		// Small buckets, the usual case: entries of different buckets
		// are in order, and one insertion sort over the range sorts
		// within the buckets, with a comparison per entry in between.
		insertionSort(e, arena)
		return
	}
	// Sort the buckets, found again by their digits: the scratch is free
	// for the recursion.
	for lo := 0; lo < len(e); {
		d := e[lo].prefix >> shift & mask
		hi := lo + 1
		for hi < len(e) && e[hi].prefix>>shift&mask == d {
			hi++
		}
		sortBucket(e[lo:hi], arena, sc, shift)
		lo = hi
	}
}

// sortBucket sorts a bucket of sortEntries distributed by the bits from
// shift up.
func sortBucket(e []sortEntry, arena []byte, sc *radixScratch, shift uint) {
	switch {
	case len(e) <= 1:
	case len(e) <= insertionMax:
		insertionSort(e, arena)
	case shift == 0: // the whole prefixes are equal
		sortFullKeys(e, arena)
	default:
		sortEntries(e, arena, sc)
	}
}

// sortLarge is sortEntries for a range larger than the scratch: it
// distributes the range in place by 8 bits and sorts the buckets.
func sortLarge(e []sortEntry, arena []byte, sc *radixScratch, diff uint64) {
	shift := uint(max(bits.Len64(diff)-8, 0))
	var next, end [256]uint32
	for i := range e {
		end[byte(e[i].prefix>>shift)]++
	}
	var sum uint32
	for d := range end {
		next[d] = sum
		sum += end[d]
		end[d] = sum
	}
	permute(e, &next, &end, shift)
	lo := uint32(0)
	for _, hi := range end {
		sortBucket(e[lo:hi], arena, sc, shift)
		lo = hi
	}
}

// permute moves every entry of e to its bucket, d = byte(prefix>>shift):
// bucket d ends at end[d], and next[d] is its first slot holding an entry
// that is not yet in place (initially, its start). Each pass walks the
// unplaced slots of each bucket once, sending every entry met to the next
// free slot of its bucket and taking in the entry found there; an entry
// taken in waits for a later pass. Every swap places one entry for good.
func permute(e []sortEntry, next, end *[256]uint32, shift uint) {
	for left := true; left; {
		left = false
		for d := range next {
			i, hi := next[d], end[d]
			if i >= hi {
				continue
			}
			left = true
			for ; i < hi; i++ {
				x := e[i]
				t := byte(x.prefix >> shift)
				j := next[t]
				next[t]++
				e[i] = e[j]
				e[j] = x
			}
		}
	}
}

// insertionSort sorts a few entries of one partition by key, stably.
func insertionSort(e []sortEntry, arena []byte) {
	for i := 1; i < len(e); i++ {
		x := e[i]
		j := i
		for ; j > 0 && entryLess(arena, x, e[j-1]); j-- {
			e[j] = e[j-1]
		}
		e[j] = x
	}
}

// sortFullKeys sorts entries of one partition whose prefixes are all
// equal by their full keys.
func sortFullKeys(e []sortEntry, arena []byte) {
	slices.SortFunc(e, func(a, b sortEntry) int {
		ka, _ := recordAt(arena, a.off)
		kb, _ := recordAt(arena, b.off)
		return bytes.Compare(ka, kb)
	})
}

// entryLess orders entries of one partition by key.
func entryLess(arena []byte, a, b sortEntry) bool {
	if a.prefix != b.prefix {
		return a.prefix < b.prefix
	}
	return compareEntryKeys(arena, a, b) < 0
}

func compareEntryKeys(arena []byte, a, b sortEntry) int {
	if a.prefix != b.prefix {
		if a.prefix < b.prefix {
			return -1
		}
		return 1
	}
	// Equal prefixes: unless both keys are longer than 8 bytes, the
	// shorter key is a prefix of the other (or they are equal).
	if ca, cb := a.klenCode(), b.klenCode(); ca != cb || ca <= 8 {
		return int(ca) - int(cb)
	}
	ka, _ := recordAt(arena, a.off)
	kb, _ := recordAt(arena, b.off)
	return bytes.Compare(ka, kb)
}

// bucket orders the entries by partition with an in-place counting sort,
// distributing as permute does: starts[p] is where partition p begins.
func (s *sorter) bucket(r int) {
	if cap(s.starts) < r+1 {
		s.starts = make([]uint32, r+1)
		s.next = make([]uint32, r+1)
	}
	starts, next := s.starts[:r+1], s.next[:r+1]
	clear(starts)
	e := s.entries
	for i := range e {
		starts[e[i].partition()+1]++
	}
	for p := 1; p <= r; p++ {
		starts[p] += starts[p-1]
	}
	copy(next, starts)
	for left := true; left; {
		left = false
		for p := range r {
			i, hi := next[p], starts[p+1]
			if i >= hi {
				continue
			}
			left = true
			for ; i < hi; i++ {
				x := e[i]
				p := x.partition()
				d := next[p]
				next[p]++
				e[i] = e[d]
				e[d] = x
			}
		}
	}
}

// partitionEnd returns the index after the last entry of partition p,
// starting at i, in sorted entries.
func (s *sorter) partitionEnd(i int, p uint32) int {
	e := s.entries
	for i < len(e) && e[i].partition() == p {
		i++
	}
	return i
}
