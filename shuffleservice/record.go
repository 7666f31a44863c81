package shuffleservice

import (
	"encoding/binary"
)

// A record in a frame's raw payload (and in a sort writer's arena) is
//
//	uvarint len(key) | uvarint len(value) | key | value
//
// Keys and values are opaque bytes; the engine's codecs give them meaning.

// recordSize is the encoded size of a record.
func recordSize(key, value []byte) int {
	return uvarintLen(uint64(len(key))) + uvarintLen(uint64(len(value))) + len(key) + len(value)
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// appendRecord appends the encoding of (key, value) to dst.
func appendRecord(dst, key, value []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	dst = append(dst, key...)
	return append(dst, value...)
}

// nextRecord splits the first record off b. The key and value alias b.
func nextRecord(b []byte) (key, value, rest []byte, err error) {
	kl, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, nil, nil, corruptf("record key length unreadable")
	}
	b = b[n:]
	vl, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, nil, nil, corruptf("record value length unreadable")
	}
	b = b[n:]
	if kl > uint64(len(b)) || vl > uint64(len(b))-kl {
		return nil, nil, nil, corruptf("record of %d+%d bytes overruns its frame (%d left)", kl, vl, len(b))
	}
	return b[:kl], b[kl : kl+vl], b[kl+vl:], nil
}
