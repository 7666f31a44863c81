package compute_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/blockstore"
	"shoal/compute"
	"shoal/compute/computepb"
	"shoal/internal/poll"
	"shoal/internal/testbin"
	"shoal/shuffleservice/nodeclient"
)

// cluster is a driver endpoint and a Local cluster of real processes: node
// services run the shoal binary, workers run this test binary (TestMain).
type cluster struct {
	t       *testing.T
	ep      *compute.Endpoint
	local   *compute.Local
	backlog []compute.Event // events received but not yet awaited
}

// clusterConfig shapes a test cluster. Heartbeats are symmetric, as
// client.NewContext sets them up: heartbeatTimeout is the endpoint's
// HeartbeatTimeout and the workers' DriverTimeout (unless driverTimeout
// is set), heartbeatInterval the interval at which each side sends
// heartbeats (0: the defaults).
type clusterConfig struct {
	nodes, perNode    int
	heartbeatTimeout  time.Duration
	driverTimeout     time.Duration
	heartbeatInterval time.Duration
	serveShuffle      bool
	cacheBytes        int64
}

func startCluster(t *testing.T, shoal string, cfg clusterConfig) *cluster {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	ep, err := compute.NewEndpoint(compute.EndpointOptions{App: "app", HeartbeatTimeout: cfg.heartbeatTimeout, HeartbeatInterval: cfg.heartbeatInterval, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
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
		DriverAddr:        ep.Addr(),
		App:               "app",
		HeartbeatInterval: cfg.heartbeatInterval,
		DriverTimeout:     cmp.Or(cfg.driverTimeout, cfg.heartbeatTimeout),
		ServeShuffle:      cfg.serveShuffle,
		CacheBytes:        cfg.cacheBytes,
		Stderr:            t.Output(),
		Logger:            logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := local.Close(); err != nil {
			t.Errorf("Local.Close: %v", err)
		}
	})
	c := &cluster{t: t, ep: ep, local: local}
	for range cfg.nodes * cfg.perNode {
		c.await(20*time.Second, "WorkerAdded", func(ev compute.Event) bool { return ev.Kind == compute.WorkerAdded })
	}
	return c
}

// await returns the first event that satisfies pred, failing the test if
// none arrives within timeout. Other events are kept for later awaits.
func (c *cluster) await(timeout time.Duration, what string, pred func(compute.Event) bool) compute.Event {
	c.t.Helper()
	for i, ev := range c.backlog {
		if pred(ev) {
			c.backlog = append(c.backlog[:i], c.backlog[i+1:]...)
			return ev
		}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-c.ep.Events():
			if !ok {
				c.t.Fatalf("events closed while waiting for %s; unclaimed: %v", what, c.backlog)
			}
			if pred(ev) {
				return ev
			}
			c.backlog = append(c.backlog, ev)
		case <-timer.C:
			c.t.Fatalf("no %s within %v; unclaimed events: %v", what, timeout, c.backlog)
		}
	}
}

// run sends a task and returns when the endpoint has queued it.
func (c *cluster) run(worker string, id uint64, plan string) {
	c.t.Helper()
	if err := c.ep.Run(worker, &computepb.RunTask{TaskId: id, Kind: "result", Plan: []byte(plan)}); err != nil {
		c.t.Fatalf("Run task %d on %s: %v", id, worker, err)
	}
}

// update waits for task id's update in one of states.
func (c *cluster) update(id uint64, timeout time.Duration, states ...computepb.TaskState) *computepb.TaskUpdate {
	c.t.Helper()
	ev := c.await(timeout, fmt.Sprintf("task %d in %v", id, states), func(ev compute.Event) bool {
		if ev.Kind != compute.TaskUpdate || ev.Update.GetTaskId() != id {
			return false
		}
		for _, s := range states {
			if ev.Update.GetState() == s {
				return true
			}
		}
		return false
	})
	return ev.Update
}

// end waits for task id's final update.
func (c *cluster) end(id uint64, timeout time.Duration) *computepb.TaskUpdate {
	c.t.Helper()
	return c.update(id, timeout, computepb.TaskState_TASK_STATE_SUCCEEDED, computepb.TaskState_TASK_STATE_FAILED, computepb.TaskState_TASK_STATE_KILLED)
}

