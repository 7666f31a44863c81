package client

import (
	"encoding/json"
	"fmt"
	"iter"
	"reflect"

	"shoal/internal/fnref"
)

func readSpec(factory any, fn *fnref.Ref) func(int) opSpec {
	return func(shuffle int) opSpec {
		return mustSpec(factory, readParams{Shuffle: uint32(shuffle), Fn: fn})
	}
}

// ReduceByKey merges the values of each key with f, which must be
// associative and commutative. Values are combined on the map side before
// the shuffle. parts <= 0 keeps r's number of partitions.
func ReduceByKey[K comparable, V any](r *RDD[KV[K, V]], f func(V, V) V, parts int) *RDD[KV[K, V]] {
	ref, err := fnref.Of(f)
	p := HashPartitioner(partsOr(parts, r.n.parts))
	n := newShuffle[K, V](r.n, p, &ref, "reduceByKey", readSpec(reduceReadOp[K, V]{}, &ref))
	n.setErr(wrapFnErr("ReduceByKey", err))
	return &RDD[KV[K, V]]{n}
}

// GroupByKey gathers the values of each key. A key's values are held in
// memory by the task that reads them.
func GroupByKey[K comparable, V any](r *RDD[KV[K, V]], parts int) *RDD[KV[K, []V]] {
	p := HashPartitioner(partsOr(parts, r.n.parts))
	n := newShuffle[K, V](r.n, p, nil, "groupByKey", readSpec(groupReadOp[K, V]{}, nil))
	return &RDD[KV[K, []V]]{n}
}

// AggregateByKey folds the values of each key into an accumulator: seq
// adds a value, comb merges two accumulators; zero is the starting value
// (it travels to workers as JSON).
func AggregateByKey[K comparable, V, A any](r *RDD[KV[K, V]], zero A, seq func(A, V) A, comb func(A, A) A, parts int) *RDD[KV[K, A]] {
	n0 := newNode(r.n.ctx, "aggregateByKey", r.n.parts, opSpec{}, narrow(r.n))
	zb, err := json.Marshal(zero)
	n0.setErr(wrapFnErr("AggregateByKey zero value", err))
	n0.spec = mustSpec(seqOpMap[K, V, A]{}, aggParams{Zero: zb, Seq: userFn(n0, "AggregateByKey", seq)})
	combRef := userFn(n0, "AggregateByKey", comb)
	p := HashPartitioner(partsOr(parts, r.n.parts))
	n := newShuffle[K, A](n0, p, &combRef, "aggregateByKey", readSpec(reduceReadOp[K, A]{}, &combRef))
	return &RDD[KV[K, A]]{n}
}

type aggParams struct {
	Zero json.RawMessage `json:"zero"`
	Seq  fnref.Ref       `json:"seq"`
}

// seqOpMap turns each value into an accumulator: seq(zero, v).
type seqOpMap[K comparable, V, A any] struct{}

func (seqOpMap[K, V, A]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	var p aggParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	seq, err := fnref.Resolve[func(A, V) A](p.Seq)
	if err != nil {
		return nil, err
	}
	var zero A
	if err := json.Unmarshal(p.Zero, &zero); err != nil {
		return nil, fmt.Errorf("client: AggregateByKey zero value: %w", err)
	}
	if !holdsReferences(reflect.TypeFor[A]()) {
		// A copy of zero is a fresh zero: decode it once.
		return mapSeq(parents[0], func(kv KV[K, V]) KV[K, A] { return KV[K, A]{kv.Key, seq(zero, kv.Value)} })
	}
	// seq may mutate what zero refers to (a slice, a map): a fresh zero
	// per record.
	return mapSeq(parents[0], func(kv KV[K, V]) KV[K, A] {
		var z A
		json.Unmarshal(p.Zero, &z) // decoded once above without error
		return KV[K, A]{kv.Key, seq(z, kv.Value)}
	})
}

