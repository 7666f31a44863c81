package compute_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/compute"
	"shoal/internal/poll"
	"shoal/internal/testbin"
	"shoal/internal/toxiproxy"
)

// TestNetworkFaults puts a real toxiproxy between the workers and the
// driver's endpoint (the workers' SHOAL_DRIVER is the proxy) and breaks
// the network in the ways a real one breaks: latency, a black hole (data
// stops, connections stay open), connection resets, and the driver
// becoming unreachable. Every case ends within a bounded time.
func TestNetworkFaults(t *testing.T) {
	shoal := testbin.Shoal(t)
	tp := toxiproxy.Start(t)
	t.Run("latency", func(t *testing.T) { t.Parallel(); testLatency(t, shoal, tp) })
	t.Run("black-hole", func(t *testing.T) { t.Parallel(); testBlackHole(t, shoal, tp) })
	t.Run("reset", func(t *testing.T) { t.Parallel(); testReset(t, shoal, tp) })
	t.Run("unreachable", func(t *testing.T) { t.Parallel(); testUnreachable(t, shoal, tp) })
}

// syncBuffer collects the children's log, for the tests to search.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proxiedCluster is a cluster whose workers reach the endpoint through a
// toxiproxy proxy. Toxics may be set up, by setup, before the workers
// start.
type proxiedCluster struct {
	*cluster
	proxy *toxiproxy.Proxy
	logs  *syncBuffer // the workers' and nodes' stderr
}