func (c *cluster) lost(worker string, timeout time.Duration) compute.Event {
	c.t.Helper()
	return c.await(timeout, "WorkerLost of "+worker, func(ev compute.Event) bool {
		return ev.Kind == compute.WorkerLost && ev.Worker.ID == worker
	})
}

func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

const (
	running   = computepb.TaskState_TASK_STATE_RUNNING
	succeeded = computepb.TaskState_TASK_STATE_SUCCEEDED
	failed    = computepb.TaskState_TASK_STATE_FAILED
	killed    = computepb.TaskState_TASK_STATE_KILLED
)

// TestCluster runs the endpoint, the workers and the launcher as real
// processes. The shoal binary (for the node services) is built once.
func TestCluster(t *testing.T) {
	shoal := testbin.Shoal(t)
	t.Run("tasks", func(t *testing.T) { t.Parallel(); testTasks(t, shoal) })
	t.Run("worker-killed", func(t *testing.T) { t.Parallel(); testWorkerKilled(t, shoal) })
	t.Run("worker-hung", func(t *testing.T) { t.Parallel(); testWorkerHung(t, shoal) })
	t.Run("driver-gone", func(t *testing.T) { t.Parallel(); testDriverGone(t, shoal) })
	t.Run("shutdown", func(t *testing.T) { t.Parallel(); testShutdown(t, shoal) })
	t.Run("close-reaps", func(t *testing.T) { t.Parallel(); testCloseReaps(t, shoal) })
	t.Run("shuffle-service=on", func(t *testing.T) { t.Parallel(); testShuffleOwner(t, shoal, false) })
	t.Run("shuffle-service=off", func(t *testing.T) { t.Parallel(); testShuffleOwner(t, shoal, true) })
	t.Run("cache-bytes", func(t *testing.T) { t.Parallel(); testCacheBytes(t, shoal) })
}

// testShuffleOwner writes a map output on each of two workers, reads both
// from one of them, kills the other and reads again. With the shuffle
// service on, the node service holds the outputs and they survive the
// kill; off (serve), each worker serves its own, from its own address,
// and the killed worker's output is gone: the read fails with a fetch
// failure naming that address, and its files are removed.
func testShuffleOwner(t *testing.T, shoal string, serve bool) {
	c := startCluster(t, shoal, clusterConfig{nodes: 1, perNode: 2, serveShuffle: serve})
	nodeDir := c.local.Nodes()[0].Dir
	info := map[string]compute.WorkerInfo{}
	for _, w := range c.ep.Workers() {
		info[w.ID] = w
	}
	victim, survivor := info["w-0-0"], info["w-0-1"]
	for _, w := range info {
		if own := w.ShuffleAddr != w.Node; own != serve || w.ShuffleAddr == "" {
			t.Fatalf("worker %s: node %s, shuffle address %q; want its own: %v", w.ID, w.Node, w.ShuffleAddr, serve)
		}
	}
	if serve && victim.ShuffleAddr == survivor.ShuffleAddr {
		t.Fatalf("both workers serve their outputs at %s", victim.ShuffleAddr)
	}

	in := &computepb.ShuffleInput{Shuffle: 1}
	var victimData string
	for i, w := range []compute.WorkerInfo{victim, survivor} {
		id := uint64(1 + i)
		if err := c.ep.Run(w.ID, &computepb.RunTask{TaskId: id, Kind: "map", Partition: uint32(i), Plan: []byte("write:10")}); err != nil {
			t.Fatal(err)
		}
		u := c.end(id, 10*time.Second)
		if u.GetState() != succeeded || u.GetMapOutputNode() != w.ShuffleAddr {
			t.Fatalf("write on %s: %v; want it to succeed with map_output_node %s", w.ID, u, w.ShuffleAddr)
		}
		ownDir := filepath.Join(nodeDir, "worker-shuffle", "app", w.ID) + string(filepath.Separator)
		if data := string(u.GetResult()); strings.HasPrefix(data, ownDir) != serve {
			t.Fatalf("map output of %s in %s; want it under %s: %v", w.ID, data, ownDir, serve)
		}
		if i == 0 {
			victimData = string(u.GetResult())
		}
		in.Maps = append(in.Maps, &computepb.MapLocation{Node: u.GetMapOutputNode(), Output: u.GetMapOutput()})
	}
	read := func(id uint64) *computepb.TaskUpdate {
		t.Helper()
		rt := &computepb.RunTask{TaskId: id, Kind: "result", Plan: []byte("read"), Inputs: []*computepb.ShuffleInput{in}}
		if err := c.ep.Run(survivor.ID, rt); err != nil {
			t.Fatal(err)
		}
		return c.end(id, 10*time.Second)
	}
	const all = "20 records from w-0-0,w-0-1"
	if u := read(3); u.GetState() != succeeded || string(u.GetResult()) != all {
		t.Fatalf("read before the kill: %v; want %q", u, all)
	}

	if err := c.local.KillWorker(victim.ID); err != nil {
		t.Fatal(err)
	}
	c.lost(victim.ID, 5*time.Second)
	u := read(4)
	if !serve {
		if u.GetState() != succeeded || string(u.GetResult()) != all {
			t.Fatalf("read after the kill: %v; want %q: the node service holds both outputs", u, all)
		}
		return
	}
	if ff := u.GetFetchFailure(); u.GetState() != failed || ff == nil || ff.GetMap() != 0 || ff.GetNode() != victim.ShuffleAddr {
		t.Fatalf("read after the kill: %v; want a fetch failure of map 0 at %s", u, victim.ShuffleAddr)
	}
	if _, err := os.Stat(victimData); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the killed worker's map output %s: %v; want it removed", victimData, err)
	}
}

