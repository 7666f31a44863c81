package client

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"shoal/client/eventlog"
	"shoal/compute/computepb"
	"shoal/internal/poll"
)

// The failure table of docs/DESIGN.md §6, row by row, against the
// in-memory fakeCluster: no process, no network. Each case runs the same
// two-stage job (Count of a ReduceByKey: 4 map tasks, 2 result tasks on
// 2 nodes × 2 workers of 1 slot) with a fault, and checks what the
// scheduler redid from its event log. The same rows run against real
// processes in failure_test.go, netfault_test.go and bench's faults.

func fakeKey(x int64) KV[int64, int64] { return KV[int64, int64]{Key: x % 4, Value: 1} }
func fakeAdd(a, b int64) int64         { return a + b }

// fakeOutcomeOf is the summary of a job's event log the cases check.
type fakeSummary struct {
	events map[string]int // by name
	// mapAttempts[i] is the number of map tasks started in attempt i of
	// the map stage; resultAttempts likewise.
	mapAttempts, resultAttempts []int
	// onNode1 is how many map outputs of the first map attempt succeeded
	// on node-1.
	onNode1 int
	revived int // node_added events that take a lost node back
}

func summarize(t *testing.T, path string) fakeSummary {
	t.Helper()
	evs, err := eventlog.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := fakeSummary{events: map[string]int{}}
	kinds := map[int]string{}
	for _, ev := range evs {
		sum.events[eventlog.Name(ev)]++
		switch ev := ev.(type) {
		case *eventlog.StageSubmitted:
			kinds[ev.Stage] = ev.Kind
		case *eventlog.TaskStart:
			at := &sum.resultAttempts
			if kinds[ev.Stage] == eventlog.KindMap {
				at = &sum.mapAttempts
			}
			for len(*at) <= ev.StageAttempt {
				*at = append(*at, 0)
			}
			(*at)[ev.StageAttempt]++
		case *eventlog.TaskEnd:
			if ev.Kind == eventlog.KindMap && ev.StageAttempt == 0 && ev.Status == eventlog.StatusSucceeded && ev.Node == "node-1" {
				sum.onNode1++
			}
		case *eventlog.NodeAdded:
			if ev.Reason != "" {
				sum.revived++
			}
		}
	}
	return sum
}

// startFake starts a Context on f.
func startFake(t *testing.T, f *fakeCluster) (*Context, string) {
	t.Helper()
	opts := Options{
		App: fakeApp, Nodes: len(f.nodes), WorkersPerNode: f.perNode, Slots: f.slots,
		EventLog: filepath.Join(t.TempDir(), "events.jsonl"), LocalityWait: time.Millisecond, HeartbeatTimeout: 2 * time.Second,
	}
	opts.EnsureDefaults()
	c := newContext(opts, 0, 0)
	var err error
	if c.events, err = eventlog.Create(opts.EventLog); err != nil {
		t.Fatal(err)
	}
	if err := c.start(context.Background(), f, f, f, len(f.nodes)*f.perNode); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, opts.EventLog
}

// firstInput returns the first map output a reduce task reads, and the
// node holding it.
func firstInput(r *fakeRun) (shuffle, mapID uint32, node string) {
	in := r.Task.Inputs[0]
	return in.Shuffle, 0, in.Maps[0].Node
}

