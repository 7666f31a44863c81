package shuffleservice

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
}

// sortEntry locates one record of the arena.
type sortEntry struct {
	part   uint32
	off    uint32 // offset of the record in the arena
	prefix uint64 // first 8 key bytes, big endian, zero padded
}

const sortEntrySize = 16

// A sorter whose limit is at most sorterInitArena is allocated whole at
// once, a quarter for entries and the rest for the arena. A larger one
// starts with sorterInitArena bytes of arena and a quarter of that for
// entries, and both grow fourfold, as records need, up to the limit.
const sorterInitArena = 1 << 20

// sorterGrowth is the factor by which the arena and the entries grow: 4
// rather than 2 copies a third as many bytes on the way to a 64 MiB arena.
const sorterGrowth = 4

func newSorter(limit int) *sorter {
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
	s.arena = appendRecord(s.arena, key, value)
	s.entries = append(s.entries, sortEntry{part: uint32(p), off: uint32(off), prefix: keyPrefix(key)})
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

// recordHeader decodes the two lengths at the start of an encoded record
// b: h is the size of the lengths, the key is b[h:h+kl], the value follows.
// The arena holds only records it encoded, so no bound is checked here.
func recordHeader(b []byte) (h, kl, vl int) {
	if b[0] < 0x80 && b[1] < 0x80 { // both lengths < 128: one byte each
		return 2, int(b[0]), int(b[1])
	}
	k, n1 := binary.Uvarint(b)
	v, n2 := binary.Uvarint(b[n1:])
	return n1 + n2, int(k), int(v)
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
			if a.part != b.part {
				if a.part < b.part {
					return -1
				}
				return 1
			}
			return compareEntryKeys(arena, a, b)
		})
	}
}

// sortKeys sorts entries of one partition by key: a quicksort on the
// prefixes, inlined, that falls back to slices.SortFunc past a depth of
// 2·log2(n) (a degenerate input).
func (s *sorter) sortKeys(e []sortEntry) {
	sortEntries(e, s.arena, 2*bits.Len(uint(len(e))))
}

func sortEntries(e []sortEntry, arena []byte, depth int) {
	for len(e) > 16 {
		if depth == 0 {
			slices.SortFunc(e, func(a, b sortEntry) int { return compareEntryKeys(arena, a, b) })
			return
		}
		depth--
		// Median of three to e[0], then Hoare partition around it.
		m, l := len(e)/2, len(e)-1
		if entryLess(arena, e[m], e[0]) {
			e[m], e[0] = e[0], e[m]
		}
		if entryLess(arena, e[l], e[m]) {
			e[l], e[m] = e[m], e[l]
			if entryLess(arena, e[m], e[0]) {
				e[m], e[0] = e[0], e[m]
			}
		}
		e[0], e[m] = e[m], e[0]
		p := e[0]
		i, j := 0, len(e)
		for {
			for i++; i < len(e) && entryLess(arena, e[i], p); i++ {
			}
			for j--; entryLess(arena, p, e[j]); j-- {
			}
			if i >= j {
				break
			}
			e[i], e[j] = e[j], e[i]
		}
		e[0], e[j] = e[j], e[0]
		// Recurse on the smaller side, loop on the larger.
		if j < len(e)-j {
			sortEntries(e[:j], arena, depth)
			e = e[j+1:]
		} else {
			sortEntries(e[j+1:], arena, depth)
			e = e[:j]
		}
	}
	for i := 1; i < len(e); i++ {
		for j := i; j > 0 && entryLess(arena, e[j], e[j-1]); j-- {
			e[j], e[j-1] = e[j-1], e[j]
		}
	}
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
	ka, _ := recordAt(arena, a.off)
	kb, _ := recordAt(arena, b.off)
	return bytes.Compare(ka, kb)
}

// bucket orders the entries by partition with an in-place counting sort
// (American flag sort): starts[p] is where partition p begins.
func (s *sorter) bucket(r int) {
	if cap(s.starts) < r+1 {
		s.starts = make([]uint32, r+1)
		s.next = make([]uint32, r+1)
	}
	starts, next := s.starts[:r+1], s.next[:r+1]
	clear(starts)
	e := s.entries
	for i := range e {
		starts[e[i].part+1]++
	}
	for p := 1; p <= r; p++ {
		starts[p] += starts[p-1]
	}
	copy(next, starts)
	for p := range uint32(r) {
		end := starts[p+1]
		for i := next[p]; i < end; i = next[p] {
			x := e[i]
			for x.part != p {
				d := next[x.part]
				next[x.part]++
				x, e[d] = e[d], x
			}
			e[i] = x
			next[p]++
		}
	}
}

// partitionEnd returns the index after the last entry of partition p,
// starting at i, in sorted entries.
func (s *sorter) partitionEnd(i int, p uint32) int {
	e := s.entries
	for i < len(e) && e[i].part == p {
		i++
	}
	return i
}
