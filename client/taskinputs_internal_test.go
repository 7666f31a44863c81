package client

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"shoal/compute/computepb"
	"shoal/shuffleservice/shufflepb"
)

func tiKey(i int64) KV[int64, int64] { return KV[int64, int64]{i % 7, 1} }
func tiSum(a, b int64) int64         { return a + b }

// reads formats shuffleReads of one partition as "shuffle:[lo,hi)",
// by order of shuffle.
func reads(n *node, part int) string {
	r := shuffleReads(n, part, part+1)
	var s string
	for _, id := range slices.Sorted(maps.Keys(r)) {
		s += fmt.Sprintf("%d:[%d,%d) ", id, r[id].lo, r[id].hi)
	}
	return s
}

func TestShuffleReads(t *testing.T) {
	c := &Context{}
	pairs := Map(Range(c, 0, 100, 4), tiKey)
	a := ReduceByKey(pairs, tiSum, 6) // shuffle 1, 6 partitions
	b := ReduceByKey(pairs, tiSum, 4) // shuffle 2, 4 partitions
	u := Union(a, b)                  // 10 partitions: a's, then b's
	co := Coalesce(u, 3)              // [0,3) [3,6) [6,10) of u
	j := Join(a, a, 0)                // a is partitioned already: no new shuffle

	for _, tc := range []struct {
		name string
		n    *node
		part int
		want string
	}{
		{"a reduce task reads its own partition", a.n, 4, "1:[4,5) "},
		{"nothing below a source", pairs.n, 2, ""},
		{"union, first parent", u.n, 5, "1:[5,6) 2:[0,0) "},
		{"union, second parent", u.n, 6, "1:[0,0) 2:[0,1) "},
		{"coalesce across the union's parents", co.n, 1, "1:[3,6) 2:[0,0) "},
		{"coalesce over the second parent only", co.n, 2, "1:[0,0) 2:[0,4) "},
		{"a join of co-partitioned RDDs", j.n, 3, "1:[3,4) "},
	} {
		if got := reads(tc.n, tc.part); got != tc.want {
			t.Errorf("%s: partition %d reads %q, want %q", tc.name, tc.part, got, tc.want)
		}
	}
}

// TestTaskInputsCut: a task is sent the outputs with a non-empty block
// in its range, their lengths cut to it and their offsets; a shuffle it
// reads nothing of is left out; outputs that do not cover the range are
// sent whole.
func TestTaskInputsCut(t *testing.T) {
	c := &Context{}
	pairs := Map(Range(c, 0, 100, 3), tiKey)
	a := ReduceByKey(pairs, tiSum, 4)
	b := ReduceByKey(pairs, tiSum, 2)
	u := Union(a, b) // 6 partitions
	sa, sb := a.n.deps[0].shuffle.id, b.n.deps[0].shuffle.id
	loc := func(m uint32, lengths ...uint64) *computepb.MapLocation {
		return &computepb.MapLocation{Node: fmt.Sprintf("n%d", m), Output: &shufflepb.MapOutput{Map: m, Attempt: 2, Epoch: 3, Lengths: lengths}}
	}
	r := &stageRun{st: &stage{final: u.n}, inputs: []*computepb.ShuffleInput{
		{Shuffle: uint32(sa), Maps: []*computepb.MapLocation{loc(0, 5, 0, 7, 0), loc(1, 0, 0, 9, 4), loc(2, 1, 2, 3, 0)}},
		{Shuffle: uint32(sb), Maps: []*computepb.MapLocation{loc(0, 8, 8), loc(1)}}, // map 1 covers no partition
	}}
	show := func(ins []*computepb.ShuffleInput) string {
		var s string
		for _, in := range ins {
			s += fmt.Sprintf("shuffle %d [%d,%d):", in.Shuffle, in.ReduceStart, in.ReduceEnd)
			for _, m := range in.Maps {
				s += fmt.Sprintf(" map %d@%s+%d %v", m.Output.Map, m.Node, m.Offset, m.Output.Lengths)
			}
			s += "; "
		}
		return s
	}
	for _, tc := range []struct {
		part int
		want string
	}{
		{2, fmt.Sprintf("shuffle %d [2,3): map 0@n0+5 [7] map 1@n1+0 [9] map 2@n2+3 [3]; ", sa)},
		{3, fmt.Sprintf("shuffle %d [3,4): map 1@n1+9 [4]; ", sa)},
		{1, fmt.Sprintf("shuffle %d [1,2): map 2@n2+1 [2]; ", sa)},
		{4, fmt.Sprintf("shuffle %d [0,0): map 0@n0+0 [8 8] map 1@n1+0 []; ", sb)},
	} {
		if got := show(r.taskInputs(tc.part)); got != tc.want {
			t.Errorf("partition %d gets\n%s\nwant\n%s", tc.part, got, tc.want)
		}
	}
	// The cut keeps what names the output.
	in := r.taskInputs(2)[0].Maps[0].Output
	if in.Attempt != 2 || in.Epoch != 3 {
		t.Errorf("cut output %v lost its attempt or epoch", in)
	}
}
