package client

import (
	"bytes"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// Partitioner assigns the encoded key of a record to one of N partitions.
// It is metadata of a pair RDD: two RDDs partitioned by equal partitioners
// are joined without a shuffle.
type Partitioner struct {
	Kind string `json:"kind"` // "hash" or "range"
	N    int    `json:"n"`
	// Bounds are the N-1 ascending upper bounds of a range partitioner's
	// first N-1 partitions, as encoded keys (codecs keep key order).
	Bounds     [][]byte `json:"bounds,omitempty"`
	Descending bool     `json:"descending,omitempty"`
}

// HashPartitioner spreads keys over n partitions by a hash of their
// encoding.
func HashPartitioner(n int) *Partitioner { return &Partitioner{Kind: "hash", N: max(1, n)} }

// Equal reports whether p and o partition every key the same way.
func (p *Partitioner) Equal(o *Partitioner) bool {
	if p == nil || o == nil {
		return false
	}
	return p.Kind == o.Kind && p.N == o.N && p.Descending == o.Descending &&
		slices.EqualFunc(p.Bounds, o.Bounds, bytes.Equal)
}

// partition returns the partition of an encoded key.
func (p *Partitioner) partition(key []byte) int {
	if p.Kind == "range" {
		i, _ := slices.BinarySearchFunc(p.Bounds, key, bytes.Compare)
		if p.Descending {
			return p.N - 1 - i
		}
		return i
	}
	return int(xxhash.Sum64(key) % uint64(p.N))
}
