package client_test

import (
	"context"
	"fmt"
	"maps"
	"testing"

	"shoal/client"
)

// wordLines generates n lines of words w0..w96 and returns them with
// their word counts.
func wordLines(n int) ([]string, map[string]int64) {
	lines := make([]string, n)
	want := map[string]int64{}
	for i := range lines {
		a, b, c := fmt.Sprintf("w%d", i*7%97), fmt.Sprintf("w%d", i%13), fmt.Sprintf("w%d", i*31%89)
		lines[i] = a + " " + b + "  " + c
		want[a]++
		want[b]++
		want[c]++
	}
	return lines, want
}

func countsOf(t *testing.T, kvs []client.KV[string, int64]) map[string]int64 {
	t.Helper()
	m := map[string]int64{}
	for _, kv := range kvs {
		if _, dup := m[kv.Key]; dup {
			t.Fatalf("key %q twice in the result", kv.Key)
		}
		m[kv.Key] = kv.Value
	}
	return m
}

// TestShuffleServiceOff runs a word count with the shuffle service on and
// off, then kills a worker that wrote map outputs and runs a second action
// over the same shuffled RDD. Both give the right answer; the event log
// shows the difference: off, the killed worker's outputs (and only they)
// are recomputed in the second job, and a fetch that failed, if any,
// names the worker's own address; on, the node service still serves them
// and the map stage is skipped.
func TestShuffleServiceOff(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run(fmt.Sprintf("off=%v", off), func(t *testing.T) {
			t.Parallel()
			testShuffleServiceKill(t, off)
		})
	}
}

func testShuffleServiceKill(t *testing.T, off bool) {
	c, events := newContextWith(t, client.Options{Nodes: 1, WorkersPerNode: 2, NoShuffleService: off})
	ctx := context.Background()
	nodeAddr := c.Local().Nodes()[0].Addr
	lines, want := wordLines(3000)
	words := client.FlatMap(client.Parallelize(c, lines, 8), splitWords)
	counts := client.ReduceByKey(client.Map(words, one), add, 4).SetName("counts")
	got, err := client.Collect(ctx, counts)
	if err != nil {
		t.Fatal(err)
	}
	if g := countsOf(t, got); !maps.Equal(g, want) {
		t.Fatalf("word counts %v, want %v", g, want)
	}
	if ff := eventsOf(t, events, "fetch_failed"); len(ff) != 0 {
		t.Fatalf("fetch failures before any kill: %v", ff)
	}

	// Kill a worker that committed map outputs of the shuffle.
	wrote := map[string]int{}
	for _, e := range eventsOf(t, events, "task_end") {
		if e["kind"] == "map" && e["status"] == "succeeded" {
			wrote[e["worker"].(string)]++
		}
	}
	victim := ""
	for w := range wrote {
		victim = w
	}
	if victim == "" {
		t.Fatal("no map task succeeded, by the event log")
	}
	if err := c.Local().KillWorker(victim); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s, which wrote %d of 8 map outputs", victim, wrote[victim])

	n, err := client.Count(ctx, counts)
	if err != nil || n != int64(len(want)) {
		t.Fatalf("Count after killing %s = %d, %v; want %d", victim, n, err, len(want))
	}
	recomputed, skipped := 0, 0
	for _, e := range eventsOf(t, events, "stage_submitted") {
		if e["job"].(float64) == 1 && e["kind"] == "map" {
			recomputed += int(e["tasks"].(float64))
		}
	}
	for _, e := range eventsOf(t, events, "stage_skipped") {
		if e["job"].(float64) == 1 {
			skipped++
		}
	}
	failed := eventsOf(t, events, "fetch_failed")
	if !off {
		if recomputed != 0 || len(failed) != 0 || skipped != 1 {
			t.Fatalf("shuffle service on, after a worker kill: %d map tasks recomputed, %d stages skipped, fetch failures %v; want none, 1, none",
				recomputed, skipped, failed)
		}
		return
	}
	if recomputed != wrote[victim] {
		t.Errorf("shuffle service off: %d map tasks recomputed after killing %s; want the %d it wrote", recomputed, victim, wrote[victim])
	}
	for _, f := range failed {
		if f["node"] == nodeAddr || f["node"] == "" {
			t.Errorf("fetch failure %v names node %v; want the killed worker's own shuffle server", f, f["node"])
		}
	}
}
