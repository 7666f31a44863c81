package client

import (
	"encoding/json"
	"fmt"
	"iter"
	"math/rand/v2"

	"shoal/internal/fnref"
)

// fnParams carries a user function by reference.
type fnParams struct {
	Fn fnref.Ref `json:"fn"`
}

// withParams carries a user struct value: its exported fields, as JSON.
type withParams struct {
	Value json.RawMessage `json:"value"`
}

func structParams(n *node, what string, v any) withParams {
	b, err := json.Marshal(v)
	if err != nil {
		n.setErr(fmt.Errorf("client: %s: the value %T cannot be sent to workers: %w (its exported fields must marshal to JSON)", what, v, err))
	}
	return withParams{Value: b}
}

func decodeFn[F any](params json.RawMessage) (F, error) {
	var p fnParams
	if err := json.Unmarshal(params, &p); err != nil {
		var zero F
		return zero, err
	}
	return fnref.Resolve[F](p.Fn)
}

// decodeWith decodes a user's struct value and binds its accumulators to
// the task.
func decodeWith[F any](b *build, params json.RawMessage) (F, error) {
	var p withParams
	var f F
	if err := json.Unmarshal(params, &p); err != nil {
		return f, err
	}
	if err := json.Unmarshal(p.Value, &f); err != nil {
		return f, err
	}
	bindAccumulators(b.tc, &f)
	return f, nil
}

// Mapper, Predicate and FlatMapper are implemented by struct values whose
// exported fields are the function's parameters (MapWith, FilterWith,
// FlatMapWith): the value travels to workers as JSON.
type Mapper[T, U any] interface{ Map(T) U }
type Predicate[T any] interface{ Keep(T) bool }
type FlatMapper[T, U any] interface{ FlatMap(T, func(U)) }

// Map applies f to every record.
func Map[T, U any](r *RDD[T], f func(T) U) *RDD[U] {
	n := newNode(r.n.ctx, "map", r.n.parts, opSpec{}, narrow(r.n))
	n.spec = mustSpec(mapOp[T, U]{}, fnParams{userFn(n, "Map", f)})
	return &RDD[U]{n}
}

// MapWith applies m.Map to every record; m's exported fields travel with
// the task.
func MapWith[T, U any, M Mapper[T, U]](r *RDD[T], m M) *RDD[U] {
	n := newNode(r.n.ctx, "map", r.n.parts, opSpec{}, narrow(r.n))
	n.spec = mustSpec(mapWithOp[T, U, M]{}, structParams(n, "MapWith", m))
	return &RDD[U]{n}
}

type mapOp[T, U any] struct{}

func (mapOp[T, U]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	f, err := decodeFn[func(T) U](params)
	if err != nil {
		return nil, err
	}
	return mapSeq(parents[0], f)
}

type mapWithOp[T, U any, M Mapper[T, U]] struct{}

func (mapWithOp[T, U, M]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	m, err := decodeWith[M](b, params)
	if err != nil {
		return nil, err
	}
	return mapSeq(parents[0], m.Map)
}

func mapSeq[T, U any](parent any, f func(T) U) (any, error) {
	in, err := seqOf[T](parent)
	if err != nil {
		return nil, err
	}
	return seqFn[U](func(tc *taskContext, part int) iter.Seq[U] {
		return func(yield func(U) bool) {
			for v := range in(tc, part) {
				if !yield(f(v)) {
					return
				}
			}
		}
	}), nil
}

// Filter keeps the records for which f is true.
func Filter[T any](r *RDD[T], f func(T) bool) *RDD[T] {
	n := newNode(r.n.ctx, "filter", r.n.parts, opSpec{}, narrow(r.n))
	n.spec = mustSpec(filterOp[T]{}, fnParams{userFn(n, "Filter", f)})
	n.part = r.n.part
	return &RDD[T]{n}
}

// FilterWith keeps the records for which p.Keep is true.
func FilterWith[T any, P Predicate[T]](r *RDD[T], p P) *RDD[T] {
	n := newNode(r.n.ctx, "filter", r.n.parts, opSpec{}, narrow(r.n))
	n.spec = mustSpec(filterWithOp[T, P]{}, structParams(n, "FilterWith", p))
	n.part = r.n.part
	return &RDD[T]{n}
}

type filterOp[T any] struct{}

func (filterOp[T]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	f, err := decodeFn[func(T) bool](params)
	if err != nil {
		return nil, err
	}
	return filterSeq(parents[0], f)
}

type filterWithOp[T any, P Predicate[T]] struct{}

func (filterWithOp[T, P]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	p, err := decodeWith[P](b, params)
	if err != nil {
		return nil, err
	}
	return filterSeq(parents[0], p.Keep)
}

