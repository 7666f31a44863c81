package checkpoint

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/s2"
)

// A partition object is
//
//	0   [4]byte "SHCP"
//	4   uint8   format version (1)
//	5   uint8   codec of the payload (0 none, 1 s2 block)
//	6   [2]byte zero
//	8   uint64  raw length (the partition's bytes, uncompressed)
//	16  uint32  CRC32-C of the raw bytes
//	20  uint32  CRC32-C of the payload, continued over bytes [0, 20)
//	24  payload
//
// all little endian. The second checksum is the object's: the manifest
// repeats it (PartInfo.CRC32C), with the object's size, so a reader
// checks the object before decompressing it and the raw bytes after. A
// partition that s2 does not shrink is stored raw; its payload is then its
// raw bytes, whose checksum is computed once for both fields (hence the
// payload first).
const (
	partMagic      = "SHCP"
	partVersion    = 1
	partHeaderSize = 24

	codecNone = 0
	codecS2   = 1
)

// castagnoli is the CRC-32C table; crc32 only reads it.
//
//lint:table
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// PartInfo describes one partition of a checkpoint, as WritePartition
// wrote it. The driver gathers them from the tasks into the Manifest.
type PartInfo struct {
	Part    int    `json:"part"`
	Key     string `json:"key"`      // the object's key in the store
	Size    int64  `json:"size"`     // the object's bytes
	RawSize int64  `json:"raw_size"` // the partition's bytes, uncompressed
	CRC32C  uint32 `json:"crc32c"`   // the object's checksum (header and payload)
}

// WritePartition compresses and checksums raw and stores it as partition
// part of checkpoint name. The object is written atomically under its
// final key, so writers of different partitions of one checkpoint may run
// at once, in different processes, and a retried attempt may write the
// same partition again: for the same bytes the object is the same.
// (Partitions must be deterministic: if two attempts wrote different bytes,
// the manifest gets one attempt's PartInfo and the store may hold the
// other's object, which ReadPartition then refuses as corrupt.)
func WritePartition(ctx context.Context, st Store, name string, part int, raw []byte) (PartInfo, error) {
	if err := ValidateName(name); err != nil {
		return PartInfo{}, err
	}
	obj, info, err := EncodePartition(name, part, raw)
	if err != nil {
		return PartInfo{}, err
	}
	if err := st.Put(ctx, info.Key, obj); err != nil {
		return PartInfo{}, fmt.Errorf("checkpoint %s partition %d: %w", name, part, err)
	}
	return info, nil
}

// EncodePartition returns the object WritePartition would store for
// partition part of checkpoint name, and its PartInfo, without storing
// it: for a writer that hands the object to someone else to store (a
// node service, docs/DESIGN.md §5), who checks it with CheckObject.
func EncodePartition(name string, part int, raw []byte) ([]byte, PartInfo, error) {
	if err := ValidateName(name); err != nil {
		return nil, PartInfo{}, err
	}
	if part < 0 {
		return nil, PartInfo{}, invalidf("partition %d of checkpoint %s is negative", part, name)
	}
	obj := encodePartition(raw)
	return obj, PartInfo{
		Part:    part,
		Key:     PartKey(name, part),
		Size:    int64(len(obj)),
		RawSize: int64(len(raw)),
		CRC32C:  binary.LittleEndian.Uint32(obj[20:24]),
	}, nil
}

// CheckObject checks a partition object against the size and checksum a
// manifest or a writer gives for it (PartInfo.Size and CRC32C) and
// against its own header, without decompressing it. A failure wraps
// ErrCorrupt. DecodePartition checks the raw bytes too.
func CheckObject(obj []byte, size int64, crc uint32) error {
	if int64(len(obj)) != size {
		return corruptf("partition object is %d bytes, want %d", len(obj), size)
	}
	if len(obj) < partHeaderSize || string(obj[:4]) != partMagic {
		return corruptf("not a checkpoint partition (bad header)")
	}
	stored := binary.LittleEndian.Uint32(obj[20:24])
	c := crc32.Update(crc32.Checksum(obj[partHeaderSize:], castagnoli), castagnoli, obj[:20])
	if c != stored || c != crc {
		return corruptf("partition object checksum mismatch (computed %08x, object says %08x, want %08x)", c, stored, crc)
	}
	return nil
}

// DecodePartition verifies a partition object read from anywhere (a node
// service's copy, say) against the manifest's PartInfo and returns the
// partition's raw bytes, as ReadPartition does for one read from a
// store. A failure wraps ErrCorrupt.
func DecodePartition(obj []byte, info PartInfo) ([]byte, error) { return decodePartition(obj, info) }

