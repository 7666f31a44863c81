package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"reflect"
	"slices"
	"unsafe"

	"shoal/client/eventlog"
	"shoal/internal/codec"
)

// Sorting by key is two jobs, as in Spark: a sampling job reads every
// partition of the input and returns a bounded reservoir sample of its
// encoded keys with its record count; the driver weighs each sample by
// its partition's count, picks parts-1 bounds that split the weighted
// keys evenly, and the sort shuffles the records by that range
// partitioner. Each reduce task sorts its partition by encoded key, so the
// partitions, in order, hold the records in order.

const (
	// sampleKeysPerPart is how many keys per output partition the sample
	// aims at in all (Spark's 20), and sampleOversample how much more each
	// input partition samples, for partitions that hold more than their
	// share of the records.
	sampleKeysPerPart = 20
	sampleOversample  = 3
	// maxSampleSize bounds the sample's size in all, and maxPartSample
	// the keys one input partition returns.
	maxSampleSize = 1 << 20
	maxPartSample = 1 << 16
	// maxSampleKey is the longest sampled key kept whole: longer ones are
	// cut to it. Any byte string is a valid bound (a prefix of a key sorts
	// before it), so cutting only makes the split less even among keys
	// that share their first maxSampleKey bytes; it keeps a task's result
	// below maxPartSample*maxSampleKey bytes (32 MiB).
	maxSampleKey = 512
)

// SortByKey sorts a pair RDD by key into parts partitions (parts <= 0
// keeps r's number): partition i holds keys that sort before those of
// partition i+1 (after them when descending) and is sorted itself, so
// Collect, or the part files of SaveAsTextFile read in order, give the
// records in key order. Records of equal keys come in no particular
// order.
//
// Keys are compared by their encodings (internal/codec), which keep the
// order of strings, []byte-like strings, integers, floats and bools, and of
// types with their own order-preserving AppendRecord. Other key types have
// no encoding with a useful order and are rejected.
//
// SortByKey runs a job at once: it samples r's keys to choose the bounds
// of a range partitioner (so r is computed twice, once for the sample and
// once for the sort). Bounds are chosen so that partitions get about equal
// numbers of records; a key that makes up more than a partition's share
// still goes to one partition.
//
// Memory: a reduce task holds its whole partition (its records' encoded
// keys and values in one buffer, plus 16 bytes a record) while it sorts
// it, so a partition must fit in a worker's memory: choose parts so that
// the input divided by parts does. A k-way merge of the map outputs'
// blocks, each sorted by the shuffle writer, would bound that; it is
// future work.
func SortByKey[K comparable, V any](ctx context.Context, r *RDD[KV[K, V]], ascending bool, parts int) (*RDD[KV[K, V]], error) {
	if !orderedKey[K]() {
		var k K
		return nil, fmt.Errorf("client: SortByKey: keys of type %T have no order-preserving encoding (use a string, an integer, a float64 or a bool key, or give the type an order-preserving AppendRecord)", k)
	}
	parts = partsOr(parts, r.n.parts)
	bounds, err := sampleBounds(ctx, r, parts)
	if err != nil {
		return nil, err
	}
	p := &Partitioner{Kind: "range", N: parts, Bounds: bounds, Descending: !ascending}
	read := func(shuffle int) opSpec {
		return mustSpec(sortReadOp[K, V]{}, sortReadParams{Shuffle: uint32(shuffle), Descending: !ascending})
	}
	n := newShuffle[K, V](r.n, p, nil, "sortByKey", read)
	return &RDD[KV[K, V]]{n}, nil
}

// orderedKey reports whether bytes.Compare of K's encodings follows K's
// order: see the Order section of internal/codec's documentation.
func orderedKey[K any]() bool {
	if _, ok := any(new(K)).(codec.RecordAppender); ok {
		return true
	}
	switch reflect.TypeFor[K]().Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int32, reflect.Int64,
		reflect.Uint32, reflect.Uint64, reflect.Float64:
		return true
	}
	return false
}