func TestFailureTable(t *testing.T) {
	isMap := func(r *fakeRun) bool { return r.Task.Kind == "map" }
	for _, tc := range []struct {
		name string
		// behave is the fault; calls counts the tasks run so far,
		// this one included.
		behave func(r *fakeRun, calls int) fakeOutcome
		// then runs after the job, with the job's error.
		wantErr string
		check   func(t *testing.T, s fakeSummary, f *fakeCluster)
	}{{
		name: "worker killed: its running task only is rerun, a replacement is started",
		behave: func(r *fakeRun, calls int) fakeOutcome {
			if isMap(r) && r.Task.Partition == 1 && r.Task.Attempt == 0 {
				return fakeOutcome{Lose: true, Reason: "the stream broke: EOF"}
			}
			return fakeOutcome{}
		},
		check: func(t *testing.T, s fakeSummary, f *fakeCluster) {
			wantInts(t, "map tasks", s.mapAttempts, []int{5})
			wantInts(t, "result tasks", s.resultAttempts, []int{2})
			want(t, "worker_lost", s.events["worker_lost"], 1)
			want(t, "node_lost", s.events["node_lost"], 0)
			// The replacement is started once the lost worker's node
			// has answered a probe, off the loop: it may come after the
			// job.
			poll.WaitFor(t, 5*time.Second, "a replacement worker", func() bool { _, _, added, _ := f.Counts(); return len(added) == 1 })
			_, killed, added, _ := f.Counts()
			want(t, "replacements", len(added), 1)
			want(t, "workers killed before their replacement", len(killed), 1)
		},
	}, {
		name: "worker hung: lost on missed heartbeats, as a killed one",
		behave: func(r *fakeRun, calls int) fakeOutcome {
			if !isMap(r) && r.Task.Partition == 0 && r.Task.Attempt == 0 {
				return fakeOutcome{Lose: true, Reason: "missed heartbeats for 2s"}
			}
			return fakeOutcome{}
		},
		check: func(t *testing.T, s fakeSummary, f *fakeCluster) {
			wantInts(t, "map tasks", s.mapAttempts, []int{4})
			wantInts(t, "result tasks", s.resultAttempts, []int{3})
			want(t, "worker_lost", s.events["worker_lost"], 1)
			// The replacement is started once the lost worker's node
			// has answered a probe, off the loop: it may come after the
			// job.
			poll.WaitFor(t, 5*time.Second, "a replacement worker", func() bool { _, _, added, _ := f.Counts(); return len(added) == 1 })
			_, killed, added, _ := f.Counts()
			want(t, "replacements", len(added), 1)
			want(t, "workers killed before their replacement", len(killed), 1)
		},
	}, {
		name: "task error: retried, the job succeeds",
		behave: func(r *fakeRun, calls int) fakeOutcome {
			if isMap(r) && r.Task.Partition == 2 && r.Task.Attempt < 2 {
				return fakeOutcome{Err: "panic: boom", UserError: true}
			}
			return fakeOutcome{}
		},
		check: func(t *testing.T, s fakeSummary, f *fakeCluster) {
			wantInts(t, "map tasks", s.mapAttempts, []int{6})
			want(t, "worker_lost", s.events["worker_lost"], 0)
		},
	}, {
		name: "task error four times: the job fails with the error",
		behave: func(r *fakeRun, calls int) fakeOutcome {
			if isMap(r) && r.Task.Partition == 2 {
				return fakeOutcome{Err: "panic: boom", UserError: true}
			}
			return fakeOutcome{}
		},
		wantErr: "partition 2 failed 4 times; last error: panic: boom",
	}, {
		name: "node killed: only the map outputs it held are recomputed",
		behave: func(r *fakeRun, calls int) fakeOutcome {
			if isMap(r) {
				return fakeOutcome{}
			}
			if r.Task.StageAttempt == 0 && !r.Down("node-1") {
				r.KillNode(1)
			}
			for _, in := range r.Task.Inputs {
				for m, loc := range in.Maps {
					if r.Down(loc.Node) {
						return fakeOutcome{FetchFailure: &computepb.FetchFailure{Shuffle: in.Shuffle, Map: uint32(m), Node: loc.Node, Reason: "connection refused"}}
					}
				}
			}
			return fakeOutcome{}
		},
		check: func(t *testing.T, s fakeSummary, f *fakeCluster) {
			want(t, "node_lost", s.events["node_lost"], 1)
			if s.onNode1 == 0 {
				t.Fatal("no map output was on node-1: the case tests nothing")
			}
			wantInts(t, "map tasks", s.mapAttempts, []int{4, s.onNode1})
			_, _, added, _ := f.Counts()
			want(t, "replacements on a dead node", len(added), 0)
		},
	}, {
		name: "node unreachable, then back: lost, then taken back while its workers stay",
		behave: func(r *fakeRun, calls int) fakeOutcome {
			if !isMap(r) && r.Task.StageAttempt == 0 && r.Task.Partition == 0 {
				sh, m, node := firstInput(r)
				r.CutOff(node, 1)
				return fakeOutcome{FetchFailure: &computepb.FetchFailure{Shuffle: sh, Map: m, Node: node, Reason: "deadline exceeded"}}
			}
			return fakeOutcome{}
		},
		check: func(t *testing.T, s fakeSummary, f *fakeCluster) {
			want(t, "node_lost", s.events["node_lost"], 1)
			want(t, "worker_lost", s.events["worker_lost"], 0)
			if len(s.mapAttempts) != 2 || s.mapAttempts[1] == 0 {
				t.Errorf("map tasks by attempt %v: want the lost node's outputs recomputed", s.mapAttempts)
			}
		},
	}, {
		name: "corrupt block: only that map output is recomputed",
		behave: func(r *fakeRun, calls int) fakeOutcome {
			if !isMap(r) && r.Task.StageAttempt == 0 && r.Task.Partition == 0 {
				sh, m, node := firstInput(r)
				return fakeOutcome{FetchFailure: &computepb.FetchFailure{Shuffle: sh, Map: m, Node: node, Reason: "shuffle: corrupt data: frame 0"}}
			}
			return fakeOutcome{}
		},
		check: func(t *testing.T, s fakeSummary, f *fakeCluster) {
			want(t, "node_lost", s.events["node_lost"], 0)
			wantInts(t, "map tasks", s.mapAttempts, []int{4, 1})
			wantInts(t, "result tasks", s.resultAttempts, []int{2, 1})
		},
	}, {
		name: "fetch failures batched: two failures, one resubmission",
		behave: func(r *fakeRun, calls int) fakeOutcome {
			if !isMap(r) && r.Task.StageAttempt == 0 {
				in := r.Task.Inputs[0]
				m := r.Task.Partition // a different map output for each reduce task
				return fakeOutcome{FetchFailure: &computepb.FetchFailure{Shuffle: in.Shuffle, Map: m, Node: in.Maps[m].Node, Reason: "shuffle: corrupt data"}}
			}
			return fakeOutcome{}
		},
		check: func(t *testing.T, s fakeSummary, f *fakeCluster) {
			want(t, "fetch_failed", s.events["fetch_failed"], 2)
			wantInts(t, "map tasks", s.mapAttempts, []int{4, 2})
			wantInts(t, "result tasks", s.resultAttempts, []int{2, 2})
		},
	}, {
		name: "stage attempts exhausted: the job fails naming the cause",
		behave: func(r *fakeRun, calls int) fakeOutcome {
			if !isMap(r) {
				sh, m, node := firstInput(r)
				return fakeOutcome{FetchFailure: &computepb.FetchFailure{Shuffle: sh, Map: m, Node: node, Reason: "shuffle: corrupt data"}}
			}
			return fakeOutcome{}
		},
		wantErr: "gave up after 4 attempts ended on fetch failures",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeCluster(2, 2, 1)
			calls := 0
			f.Behave = func(r *fakeRun) fakeOutcome {
				calls++
				return tc.behave(r, calls)
			}
			c, log := startFake(t, f)
			counts := ReduceByKey(Map(Range(c, 0, 100, 4), fakeKey), fakeAdd, 2)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			n, err := Count(ctx, counts)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want one with %q", err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr == "" && n != 2:
				t.Fatalf("count %d, want 2 (one per result partition)", n)
			}
			if tc.check != nil {
				tc.check(t, summarize(t, log), f)
			}
		})
	}
}

