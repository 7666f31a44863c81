package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"shoal/client/clientpb"
	"shoal/compute"
	"shoal/compute/computepb"
	"shoal/internal/fnref"
	"shoal/objstore"
	"shoal/shuffleservice/shuffle"
)

// runner is the compute.Runner of every shoal worker: it executes stage
// plans. It owns what a worker keeps between its tasks, shared by them:
// the MemoryDeser blocks in its heap, the checkpoint stores and S3
// clients it opened and the broadcasts it fetched. A worker makes one (RunWorker) and closes it
// when it stops; nothing of it is package state, so several runners (in
// tests) do not share their caches.
type runner struct {
	heap       *heapCache
	stores     *storeCache
	broadcasts *broadcastCache
	// s3 are the clients of s3:// inputs and outputs, configured by the
	// worker's environment (the AWS_ variables the driver set).
	s3     *s3Clients
	closed atomic.Bool
}

func newRunner() *runner {
	return &runner{heap: newHeapCache(), stores: newStoreCache(), broadcasts: newBroadcastCache(), s3: newS3Clients(objstore.Options{})}
}

// RunWorker runs this process as a worker of a shoal driver
// (compute.RunWorker) with the runner of shoal's stage plans, made for the
// call and closed when it returns: the blocks, broadcasts and checkpoint
// stores the worker held are released. Init calls it when the environment
// says that the process is a worker; a program with its own main (the
// shoal command) may call it instead, with compute.WorkerFromEnv's
// options.
func RunWorker(ctx context.Context, opts compute.WorkerOptions) error {
	r := newRunner()
	err := compute.RunWorker(ctx, opts, r)
	if cerr := r.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return err
}

// Close releases what the runner holds: its heap blocks and broadcasts
// are dropped and its checkpoint stores closed. A task that starts after
// Close fails; Close again does nothing.
func (r *runner) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	r.heap.clear()
	r.broadcasts.clear()
	r.s3.close()
	return r.stores.close()
}

// Message reads a message of the driver's scheduler (compute.Messenger):
// a request to drop an RDD's blocks from the heap.
func (r *runner) Message(payload []byte) error {
	m, err := decodeMessage(payload)
	if err != nil {
		return err
	}
	switch msg := m.Msg.(type) {
	case *clientpb.Message_DropBlocks:
		r.heap.dropRDD(int(msg.DropBlocks.GetRdd()))
		return nil
	}
	return errNoMessage
}

func (r *runner) Run(ctx context.Context, env *compute.TaskEnv, t *computepb.RunTask) (*computepb.TaskUpdate, error) {
	if r.closed.Load() {
		return nil, fmt.Errorf("client: task %d: the worker's runner is closed", t.TaskId)
	}
	start := time.Now()
	var plan stagePlan
	if err := json.Unmarshal(t.Plan, &plan); err != nil {
		return nil, fmt.Errorf("client: task %d: bad plan: %w", t.TaskId, err)
	}
	if plan.Canary != fnref.Canary() {
		return nil, fmt.Errorf("client: task %d: this worker runs a different binary than the driver (canary %v, driver's %v)", t.TaskId, fnref.Canary(), plan.Canary)
	}
	tc := &taskContext{
		ctx: ctx, env: env, task: t, inputs: map[uint32]*computepb.ShuffleInput{},
		metrics: map[string]int64{}, accums: map[uint32]*accCell{}, runner: r,
	}
	b := &build{tc: tc}
	built := make([]any, len(plan.Ops))
	for i, op := range plan.Ops {
		factory, err := resolve[opFactory](op.Spec)
		if err != nil {
			return nil, err
		}
		parents := make([]any, len(op.Parents))
		for j, p := range op.Parents {
			if p < 0 || p >= i {
				return nil, fmt.Errorf("client: task %d: op %d has parent %d out of order", t.TaskId, i, p)
			}
			parents[j] = built[p]
		}
		if built[i], err = factory.op(b, op.Spec.Params, parents); err != nil {
			return nil, fmt.Errorf("client: building %s: %w", op.Spec.Factory.Name, err)
		}
	}
	if len(built) == 0 {
		return nil, fmt.Errorf("client: task %d: empty plan", t.TaskId)
	}
	sf, err := resolve[sinkFactory](plan.Sink)
	if err != nil {
		return nil, err
	}
	sink, err := sf.sink(b, plan.Sink.Params, built[len(built)-1])
	if err != nil {
		return nil, err
	}
	for _, in := range t.Inputs {
		tc.inputs[in.Shuffle] = in
	}
	result, err := sink(tc, int(t.Partition))
	if err == nil {
		err = tc.err
	}
	if err == nil {
		err = ctx.Err()
	}
	up := &computepb.TaskUpdate{TaskId: t.TaskId, Metrics: tc.metrics, DurationMs: time.Since(start).Milliseconds()}
	report, rerr := encodeReport(tc)
	if rerr != nil {
		return up, errors.Join(err, rerr)
	}
	up.Report = report
	var ff *shuffle.FetchFailedError
	switch {
	case err == nil:
		up.State = computepb.TaskState_TASK_STATE_SUCCEEDED
		up.Result = result
		if plan.DirectResult > 0 && int64(len(result)) > plan.DirectResult {
			if up.ResultNode, err = storeResult(tc, result); err != nil {
				return up, err
			}
			up.Result = nil
		}
		up.MapOutput = tc.output
		if tc.output != nil {
			// The driver records where the output lives: the node service,
			// or this worker's own shuffle server when the service is off.
			up.MapOutputNode = tc.env.ShuffleAddr
		}
	case errors.As(err, &ff):
		up.State = computepb.TaskState_TASK_STATE_FAILED
		up.Error = err.Error()
		up.FetchFailure = &computepb.FetchFailure{Shuffle: ff.Shuffle, Map: ff.Map, Node: ff.Node, Reason: ff.Err.Error()}
	default:
		return up, err // the block reports stand: what was stored is stored
	}
	return up, nil
}