func testTasks(t *testing.T, shoal string) {
	c := startCluster(t, shoal, clusterConfig{nodes: 2, perNode: 2})
	workers := c.ep.Workers()
	nodes := c.local.Nodes()
	if len(workers) != 4 || len(nodes) != 2 {
		t.Fatalf("%d workers on %d nodes, want 4 on 2", len(workers), len(nodes))
	}
	perNode := map[string]int{}
	for _, w := range workers {
		perNode[w.Node]++
		if w.Slots != 2 || w.Pid <= 0 {
			t.Errorf("worker %+v", w)
		}
	}
	for _, n := range nodes {
		if perNode[n.Addr] != 2 {
			t.Errorf("node %d (%s) has %d workers, want 2", n.Index, n.Addr, perNode[n.Addr])
		}
	}

	// Results round-trip, on every worker.
	for i, w := range workers {
		c.run(w.ID, uint64(100+i), "echo:hello "+w.ID)
		c.run(w.ID, uint64(200+i), "node")
	}
	for i, w := range workers {
		if u := c.update(uint64(100+i), 10*time.Second, running); u.GetState() != running {
			t.Fatalf("task %d: %v", 100+i, u)
		}
		u := c.end(uint64(100+i), 10*time.Second)
		if u.GetState() != succeeded || string(u.GetResult()) != "hello "+w.ID {
			t.Errorf("echo on %s: %v", w.ID, u)
		}
		u = c.end(uint64(200+i), 10*time.Second)
		if u.GetState() != succeeded || string(u.GetResult()) != w.Node {
			t.Errorf("node on %s: %v, want result %s", w.ID, u, w.Node)
		}
	}

	w := workers[0].ID
	c.run(w, 1, "fail:broken input")
	if u := c.end(1, 10*time.Second); u.GetState() != failed || !u.GetUserError() || u.GetError() != "broken input" {
		t.Errorf("failing task: %v", u)
	}
	c.run(w, 2, "panic:kaboom")
	if u := c.end(2, 10*time.Second); u.GetState() != failed || !u.GetUserError() ||
		!strings.HasPrefix(u.GetError(), "panic: kaboom\n") || !strings.Contains(u.GetError(), "goroutine ") ||
		!strings.Contains(u.GetError(), "testRunner.Run") {
		t.Errorf("panicking task: %v", u)
	}
	c.run(w, 3, "nonsense")
	if u := c.end(3, 10*time.Second); u.GetState() != failed || u.GetUserError() {
		t.Errorf("task with an infrastructure error: %v", u)
	}

	// A long task is killed promptly.
	c.run(w, 4, "sleep:60000")
	c.update(4, 10*time.Second, running)
	start := time.Now()
	if err := c.ep.Kill(w, 4); err != nil {
		t.Fatal(err)
	}
	if u := c.end(4, 5*time.Second); u.GetState() != killed || u.GetUserError() {
		t.Errorf("killed task: %v", u)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("kill took %v", d)
	}
	if err := c.ep.Kill(w, 4); err != nil { // finished: ignored by the worker
		t.Errorf("second kill: %v", err)
	}

	// Tasks beyond the slots queue: with 2 slots, the third of three
	// 300 ms tasks starts only once one of the first two has ended.
	sent := time.Now()
	for id := uint64(10); id < 13; id++ {
		c.run(w, id, "sleep:300")
	}
	c.update(12, 10*time.Second, running)
	if d := time.Since(sent); d < 300*time.Millisecond {
		t.Errorf("third task started after %v with 2 slots busy for 300 ms", d)
	}
	for id := uint64(10); id < 13; id++ {
		if u := c.end(id, 10*time.Second); u.GetState() != succeeded || u.GetDurationMs() < 300 {
			t.Errorf("sleep task %d: %v", id, u)
		}
	}

	if err := c.ep.Run("no-such-worker", &computepb.RunTask{TaskId: 9}); !errors.Is(err, compute.ErrWorkerGone) {
		t.Errorf("Run on an unknown worker: %v", err)
	}

	// The Runner's report comes back as it was sent, unread by compute.
	report := "\x00opaque\xff"
	c.run(w, 20, "report:"+report)
	if u := c.end(20, 10*time.Second); u.GetState() != succeeded || string(u.GetReport()) != report {
		t.Errorf("task with a report: %v, want report %q", u, report)
	}

	// Messages reach the Runner in order, before a task sent after them;
	// one it refuses is dropped and the worker goes on.
	for _, m := range []string{"first", "refuse", "second"} {
		if err := c.ep.Message(w, []byte(m)); err != nil {
			t.Fatalf("Message %q: %v", m, err)
		}
	}
	c.run(w, 21, "messages")
	if u := c.end(21, 10*time.Second); u.GetState() != succeeded || string(u.GetResult()) != "first,second" {
		t.Errorf("messages read by the Runner: %v, want result %q", u, "first,second")
	}
	if err := c.ep.Message("no-such-worker", []byte("x")); !errors.Is(err, compute.ErrWorkerGone) {
		t.Errorf("Message to an unknown worker: %v", err)
	}
}

