package shuffle

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// Codec is the compression of a frame's payload.
type Codec uint8

const (
	CodecNone Codec = 0
	CodecS2   Codec = 1
	CodecZstd Codec = 2
)

// DefaultCodec is s2: it compresses at memory speed, so a shuffle is bound
// by disk and network rather than by the codec.
const DefaultCodec = CodecS2

func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecS2:
		return "s2"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

// ParseCodec parses "none", "s2" or "zstd".
func ParseCodec(s string) (Codec, error) {
	switch s {
	case "none":
		return CodecNone, nil
	case "s2":
		return CodecS2, nil
	case "zstd":
		return CodecZstd, nil
	}
	return 0, fmt.Errorf("%w: codec %q (want none, s2 or zstd)", ErrInvalidArgument, s)
}

// A block is a sequence of frames. A frame is
//
//	0  uint32  payload length n (as stored)
//	4  uint32  raw length (after decompression)
//	8  uint8   codec of the payload
//	9  uint32  CRC32-C of bytes [0, 9) and of the payload
//	13 payload, n bytes
//
// all little endian. A frame's raw payload holds whole records (record.go).
// A frame whose compressed form would not be smaller is stored with
// CodecNone, so incompressible data costs no decompression.
const (
	// FrameHeaderSize is the size of a frame's header.
	FrameHeaderSize = 13
	// DefaultFrameSize is the raw size at which a writer closes a frame.
	DefaultFrameSize = 64 << 10
	// MaxFrameRaw bounds a frame's raw size and so the largest record.
	MaxFrameRaw = 16 << 20
)

// castagnoli is the CRC-32C table; crc32 only reads it.
//
//lint:table
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// frameHeader is a parsed, not yet verified, frame header.
type frameHeader struct {
	n, raw int
	codec  Codec
	crc    uint32
}

func parseFrameHeader(b []byte) (frameHeader, error) {
	if len(b) < FrameHeaderSize {
		return frameHeader{}, corruptf("frame header truncated (%d bytes)", len(b))
	}
	h := frameHeader{
		n:     int(binary.LittleEndian.Uint32(b[0:4])),
		raw:   int(binary.LittleEndian.Uint32(b[4:8])),
		codec: Codec(b[8]),
		crc:   binary.LittleEndian.Uint32(b[9:13]),
	}
	switch {
	case h.codec > CodecZstd:
		return h, corruptf("frame codec %d unknown", h.codec)
	case h.raw > MaxFrameRaw:
		return h, corruptf("frame raw length %d exceeds %d", h.raw, MaxFrameRaw)
	case h.n > h.raw:
		// A payload that would not shrink is stored raw (CodecNone).
		return h, corruptf("frame payload length %d exceeds raw length %d", h.n, h.raw)
	case h.codec == CodecNone && h.n != h.raw:
		return h, corruptf("uncompressed frame has payload %d != raw %d", h.n, h.raw)
	}
	return h, nil
}

func (h frameHeader) check(header, payload []byte) error {
	c := crc32.Update(crc32.Checksum(header[:9], castagnoli), castagnoli, payload)
	if c != h.crc {
		return corruptf("frame checksum mismatch (stored %08x, computed %08x)", h.crc, c)
	}
	return nil
}

// splitFrame parses the header of the first frame of b and returns it,
// the frame's payload and the bytes after the frame, without verifying
// the checksum.
func splitFrame(b []byte) (h frameHeader, payload, rest []byte, err error) {
	if h, err = parseFrameHeader(b); err != nil {
		return h, nil, nil, err
	}
	end := FrameHeaderSize + h.n
	if len(b) < end {
		return h, nil, nil, corruptf("frame truncated: %d of %d bytes", len(b), end)
	}
	return h, b[FrameHeaderSize:end], b[end:], nil
}

// splitVerified is splitFrame that also verifies the frame's checksum.
func splitVerified(b []byte) (h frameHeader, payload, rest []byte, err error) {
	h, payload, rest, err = splitFrame(b)
	if err == nil {
		err = h.check(b[:FrameHeaderSize], payload)
	}
	if err != nil {
		return h, nil, nil, err
	}
	return h, payload, rest, nil
}

// FrameSize returns the size, header included, of the frame whose header
// starts b, from the header alone: b holds at least FrameHeaderSize bytes
// and need not hold the payload. A header that does not parse is
// ErrCorrupt. The node service uses it to cut chunks at frame boundaries.
func FrameSize(b []byte) (int, error) {
	h, err := parseFrameHeader(b)
	if err != nil {
		return 0, err
	}
	return FrameHeaderSize + h.n, nil
}

// NextFrame splits the first whole frame off b and verifies its checksum,
// without decompressing it. The node service uses it to serve only frames
// that are intact on disk.
func NextFrame(b []byte) (frame, rest []byte, err error) {
	_, payload, rest, err := splitVerified(b)
	if err != nil {
		return nil, nil, err
	}
	return b[:FrameHeaderSize+len(payload)], rest, nil
}

