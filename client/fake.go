package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"shoal/blockstore"
	"shoal/compute"
	"shoal/compute/computepb"
	"shoal/shuffleservice/shufflepb"
)

// fakeCluster is an in-memory cluster, the fake of all three interfaces
// the scheduler talks to (cluster.go): it is the taskEndpoint, whose
// workers answer each task at once as its Behave says; the cluster,
// whose nodes and workers are names; and the nodeService, whose nodes
// answer probes unless they are down and keep blocks in maps. It lets the
// failure table run as data-driven cases in milliseconds, without
// processes (failure_table_test.go). Every method is safe for concurrent
// use; none blocks.
type fakeCluster struct {
	events chan compute.Event

	mu        sync.Mutex
	nodes     []compute.NodeInfo
	workers   map[string]compute.WorkerInfo // connected
	slots     int
	perNode   int
	nextID    int
	down      map[string]bool // nodes that do not answer
	cutOff    map[string]int  // nodes that answer no probe for this many more probes
	blocks    map[string][]byte
	runs      int      // tasks run
	killed    []string // workers KillWorker was asked to kill
	added     []string // workers AddWorker started
	restarted []int    // nodes RestartNode restarted
	holdGets  bool     // GetBlock waits until its context ends
	gets      chan string

	// Behave decides what a worker does with a task: nil means it
	// succeeds. It is called under the fake's lock: it must not call the
	// fake's methods, only those of the fakeRun it is given.
	Behave func(r *fakeRun) fakeOutcome
}

// fakeRun is a task a fake worker was given, and what its Behave may do
// to the cluster meanwhile.
type fakeRun struct {
	f      *fakeCluster
	Worker compute.WorkerInfo
	Task   *computepb.RunTask
}

// Down reports whether the node at addr is down.
func (r *fakeRun) Down(addr string) bool { return r.f.down[addr] || r.f.cutOff[addr] > 0 }

// KillNode takes node i down with its workers.
func (r *fakeRun) KillNode(i int) { r.f.killNode(i) }

// CutOff makes the node at addr answer none of the next probes probes,
// its workers staying connected: a node cut off from the driver for a
// while.
func (r *fakeRun) CutOff(addr string, probes int) { r.f.cutOff[addr] = probes }

// fakeOutcome is what a fake worker does with a task.
type fakeOutcome struct {
	// Lose: the worker is lost with the task (killed, or hung until the
	// endpoint's heartbeat timeout), for Reason.
	Lose   bool
	Reason string
	// Err fails the task with this error; UserError says it is the
	// user's code's.
	Err       string
	UserError bool
	// FetchFailure fails the task on a fetch failure.
	FetchFailure *computepb.FetchFailure
	// ResultBlock: a result task's result is stored in its node as a
	// block, for the driver to fetch.
	ResultBlock bool
}

const fakeEventBuffer = 1 << 16

// fakeApp is the application a fakeCluster runs: a Context on it must be
// named so (result blocks are stored under it).
const fakeApp = "fake"

// newFakeCluster makes nodes node services with perNode workers of slots
// slots each; the workers' WorkerAdded events are queued.
func newFakeCluster(nodes, perNode, slots int) *fakeCluster {
	f := &fakeCluster{
		events: make(chan compute.Event, fakeEventBuffer), workers: map[string]compute.WorkerInfo{},
		slots: slots, perNode: perNode, down: map[string]bool{}, cutOff: map[string]int{}, blocks: map[string][]byte{},
	}
	for i := range nodes {
		f.nodes = append(f.nodes, compute.NodeInfo{Index: i, Addr: fmt.Sprintf("node-%d", i), Pid: 1000 + i})
		for range perNode {
			f.startWorker(i)
		}
	}
	return f
}

// startWorker starts a worker on node i and queues its arrival.
func (f *fakeCluster) startWorker(i int) compute.LocalWorker {
	id := fmt.Sprintf("w-%d-%d", i, f.nextID)
	f.nextID++
	addr := f.nodes[i].Addr
	w := compute.WorkerInfo{ID: id, Node: addr, ShuffleAddr: addr, Pid: 2000 + f.nextID, Slots: f.slots}
	f.workers[id] = w
	f.events <- compute.Event{Kind: compute.WorkerAdded, Worker: w}
	return compute.LocalWorker{ID: id, Node: i, Pid: w.Pid}
}

// lose disconnects a worker and queues its loss.
func (f *fakeCluster) lose(id, reason string) {
	if w, ok := f.workers[id]; ok {
		delete(f.workers, id)
		f.events <- compute.Event{Kind: compute.WorkerLost, Worker: w, Reason: reason}
	}
}

// KillNode takes node i down: it answers no probe, and its workers are
// lost with it.
func (f *fakeCluster) KillNode(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.killNode(i)
}

func (f *fakeCluster) killNode(i int) {
	addr := f.nodes[i].Addr
	f.down[addr] = true
	for id, w := range f.workers {
		if w.Node == addr {
			f.lose(id, "the stream broke")
		}
	}
}

// Counts returns how many tasks were run, and the workers killed and
// added and the nodes restarted through the cluster interface.
func (f *fakeCluster) Counts() (runs int, killed, added []string, restarted []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.runs, append([]string(nil), f.killed...), append([]string(nil), f.added...), append([]int(nil), f.restarted...)
}

// The taskEndpoint.

func (f *fakeCluster) Events() <-chan compute.Event { return f.events }