func testWorkerKilled(t *testing.T, shoal string) {
	c := startCluster(t, shoal, clusterConfig{nodes: 1, perNode: 2})
	const victim = "w-0-0"
	c.run(victim, 1, "sleep:60000")
	c.update(1, 10*time.Second, running)
	start := time.Now()
	if err := c.local.KillWorker(victim); err != nil {
		t.Fatal(err)
	}
	ev := c.lost(victim, time.Second)
	if d := time.Since(start); d >= time.Second {
		t.Errorf("WorkerLost %v after SIGKILL, want < 1s", d)
	}
	t.Logf("worker lost after %v: %s", time.Since(start), ev.Reason)
	if err := c.ep.Run(victim, &computepb.RunTask{TaskId: 2}); !errors.Is(err, compute.ErrWorkerGone) {
		t.Errorf("Run on a lost worker: %v", err)
	}
	if ws := c.ep.Workers(); len(ws) != 1 || ws[0].ID != "w-0-1" {
		t.Errorf("workers after the kill: %v", ws)
	}
	// The survivor still works, and a replacement joins.
	c.run("w-0-1", 3, "echo:ok")
	if u := c.end(3, 10*time.Second); u.GetState() != succeeded {
		t.Errorf("task on the survivor: %v", u)
	}
	nw, err := c.local.AddWorker(0)
	if err != nil {
		t.Fatal(err)
	}
	c.await(10*time.Second, "WorkerAdded of the replacement", func(ev compute.Event) bool {
		return ev.Kind == compute.WorkerAdded && ev.Worker.ID == nw.ID && ev.Worker.Pid == nw.Pid
	})
}

