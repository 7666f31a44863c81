package shuffle

import (
	"encoding/binary"
	"hash/crc32"
)

// An index file holds the R+1 offsets of a sorted map output's data file:
// block r is bytes [off[r], off[r+1]). Layout, little endian:
//
//	0   "SHIX"
//	4   uint32 version (1)
//	8   uint32 R
//	12  (R+1) × uint64 offsets, off[0] = 0, non-decreasing
//	..  uint32 CRC32-C of everything before it
const (
	indexMagic   = "SHIX"
	indexVersion = 1
	// MaxPartitions bounds R, so that an index is at most ~8 MiB.
	MaxPartitions = 1 << 20
)

// IndexSize is the size of the index file of r reduce partitions.
func IndexSize(r int) int { return 12 + 8*(r+1) + 4 }

// EncodeIndex returns the index file holding offsets (len = R+1).
func EncodeIndex(offsets []uint64) []byte {
	b := make([]byte, 12, IndexSize(len(offsets)-1))
	copy(b, indexMagic)
	binary.LittleEndian.PutUint32(b[4:], indexVersion)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(offsets)-1))
	for _, o := range offsets {
		b = binary.LittleEndian.AppendUint64(b, o)
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// DecodeIndex parses and verifies an index file.
func DecodeIndex(b []byte) ([]uint64, error) {
	if len(b) < IndexSize(0) {
		return nil, corruptf("index truncated (%d bytes)", len(b))
	}
	if string(b[:4]) != indexMagic {
		return nil, corruptf("index magic %q", b[:4])
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != indexVersion {
		return nil, corruptf("index version %d", v)
	}
	r := int(binary.LittleEndian.Uint32(b[8:]))
	if r > MaxPartitions || len(b) != IndexSize(r) {
		return nil, corruptf("index of %d bytes does not hold %d partitions", len(b), r)
	}
	body := b[:len(b)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(b[len(b)-4:]); got != want {
		return nil, corruptf("index checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	offsets := make([]uint64, r+1)
	for i := range offsets {
		offsets[i] = binary.LittleEndian.Uint64(body[12+8*i:])
		if i == 0 && offsets[0] != 0 || i > 0 && offsets[i] < offsets[i-1] {
			return nil, corruptf("index offsets not increasing at %d", i)
		}
	}
	return offsets, nil
}

// OffsetsOf returns the R+1 offsets of blocks with the given lengths.
func OffsetsOf(lengths []uint64) []uint64 {
	off := make([]uint64, len(lengths)+1)
	for i, l := range lengths {
		off[i+1] = off[i] + l
	}
	return off
}