// encodePartition returns the object of a partition.
func encodePartition(raw []byte) []byte {
	codec := byte(codecS2)
	n := s2.MaxEncodedLen(len(raw))
	if n < 0 || !compressible(raw) { // beyond s2's block size (4 GiB), or not worth it: stored raw
		codec, n = codecNone, len(raw)
	}
	obj := make([]byte, partHeaderSize, partHeaderSize+n)
	if codec == codecS2 {
		enc := s2.Encode(obj[partHeaderSize:cap(obj)], raw)
		if len(enc) < len(raw) {
			obj = obj[:partHeaderSize+len(enc)]
		} else {
			codec = codecNone
		}
	}
	if codec == codecNone {
		obj = append(obj[:partHeaderSize], raw...)
	}
	copy(obj, partMagic)
	obj[4] = partVersion
	obj[5] = codec
	binary.LittleEndian.PutUint64(obj[8:], uint64(len(raw)))
	rawCRC := crc32.Checksum(raw, castagnoli)
	payloadCRC := rawCRC
	if codec != codecNone {
		payloadCRC = crc32.Checksum(obj[partHeaderSize:], castagnoli)
	}
	binary.LittleEndian.PutUint32(obj[16:], rawCRC)
	binary.LittleEndian.PutUint32(obj[20:], crc32.Update(payloadCRC, castagnoli, obj[:20]))
	return obj
}

// compressible guesses from samples whether s2 shrinks raw by 3% or
// more, so that an incompressible partition (already compressed data,
// random bytes) costs no full pass of the compressor and no second copy.
// Small partitions are simply tried. Deterministic: the same bytes get the
// same answer, so retried attempts write the same object.
func compressible(raw []byte) bool {
	const samples, sampleBytes = 8, 64 << 10
	if len(raw) < 4*samples*sampleBytes {
		return true
	}
	step := len(raw) / samples
	est := 0
	for i := range samples {
		s := raw[i*step : i*step+sampleBytes]
		if n := s2.EstimateBlockSize(s); n >= 0 && n < len(s) {
			est += n
		} else {
			est += len(s)
		}
	}
	return est < samples*sampleBytes*97/100
}

// ReadPartition reads partition part of the checkpoint m describes,
// verifies it against the manifest and its own checksums, and returns its
// raw bytes. A partition that fails any check is an error wrapping
// ErrCorrupt naming its URI; its bytes are never returned.
func ReadPartition(ctx context.Context, st Store, m Manifest, part int) ([]byte, error) {
	if part < 0 || part >= len(m.Partitions) {
		return nil, invalidf("partition %d of checkpoint %s is out of range [0, %d)", part, m.Name, len(m.Partitions))
	}
	info := m.Partitions[part]
	if info.Part != part || info.Key != PartKey(m.Name, part) {
		return nil, invalidf("manifest of checkpoint %s lists partition %d as %d under %q", m.Name, part, info.Part, info.Key)
	}
	obj, err := st.Get(ctx, info.Key)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s partition %d: %w", m.Name, part, err)
	}
	raw, err := decodePartition(obj, info)
	if err != nil {
		return nil, fmt.Errorf("%w (%s; the checkpoint cannot be used, recompute the partition from lineage or use an older checkpoint)", err, PartitionURI(st, m.Name, part))
	}
	return raw, nil
}

// decodePartition verifies obj against info and its own checksums and
// returns the raw bytes.
func decodePartition(obj []byte, info PartInfo) ([]byte, error) {
	if int64(len(obj)) != info.Size {
		return nil, corruptf("partition %d is %d bytes, the manifest says %d", info.Part, len(obj), info.Size)
	}
	if len(obj) < partHeaderSize || string(obj[:4]) != partMagic {
		return nil, corruptf("partition %d is not a checkpoint partition (bad header)", info.Part)
	}
	stored := binary.LittleEndian.Uint32(obj[20:24])
	payloadCRC := crc32.Checksum(obj[partHeaderSize:], castagnoli)
	c := crc32.Update(payloadCRC, castagnoli, obj[:20])
	if c != stored || c != info.CRC32C {
		return nil, corruptf("partition %d checksum mismatch (computed %08x, object says %08x, manifest says %08x)", info.Part, c, stored, info.CRC32C)
	}
	if v := obj[4]; v != partVersion {
		return nil, corruptf("partition %d has format version %d, this build reads %d", info.Part, v, partVersion)
	}
	rawLen := binary.LittleEndian.Uint64(obj[8:16])
	if rawLen != uint64(info.RawSize) {
		return nil, corruptf("partition %d raw length %d, the manifest says %d", info.Part, rawLen, info.RawSize)
	}
	payload := obj[partHeaderSize:]
	var raw []byte
	switch obj[5] {
	case codecNone:
		if uint64(len(payload)) != rawLen {
			return nil, corruptf("partition %d: uncompressed payload of %d bytes, raw length %d", info.Part, len(payload), rawLen)
		}
		raw = payload
	case codecS2:
		n, err := s2.DecodedLen(payload)
		if err != nil || uint64(n) != rawLen {
			return nil, corruptf("partition %d: s2 block of %d bytes for raw length %d (%v)", info.Part, n, rawLen, err)
		}
		raw, err = s2.Decode(make([]byte, n), payload)
		if err != nil {
			return nil, corruptf("partition %d: %v", info.Part, err)
		}
	default:
		return nil, corruptf("partition %d has unknown codec %d", info.Part, obj[5])
	}
	rawCRC := payloadCRC
	if obj[5] != codecNone {
		rawCRC = crc32.Checksum(raw, castagnoli)
	}
	if rawCRC != binary.LittleEndian.Uint32(obj[16:20]) {
		return nil, corruptf("partition %d raw checksum mismatch after decompression", info.Part)
	}
	return raw, nil
}
