package jobs

import (
	"encoding/binary"
	"io"
)

// Gensort record layout (binary mode of the sortbenchmark.org gensort tool).
const (
	SortRecordSize = 100 // bytes of a record
	SortKeySize    = 10  // the leading bytes records are sorted by
)

// GenSort writes records gensort records of 100 bytes, as gensort's binary
// mode lays them out: a 10-byte random binary key; 0x00 0x11; the record
// number as 32 upper-case hex digits; 0x88 0x99 0xAA 0xBB; 48 bytes of
// filler, 12 runs of 4 equal letters 'A'-'Z' that depend on the record
// number; 0xCC 0xDD 0xEE 0xFF. The keys are not gensort's own (it uses
// another random generator), so files are gensort-shaped, not identical.
func GenSort(w io.Writer, records int64, seed uint64) error {
	if err := checkRecords("sort", records); err != nil {
		return err
	}
	rng := newRand(seed, streamSort)
	bw := newGenWriter(w)
	var rec [SortRecordSize]byte
	rec[10], rec[11] = 0x00, 0x11
	for i := 12; i < 28; i++ {
		rec[i] = '0' // the high 64 bits of the record number
	}
	copy(rec[44:48], []byte{0x88, 0x99, 0xAA, 0xBB})
	copy(rec[96:100], []byte{0xCC, 0xDD, 0xEE, 0xFF})
	for row := range uint64(records) {
		var key [16]byte
		binary.BigEndian.PutUint64(key[:8], rng.Uint64())
		binary.BigEndian.PutUint64(key[8:], rng.Uint64())
		copy(rec[:SortKeySize], key[:])
		for i := range 16 {
			rec[28+i] = hexUpper[row>>(60-4*i)&0xf]
		}
		for i := range 12 {
			c := 'A' + byte((row+uint64(i)*7)%26)
			rec[48+4*i], rec[49+4*i], rec[50+4*i], rec[51+4*i] = c, c, c, c
		}
		if _, err := bw.Write(rec[:]); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// GenSortASCII writes records gensort records of 100 bytes as gensort's
// ASCII mode (-a) lays them out, which are also lines: a 10-character key
// of printable ASCII (' ' to '~'); two spaces; the record number as 32
// upper-case hex digits; two spaces; 52 bytes of filler letters; "\r\n".
// The key contains no '\n', so line-oriented tools such as sort(1) sort
// the same file, and under LC_ALL=C their line order is the key order.
func GenSortASCII(w io.Writer, records int64, seed uint64) error {
	if err := checkRecords("sort-ascii", records); err != nil {
		return err
	}
	rng := newRand(seed, streamSort)
	bw := newGenWriter(w)
	var rec [SortRecordSize]byte
	rec[10], rec[11] = ' ', ' '
	for i := 12; i < 28; i++ {
		rec[i] = '0'
	}
	rec[44], rec[45] = ' ', ' '
	rec[98], rec[99] = '\r', '\n'
	for row := range uint64(records) {
		x, y := rng.Uint64(), rng.Uint64()
		for i := range SortKeySize {
			src := &x
			if i >= 5 {
				src = &y
			}
			rec[i] = ' ' + byte(*src%95)
			*src /= 95
		}
		for i := range 16 {
			rec[28+i] = hexUpper[row>>(60-4*i)&0xf]
		}
		for i := range 13 {
			c := 'A' + byte((row+uint64(i)*7)%26)
			rec[46+4*i], rec[47+4*i], rec[48+4*i], rec[49+4*i] = c, c, c, c
		}
		if _, err := bw.Write(rec[:]); err != nil {
			return err
		}
	}
	return bw.Flush()
}
