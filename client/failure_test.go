package client_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"shoal/client"
	"shoal/client/eventlog"
	"shoal/compute"
	"shoal/internal/poll"
	"shoal/internal/testbin"
)

// The failure tests run real clusters and kill their processes with
// SIGKILL at chosen moments: a task's records wait on a gate file, and the
// test waits for an event in the event log before it kills.

// startCluster starts a local cluster with opts completed by the test's
// binaries, directories and event log.
func startCluster(t *testing.T, opts client.Options) (*client.Context, string) {
	t.Helper()
	opts.Binary, opts.NodeBinary = os.Args[0], testbin.Shoal(t)
	if opts.EventLog == "" {
		opts.EventLog = filepath.Join(t.TempDir(), "events.jsonl")
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	opts.WorkerStderr = os.Stderr
	c, err := client.NewContext(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c, opts.EventLog
}

// allEvents reads the whole event log, in order.
func allEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Every line a test reads is checked against the contract.
		if err := eventlog.Check(sc.Bytes()); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("event log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// killWorkerMidTask kills worker victim of c with SIGKILL, while it runs
// a task, and waits for its tasks to be reported lost in the event log.
func killWorkerMidTask(t *testing.T, c *client.Context, log, victim string) {
	t.Helper()
	if err := c.Local().KillWorker(victim); err != nil {
		t.Fatal(err)
	}
	poll.WaitFor(t, 30*time.Second, "the killed worker's tasks to be reported lost", func() bool {
		for _, ev := range allEvents(t, log) {
			if ev["event"] == "task_end" && ev["status"] == "lost" && ev["worker"] == victim {
				return true
			}
		}
		return false
	})
}

// waitFile blocks until path exists, for at most a minute.
func waitFile(path string) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
}

func open(t *testing.T, gate string) {
	t.Helper()
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// gatedKV keys x by x%10; records from From on wait for the Gate file.
type gatedKV struct {
	Gate string
	From int64
}

func (g gatedKV) Map(x int64) client.KV[int64, int64] {
	if x >= g.From {
		waitFile(g.Gate)
	}
	return client.KV[int64, int64]{Key: x % 10, Value: x}
}

// gatedPass passes records through once the Gate file exists.
type gatedPass struct{ Gate string }

func (g gatedPass) Map(kv client.KV[int64, int64]) client.KV[int64, int64] {
	waitFile(g.Gate)
	return kv
}

func mod10KV(x int64) client.KV[int64, int64] { return client.KV[int64, int64]{Key: x % 10, Value: x} }
func addInt64(a, b int64) int64               { return a + b }

// sumsByMod10 is the expected answer of the jobs below over [0, n).
func sumsByMod10(n int64) map[int64]int64 {
	want := map[int64]int64{}
	for x := range n {
		want[x%10] += x
	}
	return want
}

func collectMap(t *testing.T, ctx context.Context, r *client.RDD[client.KV[int64, int64]]) map[int64]int64 {
	t.Helper()
	got, err := client.Collect(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	m := map[int64]int64{}
	for _, kv := range got {
		m[kv.Key] = kv.Value
	}
	return m
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// taskEvents returns the task_start and task_end events of one kind of
// stage ("map" or "result") from events.
func taskEvents(events []map[string]any, kind string) []map[string]any {
	var out []map[string]any
	for _, ev := range events {
		if (ev["event"] == "task_start" || ev["event"] == "task_end") && ev["kind"] == kind {
			out = append(out, ev)
		}
	}
	return out
}

// A worker killed while the map stage of a wide job runs costs only its
// running tasks: a replacement joins, the job's answer is right, and no
// map task whose output was committed runs again.
func TestWorkerKilledDuringMapStage(t *testing.T) {
	c, log := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 2})
	gate := filepath.Join(t.TempDir(), "gate")
	// Partitions 0-3 ([0, 400)) finish at once; 4-7 wait for the gate.
	pairs := client.MapWith[int64, client.KV[int64, int64]](client.Range(c, 0, 800, 8), gatedKV{Gate: gate, From: 400})
	sums := client.ReduceByKey(pairs, addInt64, 4)
	type result struct {
		got map[int64]int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := client.Collect(context.Background(), sums)
		m := map[int64]int64{}
		for _, kv := range got {
			m[kv.Key] = kv.Value
		}
		done <- result{m, err}
	}()
	var victim string
	poll.WaitFor(t, 30*time.Second, "a gated map task to start after 4 map tasks succeeded", func() bool {
		succeeded := 0
		for _, ev := range taskEvents(allEvents(t, log), "map") {
			if ev["event"] == "task_end" && ev["status"] == "succeeded" {
				succeeded++
			}
			if ev["event"] == "task_start" && num(ev["partition"]) >= 4 && succeeded >= 4 {
				victim = ev["worker"].(string)
			}
		}
		return victim != ""
	})
	killWorkerMidTask(t, c, log, victim)
	open(t, gate)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if want := sumsByMod10(800); !maps.Equal(r.got, want) {
		t.Fatalf("sums %v, want %v", r.got, want)
	}
	// The replacement was started when the loss was seen.
	ws := c.Local().Workers()
	if len(ws) != 3 || ws[2].Exited || ws[2].Node != 0 {
		t.Fatalf("workers %+v, want a replacement on node 0", ws)
	}

	committed := map[int]bool{}
	for _, ev := range taskEvents(allEvents(t, log), "map") {
		p := num(ev["partition"])
		switch {
		case ev["event"] == "task_start" && committed[p]:
			t.Errorf("map partition %d ran again after its output was committed: %v", p, ev)
		case ev["event"] == "task_end" && ev["status"] == "succeeded":
			committed[p] = true
		}
	}
	if len(committed) != 8 {
		t.Errorf("map partitions committed: %v, want 8", committed)
	}
}

// A worker killed while no job runs is handled at once, not when the
// next job starts: its loss is logged (worker_lost), a replacement is
// started and logged when it joins (worker_added), all before any further
// job; the next job then runs on the survivors and the replacement.
func TestWorkerLostBetweenJobs(t *testing.T) {
	c, log := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 2})
	ctx := context.Background()
	sums := client.ReduceByKey(client.Map(client.Range(c, 0, 800, 8), mod10KV), addInt64, 4)
	want := sumsByMod10(800)
	if got := collectMap(t, ctx, sums); !maps.Equal(got, want) {
		t.Fatalf("first job: sums %v, want %v", got, want)
	}
	before := c.Local().Workers()
	victim := before[0]
	if err := c.Local().KillWorker(victim.ID); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()

	// Find both events in the log with no job running.
	var lostAt, addedAt time.Duration
	var replacement string
	poll.WaitFor(t, 10*time.Second, "worker_lost of "+victim.ID+" and worker_added of its replacement in the event log", func() bool {
		for _, ev := range allEvents(t, log) {
			switch {
			case ev["event"] == "worker_lost" && ev["worker"] == victim.ID && lostAt == 0:
				lostAt = time.Since(killed)
			case ev["event"] == "worker_added" && replacement == "" && !slices.ContainsFunc(before, func(w compute.LocalWorker) bool { return w.ID == ev["worker"] }):
				replacement, addedAt = ev["worker"].(string), time.Since(killed)
			}
		}
		return lostAt > 0 && replacement != ""
	})
	t.Logf("between jobs: worker_lost seen in the log within %v of the kill, the replacement %s's worker_added within %v",
		lostAt.Round(time.Millisecond), replacement, addedAt.Round(time.Millisecond))
	events := allEvents(t, log)
	if jobs := eventsOf(t, log, "job_start"); len(jobs) != 1 {
		t.Fatalf("%d jobs started, want 1: the events must be handled with no job running", len(jobs))
	}
	lastJobEnd, lost, added := -1, -1, -1
	for i, ev := range events {
		switch {
		case ev["event"] == "job_end":
			lastJobEnd = i
		case ev["event"] == "worker_lost" && ev["worker"] == victim.ID:
			lost = i
		case ev["event"] == "worker_added" && ev["worker"] == replacement:
			added = i
		}
	}
	if !(lastJobEnd < lost && lost < added) {
		t.Fatalf("event order: job_end at %d, worker_lost at %d, worker_added at %d; want them in that order", lastJobEnd, lost, added)
	}

	// The next job runs on the survivor and the replacement, with the
	// loss handled once.
	if got := collectMap(t, ctx, client.ReduceByKey(client.Map(client.Range(c, 0, 1000, 8), mod10KV), addInt64, 4)); !maps.Equal(got, sumsByMod10(1000)) {
		t.Fatalf("second job: sums %v, want %v", got, sumsByMod10(1000))
	}
	workers := map[string]bool{}
	for _, ev := range allEvents(t, log)[len(events):] {
		switch ev["event"] {
		case "task_start":
			workers[ev["worker"].(string)] = true
		case "worker_lost", "worker_added":
			t.Errorf("%v during the second job; it was handled before", ev)
		}
	}
	if workers[victim.ID] || !workers[replacement] {
		t.Errorf("the second job ran tasks on %v; want the replacement %s and not %s", workers, replacement, victim.ID)
	}
}

// A node killed after a wide job's map stage: the next action over the
// same shuffle finds it lost (node_lost), recomputes only the map
// partitions it held, with higher attempt numbers, and gets the right
// answer. (Killing it while the reduce tasks run depends on where they
// were placed: those on the other node may have read everything already.)
func TestNodeKilledAfterMapStage(t *testing.T) {
	c, log := startCluster(t, client.Options{Nodes: 2, WorkersPerNode: 2})
	ctx := context.Background()
	sums := client.ReduceByKey(client.Map(client.Range(c, 0, 800, 8), mod10KV), addInt64, 4)
	want := sumsByMod10(800)
	if got := collectMap(t, ctx, sums); !maps.Equal(got, want) {
		t.Fatalf("first job: sums %v, want %v", got, want)
	}
	killed := c.Local().Nodes()[1]
	if err := c.Local().KillNode(1); err != nil {
		t.Fatal(err)
	}
	type result struct {
		got []client.KV[int64, int64]
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := client.Collect(ctx, sums)
		done <- result{got, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		got := map[int64]int64{}
		for _, kv := range r.got {
			got[kv.Key] = kv.Value
		}
		if !maps.Equal(got, want) {
			t.Fatalf("second job: sums %v, want %v", got, want)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the job did not end within a minute of the node's loss")
	}

	events := allEvents(t, log)
	lost := eventsOf(t, log, "node_lost")
	if len(lost) != 1 || lost[0]["node"] != killed.Addr || lost[0]["addr"] != killed.Addr || num(lost[0]["pid"]) != killed.Pid {
		t.Fatalf("node_lost events %v, want one for %s pid %d", lost, killed.Addr, killed.Pid)
	}
	// Where each map partition's first output was committed, and what
	// attempts ran later.
	firstNode := map[int]string{}
	firstAttempt := map[int]int{}
	later := map[int][]int{} // partition → attempts started after its first commit
	for _, ev := range taskEvents(events, "map") {
		p := num(ev["partition"])
		if _, ok := firstNode[p]; ok && ev["event"] == "task_start" {
			later[p] = append(later[p], num(ev["attempt"]))
		}
		if _, ok := firstNode[p]; !ok && ev["event"] == "task_end" && ev["status"] == "succeeded" {
			firstNode[p], firstAttempt[p] = ev["node"].(string), num(ev["attempt"])
		}
	}
	onKilled := 0
	for p := range 8 {
		switch {
		case firstNode[p] == killed.Addr:
			onKilled++
			if len(later) == 0 || len(later[p]) == 0 {
				t.Errorf("map partition %d was on the killed node and was not recomputed", p)
			}
			for _, a := range later[p] {
				if a <= firstAttempt[p] {
					t.Errorf("map partition %d recomputed with attempt %d, not above %d", p, a, firstAttempt[p])
				}
			}
		case len(later[p]) > 0:
			t.Errorf("map partition %d (on %s, alive) ran again: attempts %v", p, firstNode[p], later[p])
		}
	}
	if onKilled == 0 {
		t.Fatalf("no map output was on the killed node (%v); the test proves nothing", firstNode)
	}
}

// A committed data file damaged on disk: the node refuses it, the reduce
// task reports a fetch failure, and only that map output is recomputed,
// once.
func TestCorruptShuffleDataRecomputesThatMapOutput(t *testing.T) {
	dir := t.TempDir()
	c, log := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 2, Dir: dir})
	ctx := context.Background()
	sums := client.ReduceByKey(client.Map(client.Range(c, 0, 4000, 4), mod10KV), addInt64, 3)
	want := sumsByMod10(4000)
	if got := collectMap(t, ctx, sums); !maps.Equal(got, want) {
		t.Fatalf("first job: sums %v, want %v", got, want)
	}
	files, err := filepath.Glob(filepath.Join(dir, "node-0", c.App(), "shuffle-*", "map-0-*.data"))
	if err != nil || len(files) != 1 {
		t.Fatalf("data files of map 0: %v, %v; want one", files, err)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(files[0], data, 0o644); err != nil {
		t.Fatal(err)
	}

	if got := collectMap(t, ctx, sums); !maps.Equal(got, want) {
		t.Fatalf("second job: sums %v, want %v", got, want)
	}
	events := allEvents(t, log)
	second := 0
	for i, ev := range events {
		if ev["event"] == "job_start" && num(ev["job"]) == 1 {
			second = i
		}
	}
	var fetchFailed, reruns int
	for _, ev := range events[second:] {
		switch {
		case ev["event"] == "fetch_failed":
			fetchFailed++
			if num(ev["map"]) != 0 || !strings.Contains(ev["reason"].(string), "corrupt") {
				t.Errorf("fetch_failed %v, want map 0, corrupt", ev)
			}
		case ev["event"] == "task_start" && ev["kind"] == "map":
			reruns++
			if num(ev["partition"]) != 0 {
				t.Errorf("map partition %d ran in the second job; only 0 was damaged", num(ev["partition"]))
			}
		case ev["event"] == "node_lost":
			t.Errorf("the node was declared lost for a corrupt file: %v", ev)
		}
	}
	if fetchFailed == 0 || reruns != 1 {
		t.Fatalf("second job: %d fetch_failed, %d map tasks; want at least 1 and exactly 1", fetchFailed, reruns)
	}
}

// straggler counts its records; the first attempt to meet record 0 waits
// for the Stop file (a minute at most).
type straggler struct {
	Marker, Stop string
	Seen         client.Accumulator
}

func (s straggler) Map(x int64) int64 {
	s.Seen.Add(1)
	if x == 0 {
		if _, err := os.Stat(s.Marker); os.IsNotExist(err) {
			os.WriteFile(s.Marker, nil, 0o644)
			waitFile(s.Stop)
		}
	}
	return x
}

// With speculation, a straggling task gets a backup copy on another
// worker; the backup wins, the straggler is killed, and accumulators
// count once.
func TestSpeculationBacksUpAStraggler(t *testing.T) {
	c, log := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 2, Speculation: true})
	tmp := t.TempDir()
	stop := filepath.Join(tmp, "stop")
	defer open(t, stop) // let the straggler end, so Close is quick
	seen := c.NewAccumulator("seen")
	r := client.MapWith[int64, int64](client.Range(c, 0, 800, 8), straggler{Marker: filepath.Join(tmp, "marker"), Stop: stop, Seen: seen})
	start := time.Now()
	n, err := client.Count(context.Background(), r)
	if err != nil || n != 800 {
		t.Fatalf("Count = %d, %v", n, err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("the job took %v; the straggler alone waits a minute, its backup should have won long before", d)
	}
	if got := c.Value(seen); got != 800 {
		t.Fatalf("accumulator %d, want 800 (the killed copy must not count)", got)
	}
	var starts, speculative int
	var ends []string
	workers := map[string]bool{}
	for _, ev := range taskEvents(allEvents(t, log), "result") {
		if num(ev["partition"]) != 0 {
			continue
		}
		if ev["event"] == "task_start" {
			starts++
			workers[ev["worker"].(string)] = true
			if ev["speculative"] == true {
				speculative++
			}
		} else {
			ends = append(ends, fmt.Sprint(ev["status"]))
		}
	}
	if starts != 2 || speculative != 1 || len(workers) != 2 {
		t.Fatalf("partition 0: %d attempts (%d speculative) on %d workers; want 2 (1) on 2", starts, speculative, len(workers))
	}
	if len(ends) != 2 || ends[0] != "succeeded" || ends[1] != "killed" {
		t.Fatalf("partition 0 ended %v, want [succeeded killed]", ends)
	}
}