// holdsReferences reports whether a value of t can share memory with its
// copies (strings are immutable, so they do not count).
func holdsReferences(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Slice, reflect.Map, reflect.Pointer, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return holdsReferences(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsReferences(t.Field(i).Type) {
				return true
			}
		}
	}
	return false
}

// PartitionBy shuffles r by p; a no-op when r is already partitioned so.
func PartitionBy[K comparable, V any](r *RDD[KV[K, V]], p *Partitioner) *RDD[KV[K, V]] {
	if r.n.part.Equal(p) {
		return r
	}
	n := newShuffle[K, V](r.n, p, nil, "partitionBy", readSpec(shuffleReadOp[K, V]{}, nil))
	return &RDD[KV[K, V]]{n}
}

// Repartition spreads r's records over n partitions with a shuffle.
func Repartition[T any](r *RDD[T], n int) *RDD[T] {
	keyed := newNode(r.n.ctx, "index", r.n.parts, mustSpec(indexOp[T]{}, nil), narrow(r.n))
	shuffled := PartitionBy(&RDD[KV[int64, T]]{keyed}, HashPartitioner(n))
	return MapWith[KV[int64, T], T](shuffled, dropKey[T]{})
}

// indexOp keys records by partition and position, which a hash
// partitioner spreads evenly.
type indexOp[T any] struct{}

func (indexOp[T]) op(b *build, _ json.RawMessage, parents []any) (any, error) {
	in, err := seqOf[T](parents[0])
	if err != nil {
		return nil, err
	}
	return seqFn[KV[int64, T]](func(tc *taskContext, part int) iter.Seq[KV[int64, T]] {
		return func(yield func(KV[int64, T]) bool) {
			i := int64(part) << 40
			for v := range in(tc, part) {
				if !yield(KV[int64, T]{i, v}) {
					return
				}
				i++
			}
		}
	}), nil
}

type dropKey[T any] struct{}

func (dropKey[T]) Map(kv KV[int64, T]) T { return kv.Value }

// Distinct removes duplicate records.
func Distinct[T comparable](r *RDD[T], parts int) *RDD[T] {
	keyed := MapWith[T, KV[T, unit]](r, withUnit[T]{})
	return MapWith[KV[T, unit], T](ReduceByKey(keyed, keepFirst, parts), keyOf[T]{})
}

type unit struct{}

type withUnit[T comparable] struct{}

func (withUnit[T]) Map(v T) KV[T, unit] { return KV[T, unit]{v, unit{}} }

type keyOf[T comparable] struct{}

func (keyOf[T]) Map(kv KV[T, unit]) T { return kv.Key }

func keepFirst(a, _ unit) unit { return a }

// Cogroup gathers, for every key of either RDD, its values in each. An
// RDD already partitioned like the result is read without a shuffle (the
// RDD paper's co-partitioned join).
func Cogroup[K comparable, V, W any](a *RDD[KV[K, V]], b *RDD[KV[K, W]], parts int) *RDD[KV[K, Pair[[]V, []W]]] {
	p := a.n.part
	if p == nil {
		p = b.n.part
	}
	if p == nil || parts > 0 && p.N != parts {
		p = HashPartitioner(partsOr(parts, max(a.n.parts, b.n.parts)))
	}
	a, b2 := PartitionBy(a, p), PartitionBy(b, p)
	n := newNode(a.n.ctx, "cogroup", p.N, mustSpec(cogroupOp[K, V, W]{}, nil), narrow(a.n), narrow(b2.n))
	n.part = p
	return &RDD[KV[K, Pair[[]V, []W]]]{n}
}

type cogroupOp[K comparable, V, W any] struct{}

