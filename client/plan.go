package client

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"shoal/compute"
	"shoal/compute/computepb"
	"shoal/internal/fnref"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// A task runs a stagePlan: the stage's ops, parents first, each rebuilt on
// the worker from its opSpec, and a sink that consumes the last op's
// records (a shuffle write for a map stage, the action's work for a result
// stage). The plan travels as JSON in RunTask.plan.
type stagePlan struct {
	Canary fnref.Ref `json:"canary"` // the driver's; see fnref.Canary
	Ops    []planOp  `json:"ops"`
	Sink   opSpec    `json:"sink"`
	// DirectResult, if positive, is the largest result sent on the
	// worker's stream; a larger one is stored as a block (result.go).
	DirectResult int64 `json:"direct_result,omitempty"`
}

type planOp struct {
	Node    int    `json:"node"`
	Parents []int  `json:"parents,omitempty"` // indexes into Ops
	Spec    opSpec `json:"spec"`
}

// opFactory rebuilds an op on a worker: given its params and its parents'
// seqFns (as any), it returns its own seqFn[T] (as any). Every op is a
// zero-size generic type, e.g. mapOp[string,int], that travels as a type
// reference (fnref.OfType): its instantiation carries the element types.
type opFactory interface {
	op(b *build, params json.RawMessage, parents []any) (any, error)
}

// sinkFn consumes one partition of a stage's last op on a worker and
// returns the task's result bytes.
type sinkFn = func(tc *taskContext, part int) ([]byte, error)

// sinkFactory builds a sinkFn from its params and its input's seqFn.
type sinkFactory interface {
	sink(b *build, params json.RawMessage, input any) (sinkFn, error)
}

// resolve rebuilds the operator type a spec refers to.
func resolve[F any](spec opSpec) (F, error) {
	var zero F
	v, err := fnref.NewOf(spec.Factory)
	if err != nil {
		return zero, err
	}
	f, ok := v.(F)
	if !ok {
		return zero, fmt.Errorf("client: %s is not a %T", spec.Factory.Name, &zero)
	}
	return f, nil
}

// build is what factories see while a task's plan is rebuilt: the task's
// context, to which they bind what their records will report
// (accumulators).
type build struct {
	tc *taskContext
}

// taskContext is what ops see of the task they run in.
type taskContext struct {
	ctx         context.Context
	env         *compute.TaskEnv
	task        *computepb.RunTask
	inputs      map[uint32][]shuffle.MapLocation
	err         error
	output      *shufflepb.MapOutput // set by a shuffle sink
	metrics     map[string]int64
	accums      map[uint32]*accCell // accumulators bound by this task's ops
	blocks      []*computepb.BlockReport
	checkpoints []*computepb.CheckpointReport
}

// fail records the first error of the task; sequences stop at the next
// record.
func (tc *taskContext) fail(err error) {
	if tc.err == nil && err != nil {
		tc.err = err
	}
}

func (tc *taskContext) failed() bool { return tc.err != nil || tc.ctx.Err() != nil }

func (tc *taskContext) addMetric(name string, v int64) { tc.metrics[name] += v }

// readShuffle opens reduce partitions [start, end) of a shuffle.
func (tc *taskContext) readShuffle(shuffleID uint32, start, end int) (*shuffle.Reader, error) {
	maps, ok := tc.inputs[shuffleID]
	if !ok {
		return nil, fmt.Errorf("client: task has no locations for shuffle %d", shuffleID)
	}
	return shuffle.NewReader(tc.ctx, shuffle.ReaderOptions{
		App: tc.env.App, Shuffle: shuffleID, ReduceStart: start, ReduceEnd: end, Maps: maps,
		LocalNode: tc.env.ShuffleAddr, LocalLayout: tc.env.Layout, Clients: tc.env.Clients.Fetchers(),
	})
}

// runner is the compute.Runner of every shoal binary: it executes stage
// plans.
type runner struct{}

// Runner returns the task runner that workers use.
func Runner() compute.Runner { return runner{} }

func (runner) Run(ctx context.Context, env *compute.TaskEnv, t *computepb.RunTask) (*computepb.TaskUpdate, error) {
	start := time.Now()
	var plan stagePlan
	if err := json.Unmarshal(t.Plan, &plan); err != nil {
		return nil, fmt.Errorf("client: task %d: bad plan: %w", t.TaskId, err)
	}
	if plan.Canary != fnref.Canary() {
		return nil, fmt.Errorf("client: task %d: this worker runs a different binary than the driver (canary %v, driver's %v)", t.TaskId, fnref.Canary(), plan.Canary)
	}
	tc := &taskContext{
		ctx: ctx, env: env, task: t, inputs: map[uint32][]shuffle.MapLocation{},
		metrics: map[string]int64{}, accums: map[uint32]*accCell{},
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
		locs := make([]shuffle.MapLocation, len(in.Maps))
		for i, m := range in.Maps {
			locs[i] = shuffle.MapLocation{Node: m.Node, Output: m.Output}
		}
		tc.inputs[in.Shuffle] = locs
	}
	result, err := sink(tc, int(t.Partition))
	if err == nil {
		err = tc.err
	}
	if err == nil {
		err = ctx.Err()
	}
	up := &computepb.TaskUpdate{TaskId: t.TaskId, Metrics: tc.metrics, DurationMs: time.Since(start).Milliseconds(), Blocks: tc.blocks, Checkpoints: tc.checkpoints}
	for id, c := range tc.accums {
		up.Accumulators = append(up.Accumulators, &computepb.Accumulator{Id: id, Value: binary.BigEndian.AppendUint64(nil, uint64(c.v))})
	}
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

// seqOf type-asserts a parent's seqFn.
func seqOf[T any](parent any) (seqFn[T], error) {
	f, ok := parent.(seqFn[T])
	if !ok {
		return nil, fmt.Errorf("client: op input is %T, want %T", parent, seqFn[T](nil))
	}
	return f, nil
}