// VerifyFrames reports whether b is a sequence of whole, intact frames.
func VerifyFrames(b []byte) error {
	for len(b) > 0 {
		var err error
		if _, b, err = NextFrame(b); err != nil {
			return err
		}
	}
	return nil
}

// FrameEncoder compresses frames. Its buffers and zstd encoder are reused,
// so encoding allocates nothing once warm. Not safe for concurrent use.
type FrameEncoder struct {
	codec Codec
	zenc  *zstd.Encoder
	out   []byte
}

// NewFrameEncoder returns an encoder of frames compressed with c. Close
// it when done.
func NewFrameEncoder(c Codec) (*FrameEncoder, error) {
	e := &FrameEncoder{codec: c}
	if c == CodecZstd {
		var err error
		e.zenc, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Encode returns raw as one frame. The result is valid until the next call.
func (e *FrameEncoder) Encode(raw []byte) ([]byte, error) {
	if len(raw) > MaxFrameRaw {
		return nil, fmt.Errorf("%w: frame of %d bytes exceeds %d", ErrInvalidArgument, len(raw), MaxFrameRaw)
	}
	need := FrameHeaderSize + s2.MaxEncodedLen(len(raw))
	if cap(e.out) < need {
		e.out = make([]byte, need)
	}
	out := e.out[:FrameHeaderSize]
	codec := e.codec
	switch codec {
	case CodecS2:
		enc := s2.Encode(out[FrameHeaderSize:cap(out)], raw)
		out = out[:FrameHeaderSize+len(enc)]
	case CodecZstd:
		out = e.zenc.EncodeAll(raw, out)
	}
	if codec == CodecNone || len(out)-FrameHeaderSize >= len(raw) {
		codec = CodecNone
		out = append(out[:FrameHeaderSize], raw...)
	}
	binary.LittleEndian.PutUint32(out[0:4], uint32(len(out)-FrameHeaderSize))
	binary.LittleEndian.PutUint32(out[4:8], uint32(len(raw)))
	out[8] = byte(codec)
	crc := crc32.Update(crc32.Checksum(out[:9], castagnoli), castagnoli, out[FrameHeaderSize:])
	binary.LittleEndian.PutUint32(out[9:13], crc)
	e.out = out[:0]
	return out, nil
}

// Close releases the encoder's zstd state.
func (e *FrameEncoder) Close() {
	if e.zenc != nil {
		e.zenc.Close()
	}
}

// frameDecoder verifies and decompresses frames, reusing its buffers.
// Not safe for concurrent use.
type frameDecoder struct {
	zdec *zstd.Decoder
	buf  []byte
}

// decode verifies the first frame of b and returns its raw payload (valid
// until the next call) and the bytes after it.
func (d *frameDecoder) decode(b []byte) (raw, rest []byte, err error) {
	h, payload, rest, err := splitVerified(b)
	if err != nil {
		return nil, nil, err
	}
	raw, err = d.decompress(h, payload)
	return raw, rest, err
}

// decodeVerified is decode for bytes whose frames VerifyFrames already
// checked: it does not compute the checksums again.
func (d *frameDecoder) decodeVerified(b []byte) (raw, rest []byte, err error) {
	h, payload, rest, err := splitFrame(b)
	if err != nil {
		return nil, nil, err
	}
	raw, err = d.decompress(h, payload)
	return raw, rest, err
}

func (d *frameDecoder) decompress(h frameHeader, payload []byte) ([]byte, error) {
	switch h.codec {
	case CodecNone:
		return payload, nil
	case CodecS2:
		if n, err := s2.DecodedLen(payload); err != nil || n != h.raw {
			return nil, corruptf("s2 frame: decoded length %d, header says %d (%v)", n, h.raw, err)
		}
		if cap(d.buf) < h.raw {
			d.buf = make([]byte, h.raw)
		}
		out, err := s2.Decode(d.buf[:h.raw], payload)
		if err != nil {
			return nil, corruptf("s2 frame: %v", err)
		}
		return out, nil
	default: // CodecZstd; parseFrameHeader rejected anything else
		if d.zdec == nil {
			var err error
			d.zdec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxFrameRaw))
			if err != nil {
				return nil, err
			}
		}
		if cap(d.buf) < h.raw {
			d.buf = make([]byte, h.raw)
		}
		out, err := d.zdec.DecodeAll(payload, d.buf[:0])
		if err != nil || len(out) != h.raw {
			return nil, corruptf("zstd frame: %d bytes, header says %d (%v)", len(out), h.raw, err)
		}
		d.buf = out
		return out, nil
	}
}

func (d *frameDecoder) close() {
	if d.zdec != nil {
		d.zdec.Close()
	}
}
