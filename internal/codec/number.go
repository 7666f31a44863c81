package codec

import (
	"encoding/binary"
	"math"
)

// Fixed-width codecs for numbers and bools; see "Order" in the package
// documentation.

const signBit = 1 << 63

type (
	int64Codec   struct{}
	intCodec     struct{}
	int32Codec   struct{}
	uint64Codec  struct{}
	uint32Codec  struct{}
	float64Codec struct{}
	boolCodec    struct{}
)

func (int64Codec) Append(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^signBit)
}

func (int64Codec) Decode(src []byte) (int64, error) {
	u, err := uint64Codec{}.Decode(src)
	if err != nil {
		return 0, err
	}
	return int64(u ^ signBit), nil
}

func (intCodec) Append(dst []byte, v int) []byte { return int64Codec{}.Append(dst, int64(v)) }

func (intCodec) Decode(src []byte) (int, error) {
	v, err := int64Codec{}.Decode(src)
	if err == nil && v != int64(int(v)) {
		err = corrupt("%d overflows int", v)
	}
	return int(v), err
}

func (int32Codec) Append(dst []byte, v int32) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(v)^(1<<31))
}

func (int32Codec) Decode(src []byte) (int32, error) {
	u, err := uint32Codec{}.Decode(src)
	if err != nil {
		return 0, err
	}
	return int32(u ^ (1 << 31)), nil
}

func (uint64Codec) Append(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }

func (uint64Codec) Decode(src []byte) (uint64, error) {
	if len(src) != 8 {
		return 0, corrupt("a 64-bit number is 8 bytes, not %d", len(src))
	}
	return binary.BigEndian.Uint64(src), nil
}

func (uint32Codec) Append(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

func (uint32Codec) Decode(src []byte) (uint32, error) {
	if len(src) != 4 {
		return 0, corrupt("a 32-bit number is 4 bytes, not %d", len(src))
	}
	return binary.BigEndian.Uint32(src), nil
}

func (float64Codec) Append(dst []byte, v float64) []byte {
	u := math.Float64bits(v)
	if u&signBit != 0 {
		u = ^u
	} else {
		u ^= signBit
	}
	return binary.BigEndian.AppendUint64(dst, u)
}

func (float64Codec) Decode(src []byte) (float64, error) {
	u, err := uint64Codec{}.Decode(src)
	if err != nil {
		return 0, err
	}
	if u&signBit != 0 {
		u ^= signBit
	} else {
		u = ^u
	}
	return math.Float64frombits(u), nil
}

func (boolCodec) Append(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func (boolCodec) Decode(src []byte) (bool, error) {
	if len(src) != 1 || src[0] > 1 {
		return false, corrupt("a bool is one byte, 0 or 1, not %x", src)
	}
	return src[0] == 1, nil
}