func filterSeq[T any](parent any, f func(T) bool) (any, error) {
	in, err := seqOf[T](parent)
	if err != nil {
		return nil, err
	}
	return seqFn[T](func(tc *taskContext, part int) iter.Seq[T] {
		return func(yield func(T) bool) {
			for v := range in(tc, part) {
				if f(v) && !yield(v) {
					return
				}
			}
		}
	}), nil
}

// FlatMap calls f for every record; f emits any number of outputs.
func FlatMap[T, U any](r *RDD[T], f func(T, func(U))) *RDD[U] {
	n := newNode(r.n.ctx, "flatMap", r.n.parts, opSpec{}, narrow(r.n))
	n.spec = mustSpec(flatMapOp[T, U]{}, fnParams{userFn(n, "FlatMap", f)})
	return &RDD[U]{n}
}

// FlatMapWith calls m.FlatMap for every record.
func FlatMapWith[T, U any, M FlatMapper[T, U]](r *RDD[T], m M) *RDD[U] {
	n := newNode(r.n.ctx, "flatMap", r.n.parts, opSpec{}, narrow(r.n))
	n.spec = mustSpec(flatMapWithOp[T, U, M]{}, structParams(n, "FlatMapWith", m))
	return &RDD[U]{n}
}

type flatMapOp[T, U any] struct{}

func (flatMapOp[T, U]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	f, err := decodeFn[func(T, func(U))](params)
	if err != nil {
		return nil, err
	}
	return flatMapSeq(parents[0], f)
}

type flatMapWithOp[T, U any, M FlatMapper[T, U]] struct{}

func (flatMapWithOp[T, U, M]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	m, err := decodeWith[M](b, params)
	if err != nil {
		return nil, err
	}
	return flatMapSeq(parents[0], m.FlatMap)
}

func flatMapSeq[T, U any](parent any, f func(T, func(U))) (any, error) {
	in, err := seqOf[T](parent)
	if err != nil {
		return nil, err
	}
	return seqFn[U](func(tc *taskContext, part int) iter.Seq[U] {
		return func(yield func(U) bool) {
			stop := false
			emit := func(u U) {
				if !stop && !yield(u) {
					stop = true
				}
			}
			for v := range in(tc, part) {
				f(v, emit)
				if stop {
					return
				}
			}
		}
	}), nil
}

// MapPartitions transforms a whole partition at once.
func MapPartitions[T, U any](r *RDD[T], f func(iter.Seq[T]) iter.Seq[U]) *RDD[U] {
	n := newNode(r.n.ctx, "mapPartitions", r.n.parts, opSpec{}, narrow(r.n))
	n.spec = mustSpec(mapPartitionsOp[T, U]{}, fnParams{userFn(n, "MapPartitions", f)})
	return &RDD[U]{n}
}

type mapPartitionsOp[T, U any] struct{}

func (mapPartitionsOp[T, U]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	f, err := decodeFn[func(iter.Seq[T]) iter.Seq[U]](params)
	if err != nil {
		return nil, err
	}
	in, err := seqOf[T](parents[0])
	if err != nil {
		return nil, err
	}
	return seqFn[U](func(tc *taskContext, part int) iter.Seq[U] { return f(in(tc, part)) }), nil
}

// MapValues applies f to the values of a pair RDD, keeping its partitioner.
func MapValues[K comparable, V, W any](r *RDD[KV[K, V]], f func(V) W) *RDD[KV[K, W]] {
	n := newNode(r.n.ctx, "mapValues", r.n.parts, opSpec{}, narrow(r.n))
	n.spec = mustSpec(mapValuesOp[K, V, W]{}, fnParams{userFn(n, "MapValues", f)})
	n.part = r.n.part
	return &RDD[KV[K, W]]{n}
}

type mapValuesOp[K comparable, V, W any] struct{}

func (mapValuesOp[K, V, W]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	f, err := decodeFn[func(V) W](params)
	if err != nil {
		return nil, err
	}
	return mapSeq(parents[0], func(kv KV[K, V]) KV[K, W] { return KV[K, W]{kv.Key, f(kv.Value)} })
}

// ValueMapper is implemented by struct values given to MapValuesWith.
type ValueMapper[V, W any] interface{ MapValue(V) W }

// MapValuesWith applies m.MapValue to the values of a pair RDD, keeping
// its partitioner; m's exported fields travel with the task.
func MapValuesWith[K comparable, V, W any, M ValueMapper[V, W]](r *RDD[KV[K, V]], m M) *RDD[KV[K, W]] {
	n := newNode(r.n.ctx, "mapValues", r.n.parts, opSpec{}, narrow(r.n))
	n.spec = mustSpec(mapValuesWithOp[K, V, W, M]{}, structParams(n, "MapValuesWith", m))
	n.part = r.n.part
	return &RDD[KV[K, W]]{n}
}

