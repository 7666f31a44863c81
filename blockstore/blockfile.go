package blockstore

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
)

// A block file holds one block:
//
//	0  [4]byte "SHBK"
//	4  uint8   format version (1)
//	5  uint64  length n of the block
//	13 uint32  CRC32-C of bytes [0, 13) and of the block
//	17 the block, n bytes
//
// little endian. shuffleservice's frames are not reused: their encoder is
// not exported and a frame is bounded to 16 MiB, while a cached partition
// may be far larger. The format is as simple as a frame: a checksummed
// header and payload, verified in full before a byte is handed out.
const (
	fileMagic      = "SHBK"
	fileVersion    = 1
	fileHeaderSize = 17
	fileSuffix     = ".blk"
	tempSuffix     = ".tmp"
)

// BlocksDirName is the directory, in each DIR/APP, that holds the
// application's blocks on disk. The node service, which owns DIR/APP as a
// whole, leaves it to the store.
const BlocksDirName = "blocks"

// castagnoli is the CRC-32C table; crc32 only reads it.
//
//lint:table
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeHeader returns the header of a file holding data.
func encodeHeader(data []byte) []byte {
	h := make([]byte, fileHeaderSize)
	copy(h, fileMagic)
	h[4] = fileVersion
	binary.LittleEndian.PutUint64(h[5:13], uint64(len(data)))
	crc := crc32.Update(crc32.Checksum(h[:13], castagnoli), castagnoli, data)
	binary.LittleEndian.PutUint32(h[13:17], crc)
	return h
}

// decodeBlock verifies a whole block file and returns its block (a
// subslice of b). Any damage is an error wrapping ErrCorrupt.
func decodeBlock(b []byte) ([]byte, error) {
	if len(b) < fileHeaderSize {
		return nil, corruptf("block file header truncated (%d bytes)", len(b))
	}
	if string(b[:4]) != fileMagic {
		return nil, corruptf("block file magic %q is not %q", b[:4], fileMagic)
	}
	if b[4] != fileVersion {
		return nil, corruptf("block file version %d unknown", b[4])
	}
	n := binary.LittleEndian.Uint64(b[5:13])
	if n != uint64(len(b)-fileHeaderSize) {
		return nil, corruptf("block file holds %d bytes, header says %d", len(b)-fileHeaderSize, n)
	}
	data := b[fileHeaderSize:]
	want := binary.LittleEndian.Uint32(b[13:17])
	if got := crc32.Update(crc32.Checksum(b[:13], castagnoli), castagnoli, data); got != want {
		return nil, corruptf("block file checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	return data, nil
}

// blockFileName is the final name of a block file. seq makes every file a
// Put writes distinct, so that a replaced or removed block's file can be
// deleted without racing a newer one of the same ID.
func blockFileName(id BlockID, seq uint64) string {
	return fmt.Sprintf("rdd-%d-part-%d-%d%s", id.RDD, id.Partition, seq, fileSuffix)
}

// writeBlockFile writes data to path: to a temporary name first, then
// renamed. It is not fsynced: a block is a cache, and a file damaged by a
// power loss fails its checksum and is recomputed.
func writeBlockFile(path string, data []byte) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("blockstore: create block directory: %w", err)
	}
	tmp := path + tempSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("blockstore: write block file: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(encodeHeader(data)); err != nil {
		return fmt.Errorf("blockstore: write block file %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("blockstore: write block file %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("blockstore: write block file %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("blockstore: rename block file: %w", err)
	}
	return nil
}

// readBlockFile reads and verifies the block file at path, which should
// hold size bytes of block.
func readBlockFile(path string, size int64) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, corruptf("block file %s is missing", path)
		}
		return nil, fmt.Errorf("blockstore: read block file: %w", err)
	}
	data, err := decodeBlock(b)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	if int64(len(data)) != size {
		return nil, corruptf("block file %s holds %d bytes, catalogue says %d", path, len(data), size)
	}
	return data, nil
}