func (f *fakeCluster) Run(worker string, t *computepb.RunTask) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.workers[worker]
	if !ok {
		return fmt.Errorf("%w: %q", compute.ErrWorkerGone, worker)
	}
	f.runs++
	var out fakeOutcome
	if f.Behave != nil {
		out = f.Behave(&fakeRun{f: f, Worker: w, Task: t})
	}
	u := &computepb.TaskUpdate{TaskId: t.TaskId, State: computepb.TaskState_TASK_STATE_SUCCEEDED}
	switch _, connected := f.workers[worker]; {
	case !connected: // lost meanwhile (its node was killed)
		return nil
	case out.Lose:
		f.lose(worker, out.Reason)
		return nil
	case out.FetchFailure != nil:
		u.State, u.Error, u.FetchFailure = computepb.TaskState_TASK_STATE_FAILED, "fetch failed: "+out.FetchFailure.Reason, out.FetchFailure
	case out.Err != "":
		u.State, u.Error, u.UserError = computepb.TaskState_TASK_STATE_FAILED, out.Err, out.UserError
	case t.Kind == "map":
		u.MapOutput = &shufflepb.MapOutput{Shuffle: t.OutputShuffle, Map: t.Partition, Attempt: t.Attempt, Epoch: t.Epoch, Lengths: []uint64{1, 1, 1, 1}}
		u.MapOutputNode = w.ShuffleAddr
	case out.ResultBlock:
		id := blockstore.BlockID{App: fakeApp, RDD: resultsRDD, Partition: int(t.TaskId)}
		f.blocks[w.Node+"/"+id.String()] = binary.BigEndian.AppendUint64(nil, 1)
		u.ResultNode, u.Metrics = w.Node, map[string]int64{resultBlockMetric: 8}
	default:
		u.Result = binary.BigEndian.AppendUint64(nil, 1) // a count of 1 per partition
	}
	f.events <- compute.Event{Kind: compute.TaskUpdate, Worker: w, Update: u}
	return nil
}

func (f *fakeCluster) Kill(worker string, task uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.workers[worker]; !ok {
		return compute.ErrWorkerGone
	}
	return nil // its task has answered already
}

func (f *fakeCluster) Message(worker string, payload []byte) error { return nil }

// The cluster.

func (f *fakeCluster) Nodes() []compute.NodeInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]compute.NodeInfo(nil), f.nodes...)
}

func (f *fakeCluster) AddWorker(i int) (compute.LocalWorker, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[f.nodes[i].Addr] {
		return compute.LocalWorker{}, fmt.Errorf("fake: node %d is down", i)
	}
	w := f.startWorker(i)
	f.added = append(f.added, w.ID)
	return w, nil
}

func (f *fakeCluster) KillWorker(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.killed = append(f.killed, id)
	f.lose(id, "killed")
	return nil
}

// Failures: the fake's nodes never give up on their workers.
func (f *fakeCluster) Failures() <-chan error { return nil }

// RestartNode brings node i back at a new address with new workers.
func (f *fakeCluster) RestartNode(ctx context.Context, i int) (compute.NodeInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := &f.nodes[i]
	n.Addr, n.Pid = fmt.Sprintf("node-%d-r%d", i, len(f.restarted)+1), n.Pid+100
	f.restarted = append(f.restarted, i)
	for range f.perNode {
		f.startWorker(i)
	}
	return *n, nil
}

// The nodeService.

var errFakeDown = errors.New("fake: node does not answer")

func (f *fakeCluster) Probe(ctx context.Context, addr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cutOff[addr] > 0 {
		f.cutOff[addr]--
		return errFakeDown
	}
	if f.down[addr] {
		return errFakeDown
	}
	return ctx.Err()
}

func (f *fakeCluster) PutBlock(ctx context.Context, addr string, id blockstore.BlockID, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down[addr] {
		return errFakeDown
	}
	f.blocks[addr+"/"+id.String()] = data
	return nil
}

// HoldGets makes every GetBlock from now on wait until its context ends,
// sending the block's name on the channel returned when it starts to.
func (f *fakeCluster) HoldGets() <-chan string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holdGets, f.gets = true, make(chan string, 64)
	return f.gets
}

func (f *fakeCluster) GetBlock(ctx context.Context, addr string, id blockstore.BlockID) ([]byte, bool, error) {
	f.mu.Lock()
	if f.holdGets {
		gets := f.gets
		f.mu.Unlock()
		select {
		case gets <- addr + "/" + id.String():
		default:
		}
		<-ctx.Done()
		return nil, false, ctx.Err()
	}
	defer f.mu.Unlock()
	if f.down[addr] {
		return nil, false, errFakeDown
	}
	b, ok := f.blocks[addr+"/"+id.String()]
	return b, ok, nil
}

func (f *fakeCluster) RemoveBlocks(ctx context.Context, addr, app string, rdd int) error {
	return nil
}

// Blocks returns the keys ("addr/block") of the blocks the fake holds.
func (f *fakeCluster) Blocks() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.blocks {
		out = append(out, k)
	}
	return out
}

// CheckpointStatus: the fake's nodes hold no checkpoints (its tests
// checkpoint through the tasks, CheckpointVia "task").
func (f *fakeCluster) CheckpointStatus(ctx context.Context, addr, app, store string, keys []string) ([]*shufflepb.CheckpointPartState, error) {
	return nil, fmt.Errorf("client: fake node %s holds no checkpoints", addr)
}

func (f *fakeCluster) Close() error { return nil }

// A fakeCluster is each of the scheduler's interfaces.
var (
	_ taskEndpoint = (*fakeCluster)(nil)
	_ cluster      = (*fakeCluster)(nil)
	_ nodeService  = (*fakeCluster)(nil)
	_ cluster      = (*compute.Local)(nil)
	_ taskEndpoint = (*compute.Endpoint)(nil)
	_ nodeService  = (*nodeClients)(nil)
)
