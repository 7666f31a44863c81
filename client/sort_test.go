package client_test

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"shoal/client"
)

// TestSortByKey sorts int64 and string keys both ways over a two-node
// cluster and checks that the partitions, in order, hold the input's
// records in key order, spread over every partition.
func TestSortByKey(t *testing.T) {
	c, _ := newContext(t, 2, 2)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))

	ints := make([]client.KV[int64, int], 5000)
	for i := range ints {
		ints[i] = client.KV[int64, int]{Key: int64(rng.Uint64()), Value: i}
	}
	strs := make([]client.KV[string, int], 3000)
	for i := range strs {
		// Few distinct keys of varying length: many equal keys.
		strs[i] = client.KV[string, int]{Key: strings.Repeat(string(rune('a'+rng.IntN(26))), 1+rng.IntN(3)), Value: i}
	}
	for _, asc := range []bool{true, false} {
		t.Run(fmt.Sprintf("int64/ascending=%v", asc), func(t *testing.T) {
			sorted := checkSortByKey(t, ctx, client.Parallelize(c, ints, 3), ints, asc, 4)
			// Every partition holds between a third and three times its
			// share of the records.
			sizes, err := client.Collect(ctx, client.MapPartitions(sorted, countRecords))
			if err != nil {
				t.Fatal(err)
			}
			share := int64(len(ints) / 4)
			for i, n := range sizes {
				if n < share/3 || n > 3*share {
					t.Errorf("partition %d holds %d records, want about %d (sizes %v)", i, n, share, sizes)
				}
			}
		})
		t.Run(fmt.Sprintf("string/ascending=%v", asc), func(t *testing.T) {
			checkSortByKey(t, ctx, client.Parallelize(c, strs, 3), strs, asc, 4)
		})
	}
	t.Run("empty", func(t *testing.T) {
		checkSortByKey(t, ctx, client.Parallelize(c, []client.KV[int64, int]{}, 2), nil, true, 4)
	})
	t.Run("one partition", func(t *testing.T) {
		checkSortByKey(t, ctx, client.Parallelize(c, ints[:500], 3), ints[:500], false, 1)
	})
	t.Run("unordered key type", func(t *testing.T) {
		r := client.Parallelize(c, []client.KV[point, int]{{point{1, 2}, 3}}, 1)
		if _, err := client.SortByKey(ctx, r, true, 2); err == nil || !strings.Contains(err.Error(), "order-preserving") {
			t.Fatalf("SortByKey of struct keys: err = %v, want one about order-preserving encodings", err)
		}
	})
}

type point struct{ X, Y int }

// checkSortByKey sorts in, collects the result partition after partition
// and checks it against want sorted. It returns the sorted RDD.
func checkSortByKey[K cmp.Ordered](t *testing.T, ctx context.Context, in *client.RDD[client.KV[K, int]], want []client.KV[K, int], asc bool, parts int) *client.RDD[client.KV[K, int]] {
	t.Helper()
	sorted, err := client.SortByKey(ctx, in, asc, parts)
	if err != nil {
		t.Fatal(err)
	}
	if sorted.NumPartitions() != parts {
		t.Fatalf("%d partitions, want %d", sorted.NumPartitions(), parts)
	}
	got, err := client.Collect(ctx, sorted)
	if err != nil {
		t.Fatal(err)
	}
	order := func(a, b client.KV[K, int]) int {
		if asc {
			return cmp.Compare(a.Key, b.Key)
		}
		return cmp.Compare(b.Key, a.Key)
	}
	for i := 1; i < len(got); i++ {
		if order(got[i-1], got[i]) > 0 {
			t.Fatalf("record %d (key %v) comes after record %d (key %v): not sorted (ascending=%v)", i, got[i].Key, i-1, got[i-1].Key, asc)
		}
	}
	byRecord := func(a, b client.KV[K, int]) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Value, b.Value))
	}
	want = slices.Clone(want)
	slices.SortFunc(want, byRecord)
	slices.SortFunc(got, byRecord)
	if !slices.Equal(got, want) {
		t.Fatalf("sorted %d records, want the input's %d records", len(got), len(want))
	}
	return sorted
}

// countRecords yields the number of records of a partition.
func countRecords(in iter.Seq[client.KV[int64, int]]) iter.Seq[int64] {
	return func(yield func(int64) bool) {
		var n int64
		for range in {
			n++
		}
		yield(n)
	}
}