// sampleBounds runs the sampling job over r and returns the bounds of a
// range partitioner of parts partitions.
func sampleBounds[K comparable, V any](ctx context.Context, r *RDD[KV[K, V]], parts int) ([][]byte, error) {
	if parts <= 1 {
		return nil, nil
	}
	inParts := max(1, r.n.parts)
	total := min(sampleKeysPerPart*parts, maxSampleSize)
	per := min((sampleOversample*total+inParts-1)/inParts, maxPartSample)
	spec := mustSpec(keySampleSink[K, V]{}, keySampleParams{Keys: per, Seed: uint64(r.n.id)})
	res, err := r.n.ctx.runJob(ctx, r.n, "sortByKey sample", spec, allParts(r.n))
	if err != nil {
		return nil, err
	}
	var cands []weightedKey
	for part, b := range res {
		count, keys, err := decodeKeySample(b)
		if err != nil {
			return nil, fmt.Errorf("client: SortByKey: sample of partition %d: %w", part, err)
		}
		if len(keys) == 0 {
			continue
		}
		w := float64(count) / float64(len(keys))
		for _, k := range keys {
			cands = append(cands, weightedKey{k, w})
		}
	}
	return rangeBounds(cands, parts), nil
}

type weightedKey struct {
	key    []byte
	weight float64 // the records this sampled key stands for
}

// rangeBounds picks at most parts-1 ascending, distinct bounds that split
// the weighted keys into parts ranges of about equal weight (Spark's
// RangePartitioner.determineBounds). It sorts cands.
func rangeBounds(cands []weightedKey, parts int) [][]byte {
	if parts <= 1 || len(cands) == 0 {
		return nil
	}
	slices.SortFunc(cands, func(a, b weightedKey) int { return bytes.Compare(a.key, b.key) })
	var sum float64
	for _, c := range cands {
		sum += c.weight
	}
	step := sum / float64(parts)
	var bounds [][]byte
	cum, target := 0.0, step
	for _, c := range cands {
		if len(bounds) == parts-1 {
			break
		}
		cum += c.weight
		if cum < target {
			continue
		}
		if len(bounds) == 0 || bytes.Compare(c.key, bounds[len(bounds)-1]) > 0 {
			bounds = append(bounds, c.key)
			target += step
		}
	}
	return bounds
}

type keySampleParams struct {
	Keys int    `json:"keys"` // the reservoir's size
	Seed uint64 `json:"seed"`
}

// keySampleSink returns a partition's record count and a uniform
// reservoir sample of at most Keys of its encoded keys (cut to
// maxSampleKey bytes): the count as a uvarint, then each key framed
// (codec.AppendFramed). The sample is the same on every attempt.
type keySampleSink[K comparable, V any] struct{}

func (keySampleSink[K, V]) sink(b *build, params json.RawMessage, input any) (sinkFn, error) {
	var p keySampleParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	in, err := seqOf[KV[K, V]](input)
	if err != nil {
		return nil, err
	}
	return func(tc *taskContext, part int) ([]byte, error) {
		kc, err := codecOf[K]()
		if err != nil {
			return nil, err
		}
		rng := rand.New(rand.NewPCG(p.Seed, uint64(part)))
		sample := make([][]byte, 0, min(p.Keys, 1024))
		var n uint64
		for kv := range in(tc, part) {
			n++
			j := len(sample)
			if j >= p.Keys {
				// Algorithm R: the n-th record replaces a random
				// element with probability Keys/n.
				if j = int(rng.Uint64N(n)); j >= p.Keys {
					continue
				}
			} else {
				sample = append(sample, nil)
			}
			k := kc.Append(sample[j][:0], kv.Key)
			sample[j] = k[:min(len(k), maxSampleKey)]
		}
		out := binary.AppendUvarint(nil, n)
		for _, k := range sample {
			out = codec.AppendFramed(out, k)
		}
		return out, nil
	}, nil
}

func decodeKeySample(b []byte) (count uint64, keys [][]byte, err error) {
	count, k := binary.Uvarint(b)
	if k <= 0 {
		return 0, nil, errors.New("malformed count")
	}
	for b = b[k:]; len(b) > 0; {
		key, rest, err := codec.CutFramed(b)
		if err != nil {
			return 0, nil, errors.New("malformed key")
		}
		keys = append(keys, key)
		b = rest
	}
	return count, keys, nil
}

type sortReadParams struct {
	Shuffle    uint32 `json:"shuffle"`
	Descending bool   `json:"descending,omitempty"`
}

// sortReadOp reads a reduce partition of a range-partitioned shuffle,
// sorts it by encoded key and yields it in order. It holds the whole
// partition: the encoded records in a sortArena and a 24-byte entry per
// record.
type sortReadOp[K comparable, V any] struct{}

// sortEntry is a record in a sortReadOp's arena: the key is the klen
// bytes at off (sortArena.at), the value the vlen bytes after it.
type sortEntry struct {
	off        int
	klen, vlen uint32
	prefix     uint64 // the key's first 8 bytes, big endian, zero padded
}

