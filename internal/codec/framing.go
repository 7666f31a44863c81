package codec

import "encoding/binary"

// The framing of one encoding among several: its length as a uvarint, then
// its bytes,
//
//	uvarint len(b) | b
//
// It is shoal's one length-prefixed framing: a [Tuple2]'s first component
// and each element of a [SliceOf] here, and in package client the records
// of a cached block and of a checkpoint partition (both kept on disk), a
// collect result and a key sample. AppendFramed and appendFramed write it,
// CutFramed is its only reader.
//
// The shuffle's records are framed otherwise, both lengths first
// (uvarint len(key) | uvarint len(value) | key | value; see
// shuffleservice/shuffle/record.go): the sort writer reads a record's
// header without walking its key, and the format is that of every shuffle
// file, so the two stay apart.

// AppendFramed appends b framed: its length as a uvarint, then b.
func AppendFramed(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// CutFramed splits the framed bytes at the start of src from the rest.
// frame and rest alias src. A length that cannot be read, or that runs
// past the end of src, is an error wrapping ErrCorrupt.
func CutFramed(src []byte) (frame, rest []byte, err error) {
	n, k := binary.Uvarint(src)
	if k <= 0 {
		return nil, nil, corrupt("bad length prefix %x", src[:min(len(src), binary.MaxVarintLen64)])
	}
	if n > uint64(len(src)-k) {
		return nil, nil, corrupt("length %d overruns the %d bytes left", n, len(src)-k)
	}
	return src[k : k+int(n)], src[k+int(n):], nil
}

// appendFramed is AppendFramed of c's encoding of v, written in place:
// it reserves one byte for the length, enough below 128 bytes, and moves
// the encoding along when the length needs more.
func appendFramed[V any](dst []byte, c Codec[V], v V) []byte {
	start := len(dst)
	dst = c.Append(append(dst, 0), v)
	n := len(dst) - start - 1
	if n < 0x80 {
		dst[start] = byte(n)
		return dst
	}
	var prefix [binary.MaxVarintLen64]byte
	k := binary.PutUvarint(prefix[:], uint64(n))
	dst = append(dst, prefix[:k-1]...) // room to move the encoding along
	copy(dst[start+k:], dst[start+1:start+1+n])
	copy(dst[start:], prefix[:k])
	return dst
}
