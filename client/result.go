package client

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"shoal/blockstore"
)

// Results too large for the worker's stream (docs/DESIGN.md §2 step 6).
//
// A result task whose value is larger than Options.MaxDirectResultBytes
// stores it in its node service as a DiskOnly block and reports only the
// node; the driver fetches the block before it takes the result, and
// removes the results of a stage from its nodes when the stage attempt
// ends. So a large Collect neither runs into the stream's message limit
// nor queues megabytes behind the heartbeats, and a result already stored
// outlives the worker that computed it. DiskOnly, because a result must
// not push cached partitions out of a node's memory; it is read once,
// soon, from the page cache.
const (
	// resultBlockMetric is the task metric that reports the size of a
	// result stored as a block.
	resultBlockMetric = "result_block_bytes"
	// resultsRDD is the block "RDD" of results: block (app, resultsRDD,
	// task ID). RDD and broadcast IDs count up from 1 and never reach it.
	resultsRDD = math.MaxInt32
	// resultFetchTimeout bounds the driver's fetch of one result block.
	resultFetchTimeout = 30 * time.Second
	// resultRemoveTimeout bounds the removal of a stage's results from
	// one node.
	resultRemoveTimeout = 5 * time.Second
)

// storeResult puts a task's result in the worker's node service and
// returns the node's address.
func storeResult(tc *taskContext, result []byte) (string, error) {
	id := tc.task.TaskId
	if id > math.MaxInt32 {
		return "", fmt.Errorf("client: task %d: result of %d bytes: task IDs above %d cannot name a result block", id, len(result), math.MaxInt32)
	}
	addr := tc.env.NodeAddr
	cl, err := tc.env.Clients(addr)
	if err == nil {
		_, _, err = cl.PutBlock(tc.ctx, blockstore.BlockID{App: tc.env.App, RDD: resultsRDD, Partition: int(id)}, blockstore.DiskOnly, 0, result)
	}
	if err != nil {
		return "", fmt.Errorf("client: task %d: store its result of %d bytes in node %s: %w", id, len(result), addr, err)
	}
	tc.addMetric(resultBlockMetric, int64(len(result)))
	return addr, nil
}

// fetchResult reads the result of task from the node that holds it, off
// the loop, and hands it to then on the loop.
func (s *scheduler) fetchResult(ctx context.Context, node string, task uint64, then func([]byte, error)) {
	type fetched struct {
		data []byte
		err  error
	}
	nodes, id := s.nodes, blockstore.BlockID{App: s.c.app, RDD: resultsRDD, Partition: int(task)}
	async(s, ctx, resultFetchTimeout, func(ctx context.Context) fetched {
		data, found, err := nodes.GetBlock(ctx, node, id)
		switch {
		case err != nil:
			return fetched{err: fmt.Errorf("client: fetch the result of task %d from node %s: %w", task, node, err)}
		case !found:
			return fetched{err: fmt.Errorf("client: node %s does not hold the result of task %d", node, task)}
		}
		return fetched{data: data}
	}, func(f fetched) { then(f.data, f.err) })
}

// removeResults removes the result blocks of an ended stage attempt from
// the nodes that reported holding some, skipping nodes found lost, and
// waits for it (serving the loop meanwhile). A result stored by a copy
// killed after this (or by a worker lost before it reported) stays until
// the next stage's removal on that node, or until the application is
// removed.
func (s *scheduler) removeResults(ctx context.Context, nodes map[string]bool) {
	var addrs []string
	for _, addr := range slices.Sorted(maps.Keys(nodes)) {
		if !s.lostNodes[addr] {
			addrs = append(addrs, addr)
		}
	}
	if len(addrs) == 0 || s.closing {
		return
	}
	ns, app := s.nodes, s.c.app
	errs, err := await(s, ctx, resultRemoveTimeout, func(ctx context.Context) []error {
		errs := make([]error, len(addrs))
		for i, addr := range addrs {
			errs[i] = ns.RemoveBlocks(ctx, addr, app, resultsRDD)
		}
		return errs
	})
	for i, e := range errs {
		if e != nil {
			s.c.log.Warn("could not remove a stage's results from a node", "node", addrs[i], "err", e)
		}
	}
	if err != nil {
		s.c.log.Warn("could not remove a stage's results", "err", err)
	}
}

// jobResults gathers the results of a job's result stage, in the order of
// its partitions, within Options.MaxResultBytes: the driver holds them
// all, so their total is bounded. A job whose results would exceed it
// fails, saying so, before the result that would cross it is fetched (a
// block) or kept (one sent on the stream, at most MaxDirectResultBytes).
type jobResults struct {
	parts []int
	data  [][]byte
	done  []bool
	bytes int64 // of the results taken
	limit int64
}

func newJobResults(parts []int, limit int64) *jobResults {
	return &jobResults{parts: parts, data: make([][]byte, len(parts)), done: make([]bool, len(parts)), limit: limit}
}

// missing are the partitions without a result yet.
func (j *jobResults) missing() []int {
	var out []int
	for i, p := range j.parts {
		if !j.done[i] {
			out = append(out, p)
		}
	}
	return out
}

// admit returns an error if a result of n bytes for part would take the
// results beyond the limit.
func (j *jobResults) admit(part int, n int64) error {
	if j.bytes+n <= j.limit {
		return nil
	}
	return fmt.Errorf("client: the job's results exceed Options.MaxResultBytes (%d bytes): %d bytes taken, and partition %d's is %d more; "+
		"write a large output with SaveAsTextFile (its tasks write it, the driver holds none of it), or raise MaxResultBytes", j.limit, j.bytes, part, n)
}

// take keeps part's result, unless it has one.
func (j *jobResults) take(part int, res []byte) error {
	i := slices.Index(j.parts, part)
	if i < 0 || j.done[i] {
		return nil
	}
	if err := j.admit(part, int64(len(res))); err != nil {
		return err
	}
	j.data[i], j.done[i] = res, true
	j.bytes += int64(len(res))
	return nil
}
