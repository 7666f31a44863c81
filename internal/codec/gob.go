package codec

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"io"
	"reflect"
)

// Gob returns a codec that encodes each value as a self-contained gob
// stream: type description and all. It handles almost any type, but is slow,
// allocates on every call and makes records large; give hot types a
// built-in or their own codec (see [RecordAppender]).
//
// Gob fails for types gob cannot encode: functions, channels, structs with
// no exported fields, interfaces. Append panics if gob cannot encode a
// particular value, such as a nil pointer or an interface field holding an
// unregistered type.
func Gob[T any]() (Codec[T], error) {
	t := reflect.TypeFor[T]()
	if t.Kind() == reflect.Interface {
		return nil, fmt.Errorf("codec: cannot encode interface type %v; use a concrete type", t)
	}
	// Encode a zero value, with any pointers allocated, to find out now
	// whether gob can handle the type at all.
	v := reflect.New(t)
	for e := v.Elem(); e.Kind() == reflect.Pointer; e = e.Elem() {
		e.Set(reflect.New(e.Type().Elem()))
	}
	if err := gob.NewEncoder(io.Discard).Encode(v.Interface()); err != nil {
		return nil, fmt.Errorf("codec: no codec for %v: %w (give it AppendRecord and DecodeRecord methods)", t, err)
	}
	return gobCodec[T]{}, nil
}

type gobCodec[T any] struct{}

func (gobCodec[T]) Append(dst []byte, v T) []byte {
	b := bytes.NewBuffer(dst)
	if err := gob.NewEncoder(b).Encode(&v); err != nil {
		panic(fmt.Errorf("codec: gob cannot encode %T: %w", v, err))
	}
	return b.Bytes()
}

func (gobCodec[T]) Decode(src []byte) (T, error) {
	var v T
	r := bytes.NewReader(src)
	if err := gob.NewDecoder(r).Decode(&v); err != nil {
		return v, fmt.Errorf("%w: gob: %v", ErrCorrupt, err)
	}
	if r.Len() != 0 {
		return v, corrupt("%d bytes after a gob value", r.Len())
	}
	return v, nil
}