// A node restarted comes back as a new node with new workers, and gets
// the context's broadcasts before RestartNode returns.
func TestFakeNodeRestarted(t *testing.T) {
	f := newFakeCluster(2, 1, 1)
	c, log := startFake(t, f)
	b, err := NewBroadcast(c, "table")
	if err != nil {
		t.Fatal(err)
	}
	f.KillNode(1)
	if err := c.RestartNode(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	addr := f.Nodes()[1].Addr
	if !slices.ContainsFunc(f.Blocks(), func(k string) bool { return strings.HasPrefix(k, addr+"/") && strings.Contains(k, fmt.Sprint(b.ID)) }) {
		t.Fatalf("the restarted node %s holds no broadcast %d: %v", addr, b.ID, f.Blocks())
	}
	n, err := Count(context.Background(), ReduceByKey(Map(Range(c, 0, 100, 4), fakeKey), fakeAdd, 2))
	if err != nil || n != 2 {
		t.Fatalf("a job after the restart: %d, %v", n, err)
	}
	s := summarize(t, log)
	want(t, "node_added", s.events["node_added"], 3)
}

// Close while a job waits for its tasks ends the job with an error that
// names the close, at once.
func TestFakeCloseWhileJobRuns(t *testing.T) {
	f := newFakeCluster(1, 1, 1)
	started := make(chan struct{}, 1)
	f.Behave = func(r *fakeRun) fakeOutcome {
		select {
		case started <- struct{}{}:
		default:
		}
		return fakeOutcome{Lose: true, Reason: "hangs"} // and no replacement comes: nothing ever finishes
	}
	c, _ := startFake(t, f)
	errc := make(chan error, 1)
	go func() {
		_, err := Count(context.Background(), ReduceByKey(Map(Range(c, 0, 100, 4), fakeKey), fakeAdd, 2))
		errc <- err
	}()
	<-started
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "the context was closed while it ran") {
			t.Fatalf("err = %v, want one naming the close", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the job did not end within 5 s of Close")
	}
	if _, err := Count(context.Background(), Range(c, 0, 10, 1)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("a job after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

func want[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s: %v, want %v", what, got, want)
	}
}

func wantInts(t *testing.T, what string, got, want []int) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s by stage attempt: %v, want %v", what, got, want)
	}
}

// Close while the driver fetches a result block (a node that does not
// answer in time) ends the job at once with an error naming the close.
func TestFakeCloseWhileFetchingResult(t *testing.T) {
	f := newFakeCluster(1, 2, 1)
	f.Behave = func(r *fakeRun) fakeOutcome { return fakeOutcome{ResultBlock: r.Task.Kind != "map"} }
	gets := f.HoldGets()
	c, _ := startFake(t, f)
	errc := make(chan error, 1)
	go func() {
		_, err := Count(context.Background(), ReduceByKey(Map(Range(c, 0, 100, 4), fakeKey), fakeAdd, 2))
		errc <- err
	}()
	select {
	case <-gets:
	case <-time.After(10 * time.Second):
		t.Fatal("no result block was fetched")
	}
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "the context was closed while it ran") {
			t.Fatalf("err = %v, want one naming the close", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the job did not end within 5 s of Close")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v", d)
	}
}

// Without faults, a result stored as a block is fetched by the driver
// off its loop and counts.
func TestFakeResultBlocks(t *testing.T) {
	f := newFakeCluster(1, 2, 1)
	f.Behave = func(r *fakeRun) fakeOutcome { return fakeOutcome{ResultBlock: r.Task.Kind != "map"} }
	c, _ := startFake(t, f)
	n, err := Count(context.Background(), ReduceByKey(Map(Range(c, 0, 100, 4), fakeKey), fakeAdd, 2))
	if err != nil || n != 2 {
		t.Fatalf("count %d, %v; want 2", n, err)
	}
}
