package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	"shoal/client/eventlog"

	"shoal/internal/fnref"
	"shoal/shuffleservice/shuffle"
)

// newShuffle makes the node that reads parent's records (KV[K,V]) after
// they are shuffled by p. combine, if set, merges values of equal keys on
// the map side. read is the reading op (the node's spec), which gets the
// shuffle's id in its params.
func newShuffle[K comparable, V any](parent *node, p *Partitioner, combine *fnref.Ref, op string, read func(shuffle int) opSpec) *node {
	c := parent.ctx
	sd := &shuffleDep{id: c.nextShuffleID(), parent: parent, part: p}
	sd.write = mustSpec(shuffleWriteSink[K, V]{}, shuffleWriteParams{
		Shuffle: uint32(sd.id), Part: p, Combine: combine, Mode: c.mode, Codec: c.codec,
	})
	n := newNode(c, op, p.N, read(sd.id), &dep{kind: depShuffle, parent: parent, shuffle: sd})
	n.part = p
	return n
}

type shuffleWriteParams struct {
	Shuffle uint32       `json:"shuffle"`
	Part    *Partitioner `json:"part"`
	Combine *fnref.Ref   `json:"combine,omitempty"` // func(V, V) V
	Mode    shuffle.Mode
	Codec   shuffle.Codec
}

// combineLimit bounds the distinct keys a map task combines in memory
// before handing them to the writer (which combines further as it sorts).
const combineLimit = 1 << 16

// shuffleWriteSink writes a map task's records into its shuffle.
type shuffleWriteSink[K comparable, V any] struct{}

func (shuffleWriteSink[K, V]) sink(b *build, params json.RawMessage, input any) (sinkFn, error) {
	var p shuffleWriteParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	in, err := seqOf[KV[K, V]](input)
	if err != nil {
		return nil, err
	}
	var combine func(V, V) V
	if p.Combine != nil {
		if combine, err = fnref.Resolve[func(V, V) V](*p.Combine); err != nil {
			return nil, err
		}
	}
	return func(tc *taskContext, part int) ([]byte, error) {
		kc, err1 := codecOf[K]()
		vc, err2 := codecOf[V]()
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("client: shuffle %d: %w", p.Shuffle, errors.Join(err1, err2))
		}
		opts := shuffle.WriterOptions{
			Layout: tc.env.Layout, App: tc.env.App, Shuffle: p.Shuffle, Map: uint32(part),
			Attempt: tc.task.Attempt, Epoch: tc.task.Epoch, Partitions: p.Part.N,
			Mode: p.Mode, Codec: p.Codec, Buffers: tc.env.Buffers,
		}
		if combine != nil && opts.Mode == shuffle.ModeSort {
			opts.Combine = func(dst, a, b []byte) []byte {
				va, _ := vc.Decode(a)
				vb, _ := vc.Decode(b)
				return vc.Append(dst, combine(va, vb))
			}
		}
		w, err := shuffle.NewWriter(opts)
		if err != nil {
			return nil, err
		}
		defer w.Discard()
		var kb, vb []byte
		write := func(k K, v V) error {
			kb = kc.Append(kb[:0], k)
			vb = vc.Append(vb[:0], v)
			err := w.Write(p.Part.partition(kb), kb, vb)
			if errors.Is(err, shuffle.ErrInvalidArgument) {
				// The one user-made cause: a record too large to shuffle.
				return fmt.Errorf("client: shuffle %d: a record of %d bytes (key %d, value %d) cannot be shuffled: a shuffle record must fit in one %d-byte frame (drop or split such records before the shuffle): %w",
					p.Shuffle, len(kb)+len(vb), len(kb), len(vb), shuffle.MaxFrameRaw, err)
			}
			return err
		}
		var records int64
		if combine == nil {
			for kv := range in(tc, part) {
				records++
				if err := write(kv.Key, kv.Value); err != nil {
					return nil, err
				}
			}
		} else {
			// Combine in a bounded map first. If the first full map merged
			// less than half its records, keys rarely repeat: stop hashing
			// and hand records straight to the writer, whose sort merges
			// equal keys anyway.
			acc := make(map[K]V)
			var merged int64
			passthrough := false
			flush := func() error {
				for k, v := range acc {
					if err := write(k, v); err != nil {
						return err
					}
				}
				clear(acc)
				return nil
			}
			for kv := range in(tc, part) {
				records++
				if passthrough {
					if err := write(kv.Key, kv.Value); err != nil {
						return nil, err
					}
					continue
				}
				if old, ok := acc[kv.Key]; ok {
					acc[kv.Key] = combine(old, kv.Value)
					merged++
					continue
				}
				if len(acc) >= combineLimit {
					passthrough = merged*2 < records
					if err := flush(); err != nil {
						return nil, err
					}
				}
				acc[kv.Key] = kv.Value
			}
			if err := flush(); err != nil {
				return nil, err
			}
			tc.addMetric("combined_records", merged)
		}
		if tc.failed() {
			return nil, tc.err
		}
		commitStart := time.Now()
		out, err := w.Commit(tc.ctx, tc.env.Node)
		if err != nil {
			return nil, err
		}
		tc.addMetric("shuffle_records_written", records)
		tc.addMetric(eventlog.MetricRecordsOut, records)
		tc.shuffleWriteMetrics(w.Stats(), time.Since(commitStart))
		tc.output = out
		return nil, nil
	}, nil
}

