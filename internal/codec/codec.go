package codec

import (
	"errors"
	"fmt"
	"reflect"
	"unsafe"
)

// Codec encodes values of T as bytes and back.
type Codec[T any] interface {
	// Append appends the encoding of v to dst and returns the extended
	// slice.
	Append(dst []byte, v T) []byte
	// Decode decodes src, which is exactly one encoding. The result does
	// not alias src.
	Decode(src []byte) (T, error)
}

// ErrCorrupt is wrapped by every error Decode returns for bytes that are not
// an encoding of the codec's type: the data is damaged, or was written with
// another codec. Retrying will not help.
var ErrCorrupt = errors.New("codec: corrupt record")

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// RecordAppender and RecordDecoder are how a type brings its own codec: T
// implements RecordAppender and *T implements RecordDecoder. DecodeRecord
// must not keep or return references to its argument.
type (
	RecordAppender interface{ AppendRecord(dst []byte) []byte }
	RecordDecoder  interface{ DecodeRecord(src []byte) error }
)

// For returns a new codec for T; see the package documentation for how it
// chooses. It fails only for types that Gob cannot encode either.
func For[T any]() (Codec[T], error) {
	if c, ok := recordCodecFor[T](); ok {
		return c, nil
	}
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8 {
		if !BuiltinSlice(t) {
			return Gob[T]()
		}
		switch t.Elem().Kind() {
		case reflect.String:
			return retype[T](SliceOf[string](stringCodec{new(StringArena)})), nil
		case reflect.Bool:
			return retype[T](SliceOf[bool](boolCodec{})), nil
		case reflect.Int:
			return retype[T](SliceOf[int](intCodec{})), nil
		case reflect.Int32:
			return retype[T](SliceOf[int32](int32Codec{})), nil
		case reflect.Int64:
			return retype[T](SliceOf[int64](int64Codec{})), nil
		case reflect.Uint32:
			return retype[T](SliceOf[uint32](uint32Codec{})), nil
		case reflect.Uint64:
			return retype[T](SliceOf[uint64](uint64Codec{})), nil
		case reflect.Float64:
			return retype[T](SliceOf[float64](float64Codec{})), nil
		}
	}
	switch t.Kind() {
	case reflect.String:
		return retype[T](stringCodec{new(StringArena)}), nil
	case reflect.Slice: // of bytes
		return retype[T](bytesCodec{new(StringArena)}), nil
	case reflect.Bool:
		return retype[T](boolCodec{}), nil
	case reflect.Int:
		return retype[T](intCodec{}), nil
	case reflect.Int32:
		return retype[T](int32Codec{}), nil
	case reflect.Int64:
		return retype[T](int64Codec{}), nil
	case reflect.Uint32:
		return retype[T](uint32Codec{}), nil
	case reflect.Uint64:
		return retype[T](uint64Codec{}), nil
	case reflect.Float64:
		return retype[T](float64Codec{}), nil
	}
	return Gob[T]()
}

// BuiltinSlice reports whether For encodes t, a slice type, as [SliceOf]
// a built-in element codec: t has no codec of its own and its elements
// are strings, bools, or numbers of the built-in kinds, without a codec of
// their own. Slices of anything else (but bytes) are gob-encoded. Before
// record encoding 1 (see [RecordEncoding]) these were gob-encoded too.
func BuiltinSlice(t reflect.Type) bool {
	if t.Kind() != reflect.Slice || ownCodec(t) || ownCodec(t.Elem()) {
		return false
	}
	switch t.Elem().Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int32, reflect.Int64,
		reflect.Uint32, reflect.Uint64, reflect.Float64:
		return true
	}
	return false
}

// RecordEncoding numbers the ways For has encoded types, for formats that
// outlive a process (checkpoints) to record which one wrote them:
//
//	0: slices other than []byte by Gob;
//	1: slices of built-in elements by SliceOf ([BuiltinSlice]).
const RecordEncoding = 1

// ownCodec reports whether t brings its own codec (recordCodecFor).
func ownCodec(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(reflect.TypeFor[RecordAppender]()) && p.Implements(reflect.TypeFor[RecordDecoder]())
}

// retype returns c as a Codec[T], for a T whose underlying type is U's.
func retype[T, U any](c Codec[U]) Codec[T] {
	if same, ok := c.(Codec[T]); ok { // T is U
		return same
	}
	return retyped[T, U]{c}
}

// retyped encodes a named type (type UserID int64) with the codec of its
// underlying type; the two have the same memory layout.
type retyped[T, U any] struct{ c Codec[U] }

func (r retyped[T, U]) Append(dst []byte, v T) []byte {
	return r.c.Append(dst, *(*U)(unsafe.Pointer(&v)))
}

func (r retyped[T, U]) Decode(src []byte) (T, error) {
	u, err := r.c.Decode(src)
	return *(*T)(unsafe.Pointer(&u)), err
}

// recordCodecFor returns T's own codec, if it has one.
func recordCodecFor[T any]() (Codec[T], bool) {
	// Both methods are reached through one scratch *T (which has T's
	// methods too), so that no call boxes a T into an interface, which
	// would allocate.
	p := new(T)
	a, ok1 := any(p).(RecordAppender)
	d, ok2 := any(p).(RecordDecoder)
	if !ok1 || !ok2 {
		return nil, false
	}
	return &recordCodec[T]{p: p, a: a, d: d}, true
}

type recordCodec[T any] struct {
	p *T // scratch value, behind a and d
	a RecordAppender
	d RecordDecoder
}

func (c *recordCodec[T]) Append(dst []byte, v T) []byte {
	*c.p = v
	dst = c.a.AppendRecord(dst)
	var zero T
	*c.p = zero // do not keep v alive
	return dst
}

func (c *recordCodec[T]) Decode(src []byte) (T, error) {
	var zero T
	*c.p = zero
	if err := c.d.DecodeRecord(src); err != nil {
		*c.p = zero
		return zero, fmt.Errorf("%w: %T: %w", ErrCorrupt, zero, err)
	}
	v := *c.p
	*c.p = zero
	return v, nil
}
