package shuffle

import (
	"encoding/binary"
)

// A record in a frame's raw payload (and in a sort writer's arena) is
//
//	uvarint len(key) | uvarint len(value) | key | value
//
// Keys and values are opaque bytes; the engine's codecs give them meaning.
// Both lengths come first, so the sort writer reads a record's header
// (recordHeader) without walking its key. This framing is not
// internal/codec's (one length, then the bytes: codec.AppendFramed): the
// two differ on purpose, and this one is the format of every shuffle
// file.

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

// AppendRecord appends the encoding of (key, value) to dst.
func AppendRecord(dst, key, value []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = binary.AppendUvarint(dst, uint64(len(value)))
	dst = append(dst, key...)
	return append(dst, value...)
}

// NextRecord splits the first record off b. The key and value alias b.
func NextRecord(b []byte) (key, value, rest []byte, err error) {
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