func startProxiedCluster(t *testing.T, shoal string, tp *toxiproxy.Server, cfg clusterConfig, setup func(*toxiproxy.Proxy)) *proxiedCluster {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	ep, err := compute.NewEndpoint(compute.EndpointOptions{App: "app", HeartbeatTimeout: cfg.heartbeatTimeout, HeartbeatInterval: cfg.heartbeatInterval, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	name := strings.NewReplacer("/", "-").Replace(t.Name())
	proxy := tp.Proxy(t, name, ep.Addr())
	if setup != nil {
		setup(proxy)
	}
	logs := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	local, err := compute.StartLocal(ctx, compute.LocalOptions{
		Binary:            os.Args[0],
		NodeBinary:        shoal,
		AppToken:          ep.Token(),
		Nodes:             cfg.nodes,
		WorkersPerNode:    cfg.perNode,
		Slots:             2,
		Dir:               t.TempDir(),
		DriverAddr:        proxy.Addr(),
		App:               "app",
		HeartbeatInterval: cfg.heartbeatInterval,
		DriverTimeout:     cmp.Or(cfg.driverTimeout, cfg.heartbeatTimeout),
		Stderr:            logs,
		Logger:            logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := local.Close(); err != nil {
			t.Errorf("Local.Close: %v", err)
		}
		if t.Failed() {
			t.Logf("children's log:\n%s", logs.String())
		}
	})
	c := &cluster{t: t, ep: ep, local: local}
	for range cfg.nodes * cfg.perNode {
		c.await(20*time.Second, "WorkerAdded", func(ev compute.Event) bool { return ev.Kind == compute.WorkerAdded })
	}
	return &proxiedCluster{cluster: c, proxy: proxy, logs: logs}
}

// localWorker returns the launcher's view of worker id.
func (c *proxiedCluster) localWorker(id string) compute.LocalWorker {
	c.t.Helper()
	for _, w := range c.local.Workers() {
		if w.ID == id {
			return w
		}
	}
	c.t.Fatalf("no local worker %s", id)
	return compute.LocalWorker{}
}

// awaitExit waits until worker id's process has exited and been reaped,
// and checks that it said it lost its driver. It returns how long that
// took from start.
func (c *proxiedCluster) awaitExit(id string, start time.Time, timeout time.Duration) time.Duration {
	c.t.Helper()
	poll.WaitFor(c.t, timeout, "worker "+id+" exits on its own", func() bool { return c.localWorker(id).Exited })
	d := time.Since(start)
	if line := c.exitLine(id); line == "" {
		c.t.Errorf("worker %s exited without reporting %q", id, compute.ErrDriverLost)
	} else {
		c.t.Logf("%s", line)
	}
	return d
}

// exitLine returns the line in which worker id's process reported the
// error RunWorker returned ("worker: compute: lost the driver: worker
// ID, ..."), or "".
func (c *proxiedCluster) exitLine(id string) string {
	for line := range strings.Lines(c.logs.String()) {
		if strings.HasPrefix(line, "worker: "+compute.ErrDriverLost.Error()+": worker "+id+",") {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// Latency on both directions slows the protocol down but breaks nothing:
// workers connect and tasks round-trip with their results.
func testLatency(t *testing.T, shoal string, tp *toxiproxy.Server) {
	const latency = 100 * time.Millisecond
	began := time.Now()
	c := startProxiedCluster(t, shoal, tp, clusterConfig{nodes: 1, perNode: 2}, func(p *toxiproxy.Proxy) {
		p.AddToxic(t, "lat-down", "latency", "downstream", map[string]any{"latency": latency.Milliseconds()})
		p.AddToxic(t, "lat-up", "latency", "upstream", map[string]any{"latency": latency.Milliseconds()})
	})
	workers := c.ep.Workers()
	if len(workers) != 2 {
		t.Fatalf("workers: %v", workers)
	}
	for i, w := range workers {
		id := uint64(1 + i)
		start := time.Now()
		c.run(w.ID, id, "echo:through the proxy "+w.ID)
		u := c.end(id, 5*time.Second)
		rtt := time.Since(start)
		if u.GetState() != succeeded || string(u.GetResult()) != "through the proxy "+w.ID {
			t.Errorf("echo on %s: %v", w.ID, u)
		}
		// The task goes down and its updates come up through the proxy:
		// at least one latency each way.
		if rtt < 2*latency-10*time.Millisecond {
			t.Errorf("echo on %s round-tripped in %v, under 2×%v: not through the proxy?", w.ID, rtt, latency)
		}
		t.Logf("echo on %s round-tripped in %v", w.ID, rtt)
	}
	// Several tasks in flight at once on one worker, in both slots.
	w := workers[0].ID
	for id := uint64(10); id < 14; id++ {
		c.run(w, id, fmt.Sprintf("echo:%d", id))
	}
	for id := uint64(10); id < 14; id++ {
		if u := c.end(id, 5*time.Second); u.GetState() != succeeded || string(u.GetResult()) != fmt.Sprint(id) {
			t.Errorf("task %d: %v", id, u)
		}
	}
	if ws := c.ep.Workers(); len(ws) != 2 {
		t.Errorf("workers after the tasks: %v", ws)
	}
	if d := time.Since(began); d > 30*time.Second {
		t.Errorf("the latency case took %v", d)
	}
}

// A black hole: data stops in both directions but the connections stay
// open, as when a route disappears. Nothing breaks a socket, so each end
// must notice the other's silence: the driver through the worker's
// missed heartbeats (HeartbeatTimeout), the worker through the driver's
// (DriverTimeout). Both heartbeat every 200 ms. The worker's timeout is
// half a second longer, so that the driver's is seen first: with equal
// ones either end may give up first, and a worker that exits first shows
// the driver a closed stream, not missed heartbeats.
func testBlackHole(t *testing.T, shoal string, tp *toxiproxy.Server) {
	const (
		hbTimeout  = 1500 * time.Millisecond
		drvTimeout = hbTimeout + 500*time.Millisecond
		hbInterval = 200 * time.Millisecond
		// exitMargin covers what follows the worker's timeout: cancelling
		// its task, closing its clients, the process exiting and being
		// reaped, and the polling below.
		exitMargin = time.Second
	)
	c := startProxiedCluster(t, shoal, tp, clusterConfig{nodes: 1, perNode: 1, heartbeatTimeout: hbTimeout, driverTimeout: drvTimeout, heartbeatInterval: hbInterval}, nil)
	const victim = "w-0-0"
	c.run(victim, 1, "sleep:60000")
	c.update(1, 5*time.Second, running)

	start := time.Now()
	c.proxy.AddToxic(t, "hole-down", "timeout", "downstream", map[string]any{"timeout": 0})
	c.proxy.AddToxic(t, "hole-up", "timeout", "upstream", map[string]any{"timeout": 0})
	ev := c.lost(victim, hbTimeout+2*time.Second)
	d := time.Since(start)
	if !strings.Contains(ev.Reason, "heartbeat") {
		t.Errorf("reason %q does not mention heartbeats", ev.Reason)
	}
	if d < hbTimeout-hbInterval-100*time.Millisecond {
		t.Errorf("lost after %v, before the heartbeat timeout %v", d, hbTimeout)
	}
	t.Logf("black-holed worker lost after %v: %s", d, ev.Reason)
	if len(c.ep.Workers()) != 0 {
		t.Errorf("workers after the loss: %v", c.ep.Workers())
	}

	// The worker hears nothing from its driver either (the driver's end
	// of the stream is gone, but the reset never arrives, and the
	// driver's heartbeats stop): it must cancel its task and exit within
	// its driver timeout of the last message it read, which came at most
	// one heartbeat interval before the black hole.
	exit := c.awaitExit(victim, start, drvTimeout+exitMargin)
	t.Logf("black-holed worker exited %v after the black hole (driver timeout %v)", exit, drvTimeout)
	if exit < drvTimeout-hbInterval-100*time.Millisecond {
		t.Errorf("the worker exited %v after the black hole, before its driver timeout %v", exit, drvTimeout)
	}
	if line := c.exitLine(victim); !strings.Contains(line, "driver timeout") {
		t.Errorf("the worker's exit %q does not mention its driver timeout", line)
	}
	// Its task never reported a final state to the driver: the update
	// went into the hole, and the driver dropped the worker first.
	for _, ev := range c.backlog {
		if ev.Kind == compute.TaskUpdate && ev.Update.GetTaskId() == 1 && ev.Update.GetState() != running {
			t.Errorf("task 1 reported %v after its worker was lost", ev.Update)
		}
	}
}

// A connection reset (RST) on the worker's connection: both ends see a
// broken stream at once; no timeout is involved.
func testReset(t *testing.T, shoal string, tp *toxiproxy.Server) {
	c := startProxiedCluster(t, shoal, tp, clusterConfig{nodes: 1, perNode: 1, heartbeatInterval: 200 * time.Millisecond}, nil)
	const victim = "w-0-0"
	c.run(victim, 1, "sleep:60000")
	c.update(1, 5*time.Second, running)

	// reset_peer fires on the next data through the stream: upstream,
	// that is the next heartbeat (every 200 ms); the default heartbeat
	// timeout (10 s) is far away, so a loss within 2 s is the reset.
	start := time.Now()
	c.proxy.AddToxic(t, "rst", "reset_peer", "upstream", map[string]any{"timeout": 0})
	ev := c.lost(victim, 2*time.Second)
	d := time.Since(start)
	if d >= 2*time.Second || strings.Contains(ev.Reason, "heartbeat") {
		t.Errorf("lost after %v (%q), want a broken stream within 2 s", d, ev.Reason)
	}
	t.Logf("reset worker lost after %v: %s", d, ev.Reason)
	exit := c.awaitExit(victim, start, 5*time.Second)
	t.Logf("reset worker exited %v after the reset", exit)
}

// The proxy disabled: the driver becomes unreachable, and the proxy drops
// the connections it had. The connected worker is lost and exits; when
// the driver is reachable again it does not come back (a worker's stream
// is its life: no reconnection), but a new worker can connect, as the
// client's scheduler would start one through Local.AddWorker.
func testUnreachable(t *testing.T, shoal string, tp *toxiproxy.Server) {
	const driverTimeout = 2 * time.Second
	c := startProxiedCluster(t, shoal, tp, clusterConfig{nodes: 1, perNode: 1, heartbeatInterval: 200 * time.Millisecond, driverTimeout: driverTimeout}, nil)
	const victim = "w-0-0"
	c.run(victim, 1, "sleep:60000")
	c.update(1, 5*time.Second, running)

	start := time.Now()
	c.proxy.SetEnabled(t, false)
	ev := c.lost(victim, 2*time.Second)
	t.Logf("worker lost %v after the driver became unreachable: %s", time.Since(start), ev.Reason)
	exit := c.awaitExit(victim, start, 5*time.Second)
	t.Logf("worker exited %v after the driver became unreachable", exit)

	// While it is unreachable, a new worker cannot join: it waits for the
	// driver for its driver timeout (a moment's outage is ridden out), then
	// gives up and exits, without a WorkerAdded.
	early, err := c.local.AddWorker(0)
	if err != nil {
		t.Fatal(err)
	}
	if waited := c.awaitExit(early.ID, time.Now(), driverTimeout+5*time.Second); waited < driverTimeout {
		t.Errorf("a worker that could not reach its driver exited after %v, before its driver timeout %v", waited, driverTimeout)
	}

	c.proxy.SetEnabled(t, true)
	nw, err := c.local.AddWorker(0)
	if err != nil {
		t.Fatal(err)
	}
	c.await(10*time.Second, "WorkerAdded of the replacement", func(ev compute.Event) bool {
		return ev.Kind == compute.WorkerAdded && ev.Worker.ID == nw.ID
	})
	c.run(nw.ID, 2, "echo:back")
	if u := c.end(2, 5*time.Second); u.GetState() != succeeded || string(u.GetResult()) != "back" {
		t.Errorf("task on the replacement: %v", u)
	}
	for _, ev := range c.backlog {
		if ev.Kind == compute.WorkerAdded && (ev.Worker.ID == victim || ev.Worker.ID == early.ID) {
			t.Errorf("%s came back: %v", ev.Worker.ID, ev)
		}
	}
	if ws := c.ep.Workers(); len(ws) != 1 || ws[0].ID != nw.ID {
		t.Errorf("workers: %v, want only %s", ws, nw.ID)
	}
}
