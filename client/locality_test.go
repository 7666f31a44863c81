package client

import (
	"slices"
	"testing"
	"time"

	"shoal/compute"
	"shoal/compute/computepb"
	"shoal/shuffleservice/shufflepb"
)

func TestPreferredNodes(t *testing.T) {
	out := func(lengths ...uint64) *shufflepb.MapOutput { return &shufflepb.MapOutput{Lengths: lengths} }
	inputs := []*computepb.ShuffleInput{{Maps: []*computepb.MapLocation{
		{Node: "a", Output: out(90, 10, 0)},
		{Node: "b", Output: out(10, 10, 0)},
		{Node: "c", Output: out(0, 80, 0)},
	}}}
	for _, tc := range []struct {
		part int
		want []string
	}{
		{0, []string{"a"}}, // a holds 90%, b 10% (< a fifth)
		{1, []string{"c"}}, // c 80%, a and b 10% each
		{2, nil},           // no bytes at all: no preference
		{5, nil},           // past every output's partitions
	} {
		if got := preferredNodes(inputs, tc.part); !slices.Equal(got, tc.want) {
			t.Errorf("partition %d prefers %v, want %v", tc.part, got, tc.want)
		}
	}
	if got := preferredNodes(nil, 0); got != nil {
		t.Errorf("no inputs: %v", got)
	}
}

func TestPickHonoursLocalityAndDelay(t *testing.T) {
	w := &workerState{info: compute.WorkerInfo{ID: "w1", Node: "a"}}
	now := time.Now()
	const wait = 100 * time.Millisecond
	fresh := &pendingTask{part: 0, prefs: []string{"b"}, since: now}
	old := &pendingTask{part: 1, prefs: []string{"b"}, since: now.Add(-time.Second)}
	local := &pendingTask{part: 2, prefs: []string{"a"}, since: now}
	free := &pendingTask{part: 3, since: now}
	avoid := &pendingTask{part: 4, avoid: "w1", since: now}

	for _, tc := range []struct {
		name    string
		pending []*pendingTask
		others  bool
		want    int
	}{
		{"a task preferring this node goes first", []*pendingTask{fresh, free, local}, true, 2},
		{"a task preferring another node waits", []*pendingTask{fresh}, true, -1},
		{"until its locality wait is over", []*pendingTask{fresh, old}, true, 1},
		{"a task without preference runs anywhere", []*pendingTask{fresh, free}, true, 1},
		{"a retried task avoids the worker it failed on", []*pendingTask{avoid}, true, -1},
		{"unless there is no other worker", []*pendingTask{avoid}, false, 0},
	} {
		if got := pick(tc.pending, w, wait, tc.others); got != tc.want {
			t.Errorf("%s: picked %d, want %d", tc.name, got, tc.want)
		}
	}
}