func (cogroupOp[K, V, W]) op(b *build, _ json.RawMessage, parents []any) (any, error) {
	left, err := seqOf[KV[K, V]](parents[0])
	if err != nil {
		return nil, err
	}
	right, err := seqOf[KV[K, W]](parents[1])
	if err != nil {
		return nil, err
	}
	return seqFn[KV[K, Pair[[]V, []W]]](func(tc *taskContext, part int) iter.Seq[KV[K, Pair[[]V, []W]]] {
		return func(yield func(KV[K, Pair[[]V, []W]]) bool) {
			acc := map[K]*Pair[[]V, []W]{}
			get := func(k K) *Pair[[]V, []W] {
				g := acc[k]
				if g == nil {
					g = &Pair[[]V, []W]{}
					acc[k] = g
				}
				return g
			}
			for kv := range left(tc, part) {
				g := get(kv.Key)
				g.First = append(g.First, kv.Value)
			}
			for kv := range right(tc, part) {
				g := get(kv.Key)
				g.Second = append(g.Second, kv.Value)
			}
			if tc.failed() {
				return
			}
			for k, g := range acc {
				if !yield(KV[K, Pair[[]V, []W]]{k, *g}) {
					return
				}
			}
		}
	}), nil
}

// Join pairs the values of keys present in both RDDs.
func Join[K comparable, V, W any](a *RDD[KV[K, V]], b *RDD[KV[K, W]], parts int) *RDD[KV[K, Pair[V, W]]] {
	cg := Cogroup(a, b, parts)
	n := newNode(cg.n.ctx, "join", cg.n.parts, mustSpec(joinOp[K, V, W]{}, nil), narrow(cg.n))
	n.part = cg.n.part
	return &RDD[KV[K, Pair[V, W]]]{n}
}

// Option is a value that may be absent (LeftOuterJoin's right side).
type Option[T any] struct {
	Value T
	Valid bool
}

// LeftOuterJoin pairs every value of a with the values of the same key
// in b, or with an invalid Option when b has none.
func LeftOuterJoin[K comparable, V, W any](a *RDD[KV[K, V]], b *RDD[KV[K, W]], parts int) *RDD[KV[K, Pair[V, Option[W]]]] {
	cg := Cogroup(a, b, parts)
	n := newNode(cg.n.ctx, "leftOuterJoin", cg.n.parts, mustSpec(leftJoinOp[K, V, W]{}, nil), narrow(cg.n))
	n.part = cg.n.part
	return &RDD[KV[K, Pair[V, Option[W]]]]{n}
}

type joinOp[K comparable, V, W any] struct{}

func (joinOp[K, V, W]) op(b *build, _ json.RawMessage, parents []any) (any, error) {
	return flatMapSeq(parents[0], func(g KV[K, Pair[[]V, []W]], emit func(KV[K, Pair[V, W]])) {
		for _, v := range g.Value.First {
			for _, w := range g.Value.Second {
				emit(KV[K, Pair[V, W]]{g.Key, Pair[V, W]{v, w}})
			}
		}
	})
}

type leftJoinOp[K comparable, V, W any] struct{}

func (leftJoinOp[K, V, W]) op(b *build, _ json.RawMessage, parents []any) (any, error) {
	return flatMapSeq(parents[0], func(g KV[K, Pair[[]V, []W]], emit func(KV[K, Pair[V, Option[W]]])) {
		for _, v := range g.Value.First {
			if len(g.Value.Second) == 0 {
				emit(KV[K, Pair[V, Option[W]]]{g.Key, Pair[V, Option[W]]{v, Option[W]{}}})
			}
			for _, w := range g.Value.Second {
				emit(KV[K, Pair[V, Option[W]]]{g.Key, Pair[V, Option[W]]{v, Option[W]{w, true}}})
			}
		}
	})
}

func partsOr(parts, def int) int {
	if parts > 0 {
		return parts
	}
	return max(1, def)
}

func wrapFnErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return &graphError{what: what, err: err}
}

// graphError is an error in building the lineage graph.
type graphError struct {
	what string
	err  error
}

func (e *graphError) Error() string { return "client: " + e.what + ": " + e.err.Error() }
func (e *graphError) Unwrap() error { return e.err }
