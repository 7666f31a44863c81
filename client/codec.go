package client

import (
	"reflect"

	"shoal/internal/codec"
)

// codecOf returns the codec of a record type T: a KV or a Pair is encoded
// as its two parts, each with its own codec (codec.Tuple2), so that pair
// records (cached blocks, checkpoints, collected results, shuffled values)
// allocate nothing per record when their parts do not; any other T as
// codec.For chooses.
func codecOf[T any]() (codec.Codec[T], error) {
	var zero T
	if p, ok := any(zero).(pairRecord); ok {
		c, err := p.pairCodec()
		if err != nil {
			return nil, err
		}
		return c.(codec.Codec[T]), nil
	}
	return codec.For[T]()
}

// pairRecord is implemented by KV and Pair.
type pairRecord interface {
	pairCodec() (any, error)                 // a codec.Codec of the receiver's type
	partTypes() (reflect.Type, reflect.Type) // the types of its two parts
}

func (KV[K, V]) partTypes() (reflect.Type, reflect.Type) {
	return reflect.TypeFor[K](), reflect.TypeFor[V]()
}

func (Pair[A, B]) partTypes() (reflect.Type, reflect.Type) {
	return reflect.TypeFor[A](), reflect.TypeFor[B]()
}

// encodingSince returns the first codec.RecordEncoding that encodes
// records of type t as this build does: 1 if they hold a slice encoded
// element by element (codec.BuiltinSlice), which encoding 0 gave to gob;
// otherwise 0.
func encodingSince(t reflect.Type) int {
	if p, ok := reflect.Zero(t).Interface().(pairRecord); ok {
		a, b := p.partTypes()
		return max(encodingSince(a), encodingSince(b))
	}
	if codec.BuiltinSlice(t) {
		return 1
	}
	return 0
}

func (KV[K, V]) pairCodec() (any, error) {
	kc, err := codecOf[K]()
	if err != nil {
		return nil, err
	}
	vc, err := codecOf[V]()
	if err != nil {
		return nil, err
	}
	return codec.Tuple2(kc, vc,
		func(kv KV[K, V]) (K, V) { return kv.Key, kv.Value },
		func(k K, v V) KV[K, V] { return KV[K, V]{k, v} }), nil
}

func (Pair[A, B]) pairCodec() (any, error) {
	ac, err := codecOf[A]()
	if err != nil {
		return nil, err
	}
	bc, err := codecOf[B]()
	if err != nil {
		return nil, err
	}
	return codec.Tuple2(ac, bc,
		func(p Pair[A, B]) (A, B) { return p.First, p.Second },
		func(a A, b B) Pair[A, B] { return Pair[A, B]{a, b} }), nil
}
