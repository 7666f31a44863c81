package client

import (
	"context"
	"encoding/json"
	"fmt"

	"shoal/client/clientpb"
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
	inputs      map[uint32]*computepb.ShuffleInput
	err         error
	output      *shufflepb.MapOutput // set by a shuffle sink
	metrics     map[string]int64
	accums      map[uint32]*accCell // accumulators bound by this task's ops
	blocks      []*clientpb.BlockReport
	checkpoints []*clientpb.CheckpointReport
	runner      *runner // the worker's: its caches
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
	in, ok := tc.inputs[shuffleID]
	if !ok {
		return nil, fmt.Errorf("client: task has no locations for shuffle %d", shuffleID)
	}
	// The driver may have sent only what some reduce partitions need
	// (taskinputs.go): reading others would miss records, so it fails.
	cut := in.ReduceEnd > 0
	if cut && (start < int(in.ReduceStart) || end > int(in.ReduceEnd)) {
		return nil, fmt.Errorf("client: task reads partitions [%d, %d) of shuffle %d but the driver sent the locations of [%d, %d) only",
			start, end, shuffleID, in.ReduceStart, in.ReduceEnd)
	}
	maps := make([]shuffle.MapLocation, len(in.Maps))
	for i, m := range in.Maps {
		maps[i] = shuffle.MapLocation{Node: m.Node, Output: m.Output, Offset: int64(m.Offset)}
		if cut {
			maps[i].Start = int(in.ReduceStart)
		}
	}
	return shuffle.NewReader(tc.ctx, shuffle.ReaderOptions{
		App: tc.env.App, Shuffle: shuffleID, ReduceStart: start, ReduceEnd: end, Maps: maps,
		LocalNode: tc.env.ShuffleAddr, LocalLayout: tc.env.Layout, Clients: tc.env.Clients.Fetchers(),
	})
}

// seqOf type-asserts a parent's seqFn.
func seqOf[T any](parent any) (seqFn[T], error) {
	f, ok := parent.(seqFn[T])
	if !ok {
		return nil, fmt.Errorf("client: op input is %T, want %T", parent, seqFn[T](nil))
	}
	return f, nil
}