type readParams struct {
	Shuffle uint32     `json:"shuffle"`
	Fn      *fnref.Ref `json:"fn,omitempty"`
}

// readShuffleKV yields the records of one reduce partition of a shuffle.
func readShuffleKV[K comparable, V any](tc *taskContext, shuffle uint32, part int) iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		kc, err1 := codecOf[K]()
		vc, err2 := codecOf[V]()
		if err1 != nil || err2 != nil {
			tc.fail(errors.Join(err1, err2))
			return
		}
		rd, err := tc.readShuffle(shuffle, part, part+1)
		if err != nil {
			tc.fail(err)
			return
		}
		defer rd.Close()
		var n int64
		defer func() {
			tc.addMetric("shuffle_records_read", n)
			tc.addMetric(eventlog.MetricRecordsIn, n)
			tc.shuffleReadMetrics(rd)
		}()
		for rd.Next() {
			k, err := kc.Decode(rd.Key())
			if err != nil {
				tc.fail(fmt.Errorf("client: shuffle %d: key: %w", shuffle, err))
				return
			}
			v, err := vc.Decode(rd.Value())
			if err != nil {
				tc.fail(fmt.Errorf("client: shuffle %d: value: %w", shuffle, err))
				return
			}
			n++
			if !yield(k, v) {
				return
			}
		}
		tc.fail(rd.Err())
	}
}

// shuffleReadOp yields the shuffled records as they come.
type shuffleReadOp[K comparable, V any] struct{}

func (shuffleReadOp[K, V]) op(b *build, params json.RawMessage, _ []any) (any, error) {
	var p readParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	return seqFn[KV[K, V]](func(tc *taskContext, part int) iter.Seq[KV[K, V]] {
		return func(yield func(KV[K, V]) bool) {
			for k, v := range readShuffleKV[K, V](tc, p.Shuffle, part) {
				if !yield(KV[K, V]{k, v}) {
					return
				}
			}
		}
	}), nil
}

// reduceReadOp merges the values of each key with the user's function.
// The partition's distinct keys are held in memory.
type reduceReadOp[K comparable, V any] struct{}

func (reduceReadOp[K, V]) op(b *build, params json.RawMessage, _ []any) (any, error) {
	var p readParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	f, err := fnref.Resolve[func(V, V) V](*p.Fn)
	if err != nil {
		return nil, err
	}
	return seqFn[KV[K, V]](func(tc *taskContext, part int) iter.Seq[KV[K, V]] {
		return func(yield func(KV[K, V]) bool) {
			acc := map[K]V{}
			for k, v := range readShuffleKV[K, V](tc, p.Shuffle, part) {
				if old, ok := acc[k]; ok {
					v = f(old, v)
				}
				acc[k] = v
			}
			if tc.failed() {
				return
			}
			for k, v := range acc {
				if !yield(KV[K, V]{k, v}) {
					return
				}
			}
		}
	}), nil
}

// groupReadOp gathers the values of each key.
type groupReadOp[K comparable, V any] struct{}

func (groupReadOp[K, V]) op(b *build, params json.RawMessage, _ []any) (any, error) {
	var p readParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	return seqFn[KV[K, []V]](func(tc *taskContext, part int) iter.Seq[KV[K, []V]] {
		return func(yield func(KV[K, []V]) bool) {
			acc := map[K][]V{}
			for k, v := range readShuffleKV[K, V](tc, p.Shuffle, part) {
				acc[k] = append(acc[k], v)
			}
			if tc.failed() {
				return
			}
			for k, vs := range acc {
				if !yield(KV[K, []V]{k, vs}) {
					return
				}
			}
		}
	}), nil
}