func testWorkerHung(t *testing.T, shoal string) {
	const timeout = time.Second
	c := startCluster(t, shoal, clusterConfig{nodes: 1, perNode: 2, heartbeatTimeout: timeout, heartbeatInterval: 100 * time.Millisecond})
	const victim = "w-0-0"
	t.Cleanup(func() { c.local.KillWorker(victim) }) // SIGTERM does not reach a stopped process
	// The worker may stop before its RUNNING update leaves, so time from
	// the task's start: its last message was at most one heartbeat
	// interval before.
	start := time.Now()
	c.run(victim, 1, "hang")
	ev := c.lost(victim, 3*timeout)
	d := time.Since(start)
	if !strings.Contains(ev.Reason, "heartbeat") {
		t.Errorf("reason %q does not mention heartbeats", ev.Reason)
	}
	if d < timeout-200*time.Millisecond {
		t.Errorf("hung worker lost after %v, before the heartbeat timeout %v", d, timeout)
	}
	t.Logf("hung worker lost after %v: %s", d, ev.Reason)
	// The healthy worker, heartbeating every 100 ms, is not lost.
	if ws := c.ep.Workers(); len(ws) != 1 || ws[0].ID != "w-0-1" {
		t.Errorf("workers: %v", ws)
	}
}

func testDriverGone(t *testing.T, shoal string) {
	c := startCluster(t, shoal, clusterConfig{nodes: 1, perNode: 2})
	c.run("w-0-0", 1, "sleep:60000")
	c.update(1, 10*time.Second, running)
	if err := c.ep.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.ep.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Each worker exits on its own and its launcher reaps it (Exited is
	// set once the reaping goroutine has cleaned up after Wait).
	poll.WaitFor(t, 10*time.Second, "every worker exits and is reaped when its driver is gone", func() bool {
		for _, w := range c.local.Workers() {
			if !w.Exited || !processGone(w.Pid) {
				return false
			}
		}
		return true
	})
	if err := c.ep.Run("w-0-1", &computepb.RunTask{}); !errors.Is(err, compute.ErrClosed) {
		t.Errorf("Run after Close: %v", err)
	}
}

func testShutdown(t *testing.T, shoal string) {
	c := startCluster(t, shoal, clusterConfig{nodes: 1, perNode: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ep.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"w-0-0", "w-0-1"} {
		if ev := c.lost(id, time.Second); !strings.Contains(ev.Reason, "shut down") {
			t.Errorf("%s lost: %q", id, ev.Reason)
		}
	}
	for _, w := range c.local.Workers() {
		poll.WaitFor(t, 10*time.Second, "worker "+w.ID+" exits after Shutdown", func() bool { return processGone(w.Pid) })
	}
}

func testCloseReaps(t *testing.T, shoal string) {
	c := startCluster(t, shoal, clusterConfig{nodes: 2, perNode: 2})
	var pids []int
	for _, n := range c.local.Nodes() {
		pids = append(pids, n.Pid)
	}
	for _, w := range c.local.Workers() {
		pids = append(pids, w.Pid)
	}
	if err := c.local.KillNode(1); err != nil {
		t.Fatal(err)
	}
	if err := c.local.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.local.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, pid := range pids {
		if !processGone(pid) {
			t.Errorf("pid %d still exists after Close", pid)
		}
	}
	if _, err := c.local.AddWorker(0); err == nil {
		t.Error("AddWorker after Close succeeded")
	}
}

// testCacheBytes: LocalOptions.CacheBytes reaches every node as
// --cache-bytes, at its start and at RestartNode, and a node restarted
// on its directory serves the disk blocks it held.
func testCacheBytes(t *testing.T, shoal string) {
	const cache = 3 << 20
	c := startCluster(t, shoal, clusterConfig{nodes: 1, perNode: 1, cacheBytes: cache})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	node := func() *nodeclient.Client {
		t.Helper()
		cl, err := nodeclient.Dial(c.local.Nodes()[0].Addr, nodeclient.WithCredentials(c.local.Credentials()), nodeclient.WithAppToken(c.ep.Token()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		st, err := cl.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.GetBlocks().GetMemoryLimit(); got != cache {
			t.Fatalf("node %s: block memory limit %d, want CacheBytes %d", cl.Addr(), got, cache)
		}
		return cl
	}
	id := blockstore.BlockID{App: "app", RDD: 1, Partition: 0}
	data := []byte("a cached partition")
	if _, _, err := node().PutBlock(ctx, id, blockstore.DiskOnly, 0, data); err != nil {
		t.Fatal(err)
	}
	if err := c.local.KillNode(0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.local.RestartNode(ctx, 0); err != nil {
		t.Fatal(err)
	}
	got, level, found, err := node().GetBlock(ctx, id)
	if err != nil || !found || level != blockstore.DiskOnly || string(got) != string(data) {
		t.Fatalf("block after RestartNode: %q at %v, found %v, err %v", got, level, found, err)
	}
}