// sortArena holds a partition's records, key and value together, in
// chunks of sortChunk bytes (a record larger than that gets a chunk of its
// own), so that each record is copied once: one buffer grown by append
// copied everything at each doubling and held up to twice the bytes. An
// offset is the chunk's index in its high 32 bits and the position in it
// in the low 32.
type sortArena struct{ chunks [][]byte }

const sortChunk = 4 << 20

// add appends k and v and returns their offset.
func (a *sortArena) add(k, v []byte) int {
	n, last := len(k)+len(v), len(a.chunks)-1
	if last < 0 || cap(a.chunks[last])-len(a.chunks[last]) < n {
		a.chunks = append(a.chunks, make([]byte, 0, max(sortChunk, n)))
		last++
	}
	c := a.chunks[last]
	a.chunks[last] = append(append(c, k...), v...)
	return last<<32 | len(c)
}

// at returns the n bytes at off.
func (a *sortArena) at(off, n int) []byte {
	p := off & (1<<32 - 1)
	return a.chunks[off>>32][p : p+n]
}

// size is the bytes the arena holds, with its chunks' unused ends.
func (a *sortArena) size() int64 {
	var n int64
	for _, c := range a.chunks {
		n += int64(cap(c))
	}
	return n
}

func (sortReadOp[K, V]) op(b *build, params json.RawMessage, _ []any) (any, error) {
	var p sortReadParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	return seqFn[KV[K, V]](func(tc *taskContext, part int) iter.Seq[KV[K, V]] {
		return func(yield func(KV[K, V]) bool) {
			kc, err1 := codecOf[K]()
			vc, err2 := codecOf[V]()
			if err1 != nil || err2 != nil {
				tc.fail(errors.Join(err1, err2))
				return
			}
			arena, entries, err := readSortPartition(tc, p.Shuffle, part)
			if err != nil {
				tc.fail(err)
				return
			}
			key := func(e sortEntry) []byte { return arena.at(e.off, int(e.klen)) }
			// Prefixes decide almost every comparison; equal ones fall
			// back to the whole keys.
			cmp := func(a, b sortEntry) int {
				if a.prefix != b.prefix {
					if a.prefix < b.prefix {
						return -1
					}
					return 1
				}
				return bytes.Compare(key(a), key(b))
			}
			if p.Descending {
				slices.SortFunc(entries, func(a, b sortEntry) int { return cmp(b, a) })
			} else {
				slices.SortFunc(entries, cmp)
			}
			for _, e := range entries {
				k, err := kc.Decode(key(e))
				if err != nil {
					tc.fail(fmt.Errorf("client: shuffle %d: key: %w", p.Shuffle, err))
					return
				}
				v, err := vc.Decode(arena.at(e.off+int(e.klen), int(e.vlen)))
				if err != nil {
					tc.fail(fmt.Errorf("client: shuffle %d: value: %w", p.Shuffle, err))
					return
				}
				if tc.failed() || !yield(KV[K, V]{k, v}) {
					return
				}
			}
		}
	}), nil
}

// readSortPartition copies every record of a reduce partition into one
// buffer (the reader's Key and Value are valid only until its next Next).
func readSortPartition(tc *taskContext, shuffle uint32, part int) (*sortArena, []sortEntry, error) {
	rd, err := tc.readShuffle(shuffle, part, part+1)
	if err != nil {
		return nil, nil, err
	}
	defer rd.Close()
	arena := &sortArena{}
	var entries []sortEntry
	for rd.Next() {
		k, v := rd.Key(), rd.Value()
		if uint64(len(k)) > 1<<32-1 || uint64(len(v)) > 1<<32-1 {
			return nil, nil, fmt.Errorf("client: shuffle %d: a record of %d+%d bytes is too large to sort", shuffle, len(k), len(v))
		}
		var pre [8]byte
		copy(pre[:], k)
		entries = append(entries, sortEntry{off: arena.add(k, v), klen: uint32(len(k)), vlen: uint32(len(v)), prefix: binary.BigEndian.Uint64(pre[:])})
	}
	if err := rd.Err(); err != nil {
		return nil, nil, err
	}
	tc.addMetric("shuffle_records_read", int64(len(entries)))
	tc.addMetric(eventlog.MetricRecordsIn, int64(len(entries)))
	tc.shuffleReadMetrics(rd)
	tc.addMetric("sort_bytes_held", arena.size()+int64(unsafe.Sizeof(sortEntry{}))*int64(cap(entries)))
	return arena, entries, nil
}
