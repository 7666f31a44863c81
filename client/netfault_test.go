package client_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"shoal/client"
	"shoal/internal/poll"
	"shoal/internal/testbin"
	"shoal/internal/toxiproxy"
)

// TestJobNetworkFaults runs whole wide jobs (ReduceByKey over Range, on
// two nodes of two workers each) with a real toxiproxy proxy on every
// link at once: the workers reach the driver's endpoint through one
// proxy, and everything reaches each node service through that node's
// proxy (its workers registering and committing, other nodes' readers
// fetching, the driver probing). Each case breaks the network in one way
// and requires the job to end right within a bounded time; a job that
// overruns its bound fails the test through its context, so nothing
// hangs.
func TestJobNetworkFaults(t *testing.T) {
	shoal := testbin.Shoal(t)
	tp := toxiproxy.Start(t)
	t.Run("latency", func(t *testing.T) { testJobLatency(t, shoal, tp) })
	t.Run("node-resets", func(t *testing.T) { testJobNodeResets(t, shoal, tp) })
	t.Run("node-unreachable", func(t *testing.T) { testJobNodeUnreachable(t, shoal, tp) })
	t.Run("nodes-unreachable-too-long", func(t *testing.T) { testJobNodesUnreachableTooLong(t, shoal, tp) })
}

// links are the proxies of a context whose every link goes through
// toxiproxy: driver, the one the workers dial the driver's endpoint by;
// nodes, by node index, the one everything dials that node by.
type links struct {
	driver *toxiproxy.Proxy
	nodes  []*toxiproxy.Proxy
}

// addrs are the nodes' proxies' addresses: the nodes' addresses to the
// cluster.
func (l *links) addrs() []string {
	var out []string
	for _, p := range l.nodes {
		out = append(out, p.Addr())
	}
	return out
}

