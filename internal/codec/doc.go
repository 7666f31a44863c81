// Package codec turns typed records into bytes and back, for shuffle files,
// spills and the wire.
//
// [For] picks the codec for a type, in this order:
//
//  1. the type's own: T has AppendRecord([]byte) []byte and *T has
//     DecodeRecord([]byte) error;
//  2. a built-in for string, []byte, bool, int, int32, int64, uint32,
//     uint64 and float64, and for named types whose underlying type is one
//     of these (type UserID int64);
//  3. [SliceOf] the built-in for slices of those element types ([]string,
//     []int64, type Links []PageID; see [BuiltinSlice]);
//  4. [Gob], which handles almost anything but is slow and allocates.
//
// Formats that outlive a process record [RecordEncoding], the number of
// these rules, so that a reader can refuse bytes an older rule wrote.
//
// [Tuple2] and [SliceOf] build codecs for compound types out of these.
//
// # Framing
//
// A codec encodes exactly one value and Decode is given exactly one
// encoding: the enclosing format (a shuffle block, a [Tuple2]) records where
// each one ends. So strings are their raw bytes and an int64 is its eight
// bytes, with no lengths or tags.
//
// Where a sequence of encodings needs lengths, it uses the one
// length-prefixed framing of framing.go ([AppendFramed], [CutFramed]):
// the length as a uvarint, then the bytes. [Tuple2] and [SliceOf] use it,
// and so do package client's cached blocks, checkpoint partitions,
// collect results and key samples. The shuffle's records keep their own
// framing (both lengths first), for the reasons given there.
//
// # Order
//
// For the built-in types, bytes.Compare of two encodings agrees with the
// values' own order, so a sort by bytes is a sort by key:
//
//   - signed integers are big-endian two's complement with the sign bit
//     flipped (int is always eight bytes, whatever the platform);
//   - unsigned integers are big-endian;
//   - float64 is its IEEE-754 bits, all flipped when negative and only the
//     sign bit flipped otherwise (-0 sorts just before +0, NaNs beyond the
//     infinities); the bits round-trip exactly;
//   - false is 0 and true is 1;
//   - strings and []byte are their bytes.
//
// A [Tuple2] whose first component has a fixed width (an integer, a float,
// a bool) keeps the order of (first, second); one whose first component is
// variable-length, like a string, does not, because the length comes first.
// [Gob] and [SliceOf] encodings have no useful order.
//
// # Allocation and ownership
//
// Append never allocates when dst has room. Decode of numbers and bools
// allocates nothing. Decode of strings and []byte copies the bytes into a
// [StringArena] chunk shared by many records, so it allocates once per
// 64 KiB of decoded text rather than once per record. The result never
// aliases src, which the caller is free to reuse.
//
// A codec value belongs to one goroutine: string and record codecs carry
// scratch state. For returns a fresh codec each call, so each task calls it
// once and keeps the result.
package codec