type mapValuesWithOp[K comparable, V, W any, M ValueMapper[V, W]] struct{}

func (mapValuesWithOp[K, V, W, M]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	m, err := decodeWith[M](b, params)
	if err != nil {
		return nil, err
	}
	return mapSeq(parents[0], func(kv KV[K, V]) KV[K, W] { return KV[K, W]{kv.Key, m.MapValue(kv.Value)} })
}

// Union concatenates RDDs: the partitions of the first, then the second's...
func Union[T any](rs ...*RDD[T]) *RDD[T] {
	if len(rs) == 0 {
		panic("client: Union of no RDDs")
	}
	deps := make([]*dep, len(rs))
	var p unionParams
	total := 0
	for i, r := range rs {
		deps[i] = narrow(r.n)
		p.Starts = append(p.Starts, total)
		total += r.n.parts
	}
	n := newNode(rs[0].n.ctx, "union", total, mustSpec(unionOp[T]{}, p), deps...)
	n.parentParts = func(i, lo, hi int) (int, int) {
		start, end := p.Starts[i], p.Starts[i]+rs[i].n.parts
		lo, hi = max(lo, start), min(hi, end)
		if lo >= hi {
			return 0, 0
		}
		return lo - start, hi - start
	}
	return &RDD[T]{n}
}

type unionParams struct {
	Starts []int `json:"starts"` // first partition of each parent
}

type unionOp[T any] struct{}

func (unionOp[T]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	var p unionParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	ins := make([]seqFn[T], len(parents))
	for i, parent := range parents {
		var err error
		if ins[i], err = seqOf[T](parent); err != nil {
			return nil, err
		}
	}
	return seqFn[T](func(tc *taskContext, part int) iter.Seq[T] {
		i := len(p.Starts) - 1
		for i > 0 && part < p.Starts[i] {
			i--
		}
		return ins[i](tc, part-p.Starts[i])
	}), nil
}

// Sample keeps each record with probability fraction (without
// replacement), deterministically for a seed.
func Sample[T any](r *RDD[T], fraction float64, seed uint64) *RDD[T] {
	n := newNode(r.n.ctx, "sample", r.n.parts, mustSpec(sampleOp[T]{}, sampleParams{fraction, seed}), narrow(r.n))
	if fraction < 0 || fraction > 1 {
		n.setErr(fmt.Errorf("client: Sample: fraction %v is not in [0, 1]", fraction))
	}
	return &RDD[T]{n}
}

type sampleParams struct {
	Fraction float64 `json:"fraction"`
	Seed     uint64  `json:"seed"`
}

type sampleOp[T any] struct{}

func (sampleOp[T]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	var p sampleParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	in, err := seqOf[T](parents[0])
	if err != nil {
		return nil, err
	}
	return seqFn[T](func(tc *taskContext, part int) iter.Seq[T] {
		return func(yield func(T) bool) {
			rng := rand.New(rand.NewPCG(p.Seed, uint64(part)))
			for v := range in(tc, part) {
				if rng.Float64() < p.Fraction && !yield(v) {
					return
				}
			}
		}
	}), nil
}

// Coalesce reduces the number of partitions to n without a shuffle:
// partition i of the result reads a contiguous range of the parent's.
func Coalesce[T any](r *RDD[T], n int) *RDD[T] {
	n = max(1, min(n, r.n.parts))
	var p coalesceParams
	for i := range n {
		p.Starts = append(p.Starts, i*r.n.parts/n)
	}
	p.Starts = append(p.Starts, r.n.parts)
	nd := newNode(r.n.ctx, "coalesce", n, mustSpec(coalesceOp[T]{}, p), narrow(r.n))
	nd.parentParts = func(_, lo, hi int) (int, int) { return p.Starts[lo], p.Starts[hi] }
	return &RDD[T]{nd}
}

type coalesceParams struct {
	Starts []int `json:"starts"` // result partition i reads parent partitions [Starts[i], Starts[i+1])
}

type coalesceOp[T any] struct{}

func (coalesceOp[T]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	var p coalesceParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	in, err := seqOf[T](parents[0])
	if err != nil {
		return nil, err
	}
	return seqFn[T](func(tc *taskContext, part int) iter.Seq[T] {
		return func(yield func(T) bool) {
			for q := p.Starts[part]; q < p.Starts[part+1]; q++ {
				for v := range in(tc, q) {
					if !yield(v) {
						return
					}
				}
			}
		}
	}), nil
}