// startProxiedContext starts a context of two nodes of two workers whose
// every link goes through a new proxy of tp. setup, if not nil, is called
// with each proxy as it is made, before anything connects through it.
func startProxiedContext(t *testing.T, shoal string, tp *toxiproxy.Server, setup func(*toxiproxy.Proxy)) (*client.Context, string, *links) {
	t.Helper()
	name := strings.NewReplacer("/", "-").Replace(t.Name())
	l := &links{}
	proxy := func(suffix, upstream string) *toxiproxy.Proxy {
		p := tp.Proxy(t, name+"-"+suffix, upstream)
		if setup != nil {
			setup(p)
		}
		return p
	}
	log := filepath.Join(t.TempDir(), "events.jsonl")
	c, err := client.NewContext(context.Background(), client.Options{
		Nodes: 2, WorkersPerNode: 2, HeartbeatTimeout: netHeartbeatTimeout,
		Binary: os.Args[0], NodeBinary: shoal, EventLog: log, Dir: t.TempDir(), WorkerStderr: os.Stderr,
		AdvertiseDriver: func(listen string) (string, error) {
			l.driver = proxy("driver", listen)
			return l.driver.Addr(), nil
		},
		AdvertiseNode: func(i int, listen string) (string, error) {
			if i != len(l.nodes) {
				return "", fmt.Errorf("node %d advertised after %d nodes", i, len(l.nodes))
			}
			l.nodes = append(l.nodes, proxy(fmt.Sprintf("node-%d", i), listen))
			return l.nodes[i].Addr(), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	// Everything the cluster knows of its nodes is the proxies' addresses.
	for i, n := range c.Local().Nodes() {
		if n.Addr != l.nodes[i].Addr() || n.Listen == n.Addr {
			t.Fatalf("node %d: address %s, listening on %s; want the proxy %s", i, n.Addr, n.Listen, l.nodes[i].Addr())
		}
	}
	return c, log, l
}

// jobResult is what a job run in the background returned, and how long
// it took.
type jobResult struct {
	got  map[int64]int64
	err  error
	took time.Duration
}

// collectAsync runs Collect of r in the background, bounded by bound: the
// job fails with the context's error if it runs longer.
func collectAsync(r *client.RDD[client.KV[int64, int64]], bound time.Duration) <-chan jobResult {
	done := make(chan jobResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), bound)
		defer cancel()
		start := time.Now()
		kvs, err := client.Collect(ctx, r)
		m := map[int64]int64{}
		for _, kv := range kvs {
			m[kv.Key] = kv.Value
		}
		done <- jobResult{got: m, err: err, took: time.Since(start)}
	}()
	return done
}

// runJob runs Collect of r within bound and checks its answer.
func runJob(t *testing.T, what string, r *client.RDD[client.KV[int64, int64]], want map[int64]int64, bound time.Duration) time.Duration {
	t.Helper()
	res := <-collectAsync(r, bound)
	checkJob(t, what, res, want, bound)
	return res.took
}

func checkJob(t *testing.T, what string, res jobResult, want map[int64]int64, bound time.Duration) {
	t.Helper()
	if res.err != nil {
		t.Fatalf("%s failed after %v (bound %v): %v", what, res.took, bound, res.err)
	}
	if !maps.Equal(res.got, want) {
		t.Fatalf("%s: sums %v, want %v", what, res.got, want)
	}
	t.Logf("%s: right answer in %v (bound %v)", what, res.took.Round(time.Millisecond), bound)
}

// eventsSince returns the events of the log from index from on of kind.
func eventsSince(t *testing.T, log string, from int, kind string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, ev := range allEvents(t, log)[from:] {
		if ev["event"] == kind {
			out = append(out, ev)
		}
	}
	return out
}

// awaitEvent polls the event log, from index from, until pred holds for
// an event or the job in done ends (its result is then handed back), for
// at most timeout.
func awaitEvent(t *testing.T, log string, from int, what string, timeout time.Duration, done <-chan jobResult, pred func(map[string]any) bool) (map[string]any, *jobResult) {
	t.Helper()
	var found map[string]any
	var ended *jobResult
	poll.WaitFor(t, timeout, what+" in the event log", func() bool {
		for _, ev := range allEvents(t, log)[from:] {
			if pred(ev) {
				found = ev
				return true
			}
		}
		select {
		case res := <-done:
			ended = &res
			return true
		default:
			return false
		}
	})
	return found, ended
}

const (
	netRecords = 20000
	// netHeartbeatTimeout is the contexts' HeartbeatTimeout: also how long
	// a stage waits with no usable worker (every node lost) before the
	// job fails.
	netHeartbeatTimeout = 5 * time.Second
	// jobBound is the hard stop of every job of these tests, through its
	// context: a job that runs longer fails the test instead of hanging
	// it. The cases assert tighter bounds on top.
	jobBound = 30 * time.Second
)

func netJob(c *client.Context, n int64) *client.RDD[client.KV[int64, int64]] {
	return client.ReduceByKey(client.Map(client.Range(c, 0, n, 8), mod10KV), addInt64, 4)
}

// Latency on every link, both ways: the job is slower, and right.
func testJobLatency(t *testing.T, shoal string, tp *toxiproxy.Server) {
	const latency = 20 * time.Millisecond
	c, log, l := startProxiedContext(t, shoal, tp, func(p *toxiproxy.Proxy) {
		for _, dir := range []string{"upstream", "downstream"} {
			p.AddToxic(t, "lat-"+dir, "latency", dir, map[string]any{"latency": latency.Milliseconds(), "jitter": 5})
		}
	})
	took := runJob(t, "the job with latency on every link", netJob(c, netRecords), sumsByMod10(netRecords), jobBound)
	if took >= 10*time.Second {
		t.Errorf("the job with %v of latency on every link took %v", latency, took)
	}
	// Two stages, one after the other; each task goes down to its worker
	// and its end comes up through the driver's proxy.
	if floor := 2 * 2 * (latency - 5*time.Millisecond); took < floor {
		t.Errorf("the job took %v, under %v: not through the proxies?", took, floor)
	}
	// Every task ran on a worker that knows its node by the node's proxy:
	// its commits, and the fetches of its outputs, went through it.
	for _, ev := range eventsOf(t, log, "task_end") {
		if !slices.Contains(l.addrs(), ev["node"].(string)) {
			t.Errorf("task on node %v, not one of the proxies %v", ev["node"], l.addrs())
		}
	}
	if n := len(eventsOf(t, log, "fetch_failed")) + len(eventsOf(t, log, "node_lost")); n != 0 {
		t.Errorf("%d fetch failures or lost nodes with latency alone", n)
	}
}

// Connection resets on every node's links, for resetWindow: the second
// job reads the first one's shuffle while every connection to a node is
// reset as soon as data flows. Its fetches fail and so do the driver's
// probes, so nodes are declared lost and their outputs forgotten; the
// recomputation's commits may fail too, and declare the other node lost.
// With every node lost the stage waits, probing them; once the resets
// stop, the lost nodes (whose workers are still connected) answer again
// and are taken back, and what was forgotten is recomputed.
func testJobNodeResets(t *testing.T, shoal string, tp *toxiproxy.Server) {
	const resetWindow = 2 * time.Second
	c, log, l := startProxiedContext(t, shoal, tp, nil)
	l.driver.AddToxic(t, "lat", "latency", "downstream", map[string]any{"latency": 10})
	sums := netJob(c, netRecords)
	want := sumsByMod10(netRecords)
	runJob(t, "the first job", sums, want, jobBound)

	mark := len(allEvents(t, log))
	for _, p := range l.nodes {
		p.AddToxic(t, "rst-down", "reset_peer", "downstream", map[string]any{"timeout": 0})
		p.AddToxic(t, "rst-up", "reset_peer", "upstream", map[string]any{"timeout": 0})
	}
	done := collectAsync(sums, jobBound)
	// The resets last resetWindow, however the job fares meanwhile: a
	// fault schedule, not a wait for the job.
	window := time.NewTimer(resetWindow)
	var res *jobResult
	select {
	case <-window.C:
	case r := <-done:
		window.Stop()
		res = &r
	}
	for _, p := range l.nodes {
		p.RemoveToxic(t, "rst-down")
		p.RemoveToxic(t, "rst-up")
	}
	if res == nil {
		r := <-done
		res = &r
	}
	checkJob(t, "the job under resets", *res, want, jobBound)
	// It did not sit out the wait of a stage with no usable worker: the
	// nodes were taken back as soon as they answered.
	if bound := resetWindow + netHeartbeatTimeout; res.took >= bound {
		t.Errorf("the job under resets took %v, not under %v (the resets, then a stage's wait for a usable worker)", res.took, bound)
	}

	ff := eventsSince(t, log, mark, "fetch_failed")
	lostNodes := eventsSince(t, log, mark, "node_lost")
	back := eventsSince(t, log, mark, "node_added")
	t.Logf("%d fetch failures, %d nodes lost, %d taken back", len(ff), len(lostNodes), len(back))
	if len(ff) == 0 || len(lostNodes) == 0 {
		t.Fatal("no fetch failure or no node lost while the nodes' connections were reset: the faults did not reach the job")
	}
	for _, ev := range lostNodes {
		if !slices.Contains(l.addrs(), ev["node"].(string)) {
			t.Errorf("node_lost %v names no node", ev)
		}
	}
	if len(lostNodes) == len(l.nodes) && len(back) == 0 {
		t.Errorf("every node was lost and none was taken back, yet the job ran: %v", lostNodes)
	}
	// The job recomputed what the lost nodes held.
	reruns := 0
	for _, ev := range eventsSince(t, log, mark, "task_start") {
		if ev["kind"] == "map" {
			reruns++
		}
	}
	if reruns == 0 {
		t.Error("no map task ran again after the nodes were lost")
	}
}

// A node unreachable (its proxy refuses connections and drops those it
// had) while a job runs, then back. The job's map tasks on that node's
// workers cannot commit: the driver probes the node, declares it lost
// (rather than count the failures against the tasks), they run on the
// other node, and the job finishes. When the node is back, the next job
// takes it back at its start, and recomputes what it held before (the
// node is fenced: its old outputs are never read).
func testJobNodeUnreachable(t *testing.T, shoal string, tp *toxiproxy.Server) {
	c, log, l := startProxiedContext(t, shoal, tp, nil)
	l.driver.AddToxic(t, "lat", "latency", "downstream", map[string]any{"latency": 10})
	first := netJob(c, netRecords)
	want := sumsByMod10(netRecords)
	runJob(t, "the first job", first, want, jobBound)

	mark := len(allEvents(t, log))
	victim := l.nodes[1]
	victim.SetEnabled(t, false)
	start := time.Now()
	const n2 = netRecords / 2
	done := collectAsync(netJob(c, n2), jobBound)
	lost, early := awaitEvent(t, log, mark, "node_lost of "+victim.Addr(), jobBound, done, func(ev map[string]any) bool {
		return ev["event"] == "node_lost" && ev["node"] == victim.Addr()
	})
	if early != nil {
		t.Fatalf("the job ended before node %s was lost (%v, %v): the fault did not reach it", victim.Addr(), early.err, early.took)
	}
	victim.SetEnabled(t, true)
	t.Logf("node %s unreachable for %v, until it was lost: %v", victim.Addr(), time.Since(start).Round(time.Millisecond), lost["reason"])
	if reason, _ := lost["reason"].(string); !strings.Contains(reason, "commit") || !strings.Contains(reason, "does not answer") {
		t.Errorf("node_lost reason %q: want a task whose commit failed and a probe that failed", reason)
	}
	res := <-done
	checkJob(t, "the job with a node unreachable", res, sumsByMod10(n2), jobBound)
	// The other node's workers took over at once: no stage waited for a
	// usable worker.
	if res.took >= netHeartbeatTimeout {
		t.Errorf("the job with a node unreachable took %v, not under %v", res.took, netHeartbeatTimeout)
	}

	// Back: the next job takes it back first thing, and the first job's
	// outputs on it, forgotten when it was lost, are recomputed.
	mark2 := len(allEvents(t, log))
	runJob(t, "the first job again, with the node back", first, want, jobBound)
	if back := eventsSince(t, log, mark2, "node_added"); len(back) != 1 || back[0]["node"] != victim.Addr() {
		t.Errorf("node_added since the node is back: %v; want one, of %s", back, victim.Addr())
	}
	if ff := eventsSince(t, log, mark2, "fetch_failed"); len(ff) != 0 {
		t.Errorf("fetch failures in the job after the node came back (its old outputs read?): %v", ff)
	}
	reruns := 0
	for _, ev := range eventsSince(t, log, mark2, "task_start") {
		if ev["kind"] == "map" {
			reruns++
		}
	}
	if reruns == 0 {
		t.Error("no map output of the first job was recomputed: the lost node's were used")
	}
}

// Every node unreachable for longer than a stage waits for a usable
// worker: the job fails, within that wait, with an error that names the
// nodes. Once they are reachable again the next job takes them back (their
// workers are still connected) and runs.
func testJobNodesUnreachableTooLong(t *testing.T, shoal string, tp *toxiproxy.Server) {
	c, log, l := startProxiedContext(t, shoal, tp, nil)
	for _, p := range l.nodes {
		p.SetEnabled(t, false)
	}
	res := <-collectAsync(netJob(c, netRecords), jobBound)
	if res.err == nil {
		t.Fatalf("the job succeeded in %v with every node unreachable", res.took)
	}
	t.Logf("the job with every node unreachable failed after %v: %v", res.took.Round(time.Millisecond), res.err)
	for _, addr := range l.addrs() {
		if !strings.Contains(res.err.Error(), addr) {
			t.Errorf("the error does not name node %s", addr)
		}
	}
	// The first commits give up after their retries (1.55 s), the nodes
	// are declared lost, then the stage waits for a usable worker for the
	// heartbeat timeout.
	if bound := netHeartbeatTimeout + 4*time.Second; res.took >= bound {
		t.Errorf("the job failed after %v, not within %v", res.took, bound)
	}

	mark := len(allEvents(t, log))
	for _, p := range l.nodes {
		p.SetEnabled(t, true)
	}
	runJob(t, "a job once the nodes are back", netJob(c, netRecords), sumsByMod10(netRecords), jobBound)
	if back := eventsSince(t, log, mark, "node_added"); len(back) != len(l.nodes) {
		t.Errorf("%d nodes taken back, want %d: %v", len(back), len(l.nodes), back)
	}
}
