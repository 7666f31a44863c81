package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"shoal/client/clientpb"
	"shoal/client/eventlog"
	"shoal/compute"
	"shoal/compute/computepb"
)

// Speculation and fetch-failure batching (DESIGN.md §6).
const (
	// fetchGatherWindow is how long a stage attempt keeps collecting fetch
	// failures after the first one before it ends: the other tasks of the
	// stage that read the same outputs report theirs meanwhile, and all
	// of them are acted on at once.
	fetchGatherWindow = 200 * time.Millisecond
	// A running task gets a backup copy once speculationQuorum of its
	// stage's tasks have finished and it has run longer than
	// speculationMultiplier times their median duration, and at least
	// speculationMinRuntime.
	speculationQuorum     = 0.75
	speculationMultiplier = 1.5
	speculationMinRuntime = 100 * time.Millisecond
)

// stageRun is one attempt of a stage: its tasks from submission until
// every partition has succeeded, or the attempt fails.
//
// Every partition not done is pending, running (one copy, or two with a
// speculative backup), or failed on a fetch failure while the attempt
// gathers them. When a copy succeeds, the other is killed and dropped at
// once; its slot comes back when its worker reports it.
type stageRun struct {
	s            *scheduler
	ctx          context.Context // the job's
	st           *stage
	js           *jobState
	stageAttempt int
	kind         string
	plan         []byte
	inputs       []*computepb.ShuffleInput // every output whole; a task gets taskInputs
	offsets      [][][]uint64              // by input and map: block offsets (blockOffset)
	results      *jobResults               // a result stage's; nil for a map stage
	total        int
	started      time.Time

	pending   []*pendingTask
	running   map[uint64]*taskRun
	done      map[int]bool
	backedUp  map[int]bool // partitions given a backup copy
	failures  map[int]int  // task failures by partition
	durations []time.Duration

	fetchFails  []*computepb.FetchFailure
	blockMisses []*clientpb.BlockReport // of cached blocks a task could not read without lineage
	gatherUntil time.Time               // zero until the first fetch failure
	resultNodes map[string]bool         // nodes that hold results of this attempt as blocks

	starvedSince time.Time // when tasks began to wait with no usable worker; zero if they do not
	lastRevive   time.Time // when lost nodes were last probed (scheduler.reviveNodes)

	lostSeen int // scheduler.lostOutputs when the inputs were last checked

	probing bool  // the nodes of the gathered fetch failures are being probed
	err     error // set by a continuation: the attempt ends with it
	over    bool  // run has returned: continuations leave the attempt alone
}

// runStage runs one attempt of st for parts.
func (s *scheduler) runStage(ctx context.Context, js *jobState, st *stage, parts []int, sink opSpec, results *jobResults) error {
	c := s.c
	start := time.Now()
	plan, inputs := s.buildPlan(st.final, sink)
	if results != nil {
		plan.DirectResult = c.opts.MaxDirectResultBytes
	}
	planBytes, err := json.Marshal(plan)
	s.planTime += time.Since(start)
	if err != nil {
		return fmt.Errorf("client: stage %d: %w", st.id, err)
	}
	var shuffleInputs []*computepb.ShuffleInput
	for _, id := range inputs {
		in := &computepb.ShuffleInput{Shuffle: uint32(id)}
		for m, loc := range s.outputs[id] {
			if loc == nil {
				// Lost since the plan was made (a node found lost while
				// an earlier stage of the plan ran).
				return &fetchFailedError{stage: st, shuffle: id, mapID: m, reason: "map output not registered"}
			}
			in.Maps = append(in.Maps, loc)
		}
		shuffleInputs = append(shuffleInputs, in)
	}
	// An attempt starts here: one whose inputs were gone never ran.
	stageAttempt := st.attempts
	st.attempts++
	r := &stageRun{
		s: s, ctx: ctx, st: st, js: js, stageAttempt: stageAttempt, kind: st.kind(), plan: planBytes, inputs: shuffleInputs,
		results: results, total: len(parts), started: time.Now(),
		running: map[uint64]*taskRun{}, done: map[int]bool{}, backedUp: map[int]bool{}, failures: map[int]int{},
		resultNodes: map[string]bool{},
	}
	c.events.Write(&eventlog.StageSubmitted{
		Job: js.job, Stage: st.id, StageAttempt: stageAttempt, Kind: r.kind, Tasks: len(parts), Name: st.name(),
		Parents: st.parentIDs(), Shuffle: st.shuffleID(),
	})
	s.prog.start(st.id, st.name(), len(parts))
	for _, p := range parts {
		r.pending = append(r.pending, &pendingTask{part: p, prefs: r.prefs(p), since: r.started})
	}
	err = r.run(ctx)
	r.over = true
	s.removeResults(ctx, r.resultNodes)
	if err != nil {
		return r.fail(err)
	}
	st.fetchFailures = 0
	s.prog.update(st.id, len(r.done), 0, r.total)
	s.prog.end(st.id, st.name(), "done", time.Since(r.started))
	c.events.Write(&eventlog.StageCompleted{Stage: st.id, StageAttempt: stageAttempt, Status: eventlog.StatusSucceeded})
	return nil
}

func (r *stageRun) run(ctx context.Context) error {
	s, c := r.s, r.s.c
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for len(r.done) < r.total {
		if r.err != nil {
			return r.err
		}
		if err := r.inputsLost(); err != nil {
			return err
		}
		gathering := !r.gatherUntil.IsZero()
		if gathering && !r.probing && (len(r.running) == 0 || !time.Now().Before(r.gatherUntil)) {
			r.probeFetchFailures()
		}
		if !gathering {
			if c.opts.Speculation {
				r.speculate()
			}
			r.assign()
		}
		s.prog.update(r.st.id, len(r.done), len(r.running), r.total)
		wait := c.opts.LocalityWait
		switch {
		case gathering && !r.probing:
			wait = min(wait, time.Until(r.gatherUntil))
		case gathering: // the probes' answer comes on doneq
		case len(r.pending) > 0 && len(r.running) == 0 && s.usableWorkers() == 0:
			// Nothing runs and no worker is usable: wait for one (a
			// replacement, or a lost node that answers again), for at
			// most HeartbeatTimeout.
			now := time.Now()
			if r.starvedSince.IsZero() {
				r.starvedSince = now
			}
			if now.Sub(r.lastRevive) >= reviveInterval && !s.reviving {
				r.lastRevive = now
				s.reviving = true
				async(s, ctx, probeTimeout, s.probeLost(), func(probed map[string]error) {
					s.reviving = false
					s.reviveNodes(probed)
				})
			}
			left := c.opts.HeartbeatTimeout - time.Since(r.starvedSince)
			if left <= 0 {
				return r.starved()
			}
			wait = min(reviveInterval, left)
		default:
			r.starvedSince = time.Time{}
		}
		timer.Reset(wait)
		var ev compute.Event
		select {
		case e, ok := <-s.ep.Events():
			if !ok {
				return errors.New("client: the driver's endpoint closed (the context is closing)")
			}
			ev = e
		case f := <-s.doneq:
			f()
			continue
		case req := <-c.reqs:
			if err := s.interrupt(req); err != nil {
				return err
			}
			continue
		case <-timer.C:
			continue
		case <-ctx.Done():
			return ctx.Err()
		}
		ended, lost := s.handle(ev)
		for _, t := range ended {
			if err := r.ended(t, ev, lost); err != nil {
				return err
			}
		}
	}
	return nil
}

// inputsLost ends the attempt as a fetch failure would when a map output
// it reads was lost while it ran (its node was declared lost): its
// running tasks are killed rather than left to read the lost node's
// copies (a node cut off, then back, still serves them: they are fenced,
// not deleted), and the lost outputs are recomputed before the stage runs
// again.
func (r *stageRun) inputsLost() error {
	s := r.s
	if r.lostSeen == s.lostOutputs {
		return nil
	}
	r.lostSeen = s.lostOutputs
	for _, in := range r.inputs {
		outs := s.outputs[int(in.Shuffle)]
		for m, loc := range in.Maps {
			if m < len(outs) && outs[m] == nil {
				return &fetchFailedError{stage: r.st, shuffle: int(in.Shuffle), mapID: m, node: loc.GetNode(),
					reason: "its node was declared lost while the stage ran", nodeLost: true}
			}
		}
	}
	return nil
}

// probeFetchFailures ends the gathering of fetch failures: the nodes they
// name are probed off the loop, and the answer ends the attempt with the
// error fetchFailed makes of it.
func (r *stageRun) probeFetchFailures() {
	s := r.s
	r.probing = true
	fails, misses := r.fetchFails, r.blockMisses
	async(s, r.ctx, probeTimeout, probeAllFunc(s.nodes, s.fetchFailureProbes(fails, misses)), func(probed map[string]error) {
		r.err = s.fetchFailed(r.st, fails, misses, probed)
	})
}

// starved is the error of an attempt whose tasks waited HeartbeatTimeout
// with no usable worker: every worker is gone, or on a lost node.
func (r *stageRun) starved() error {
	s := r.s
	lost := slices.Sorted(maps.Keys(s.lostNodes))
	if len(lost) == 0 {
		return fmt.Errorf("client: stage %d (%s): no workers left to run its tasks for %v (every worker was lost and none replaced it)",
			r.st.id, r.st.name(), s.c.opts.HeartbeatTimeout)
	}
	return fmt.Errorf("client: stage %d (%s): no workers left to run its tasks for %v: the other workers' nodes were lost and did not answer again: %s (node_lost in the event log says why)",
		r.st.id, r.st.name(), s.c.opts.HeartbeatTimeout, strings.Join(lost, ", "))
}

// fail ends the attempt: its running tasks are killed.
func (r *stageRun) fail(err error) error {
	c := r.s.c
	for _, id := range slices.Sorted(maps.Keys(r.running)) {
		t := r.running[id]
		r.s.ep.Kill(t.worker, id)
		r.taskEnd(t, "killed", "its stage attempt failed")
	}
	var ff *fetchFailedError
	if errors.As(err, &ff) && ff.stage == nil {
		ff.stage = r.st
	}
	c.events.Write(&eventlog.StageCompleted{Stage: r.st.id, StageAttempt: r.stageAttempt, Status: eventlog.StatusFailed})
	r.s.prog.end(r.st.id, r.st.name(), "failed", time.Since(r.started))
	return err
}

func (r *stageRun) taskEnd(t *taskRun, status, reason string) {
	r.taskEndMetrics(t, status, reason, nil)
}

// taskEndMetrics logs task_end with the metrics the task reported.
func (r *stageRun) taskEndMetrics(t *taskRun, status, reason string, metrics map[string]int64) {
	r.s.c.events.Write(&eventlog.TaskEnd{
		TaskAttempt: r.task(t), Status: status, Reason: reason, DurationMs: time.Since(t.start).Milliseconds(), Metrics: metrics,
	})
}

// task names t in its events.
func (r *stageRun) task(t *taskRun) eventlog.TaskAttempt {
	return eventlog.TaskAttempt{
		Stage: r.st.id, StageAttempt: r.stageAttempt, Partition: t.part, Attempt: t.attempt, Task: t.id,
		Kind: r.kind, Worker: t.worker, Node: t.node,
	}
}

// prefs are where a task of partition part would rather run: where its
// cached input is held, or where much of its shuffle input is.
func (r *stageRun) prefs(part int) []string {
	if p := r.s.cachePrefs(r.st.final, part); len(p) > 0 {
		return p
	}
	return preferredNodes(r.inputs, part)
}

// ended handles a task of this attempt that ended: lost with its worker,
// or reported by it.
func (r *stageRun) ended(t *taskRun, ev compute.Event, lost bool) error {
	var missing []*clientpb.BlockReport
	var rep taskReport
	if !lost {
		rep, missing = r.s.applyReports(ev.Update) // a killed copy's blocks are stored all the same
		if node := ev.Update.GetResultNode(); node != "" {
			r.resultNodes[node] = true
		}
	}
	if r.running[t.id] == nil {
		return nil // a task of an earlier attempt, or a killed copy
	}
	delete(r.running, t.id)
	if lost {
		r.taskEnd(t, "lost", ev.Reason)
		r.retry(t.part, "")
		return nil
	}
	u := ev.Update
	if u.State == computepb.TaskState_TASK_STATE_SUCCEEDED && u.ResultNode != "" {
		// The result is a block: without it the task did not succeed. Its
		// size is known before it is fetched, off the loop.
		if err := r.results.admit(t.part, u.Metrics[resultBlockMetric]); err != nil {
			r.taskEndMetrics(t, "failed", err.Error(), u.Metrics)
			return err
		}
		r.s.fetchResult(r.ctx, u.ResultNode, t.id, func(data []byte, err error) {
			if r.over || r.done[t.part] {
				return
			}
			if err != nil {
				u.State, u.Error = computepb.TaskState_TASK_STATE_FAILED, err.Error()
			}
			u.Result = data
			if err := r.finish(t, u, rep, missing); err != nil && r.err == nil {
				r.err = err
			}
		})
		return nil
	}
	return r.finish(t, u, rep, missing)
}

// finish handles the update of a task whose result, if any, is at hand.
func (r *stageRun) finish(t *taskRun, u *computepb.TaskUpdate, rep taskReport, missing []*clientpb.BlockReport) error {
	s, c := r.s, r.s.c
	switch u.State {
	case computepb.TaskState_TASK_STATE_SUCCEEDED:
		r.taskEndMetrics(t, "succeeded", "", u.Metrics)
		return r.succeeded(t, u, rep)
	case computepb.TaskState_TASK_STATE_FAILED:
		r.taskEndMetrics(t, "failed", u.Error, u.Metrics)
		if ff := u.FetchFailure; ff != nil || len(missing) > 0 {
			if ff != nil {
				c.events.Write(&eventlog.FetchFailed{Shuffle: int(ff.Shuffle), Map: int(ff.Map), Node: ff.Node, Reason: ff.Reason,
					Stage: r.st.id, StageAttempt: r.stageAttempt, Partition: t.part, Task: t.id})
				r.fetchFails = append(r.fetchFails, ff)
			}
			r.blockMisses = append(r.blockMisses, missing...)
			if r.gatherUntil.IsZero() {
				r.gatherUntil = time.Now().Add(fetchGatherWindow)
			}
			return nil
		}
		// A task that failed for the infrastructure (not its own code)
		// may have failed with its node: the shuffle server its outputs
		// go to is lost already, or does not answer now, and is then
		// declared lost. Such a failure is not counted against the
		// partition, as a fetch failure is not: a node cut off for a
		// while must not fail the job through the tasks that could not
		// commit to it.
		addr := cmp.Or(t.shuffleAddr, t.node)
		switch {
		case u.UserError || addr == "":
			return r.countFailure(t, u.Error)
		case s.lostNodes[addr]:
			r.retry(t.part, "")
			return nil
		}
		s.probe(r.ctx, addr, func(err error) {
			if err != nil {
				line, _, _ := strings.Cut(u.Error, "\n")
				s.nodeLost(addr, fmt.Sprintf("task %d failed on its worker %s (%s) and the node does not answer: %v", t.id, t.worker, line, err))
				if !r.over {
					r.retry(t.part, "")
				}
				return
			}
			if err := r.countFailure(t, u.Error); err != nil && !r.over && r.err == nil {
				r.err = err
			}
		})
	default: // killed, but not by this attempt (the worker is stopping)
		r.taskEnd(t, "killed", u.Error)
		r.retry(t.part, "")
	}
	return nil
}

// countFailure counts a failure of t's partition against it: the job
// fails once a partition has failed MaxTaskFailures times; until then it
// is retried, elsewhere if it can be.
func (r *stageRun) countFailure(t *taskRun, taskErr string) error {
	if r.over {
		return nil
	}
	r.failures[t.part]++
	if r.failures[t.part] >= r.s.c.opts.MaxTaskFailures {
		return fmt.Errorf("client: stage %d (%s): partition %d failed %d times; last error: %s",
			r.st.id, r.st.name(), t.part, r.failures[t.part], taskErr)
	}
	r.retry(t.part, t.worker)
	return nil
}

// retry queues the partition again unless it is done, or another copy
// of it runs or waits.
func (r *stageRun) retry(part int, avoid string) {
	if r.done[part] || slices.ContainsFunc(r.pending, func(p *pendingTask) bool { return p.part == part }) {
		return
	}
	for _, o := range r.running {
		if o.part == part {
			return
		}
	}
	r.pending = append(r.pending, &pendingTask{part: part, avoid: avoid, prefs: r.prefs(part), since: time.Now()})
}

// succeeded records the first successful copy of a partition: its map
// output, its result, its accumulator updates. Any other copy is killed:
// its output, if it still reports one, is not registered.
func (r *stageRun) succeeded(t *taskRun, u *computepb.TaskUpdate, rep taskReport) error {
	s, c := r.s, r.s.c
	if r.results != nil {
		if err := r.results.take(t.part, u.Result); err != nil {
			return err
		}
	}
	r.done[t.part] = true
	r.durations = append(r.durations, time.Since(t.start))
	if st := r.st; st.shuffle != nil {
		s.outputs[st.shuffle.id][t.part] = &computepb.MapLocation{Node: cmp.Or(u.GetMapOutputNode(), t.shuffleAddr, t.node), Output: u.MapOutput}
	}
	if key := [2]int{r.st.id, t.part}; !s.accDone[key] {
		s.accDone[key] = true
		c.applyAccumulators(rep.accums)
	}
	for _, id := range slices.Sorted(maps.Keys(r.running)) {
		if o := r.running[id]; o.part == t.part {
			s.ep.Kill(o.worker, id)
			delete(r.running, id)
			r.taskEnd(o, "killed", fmt.Sprintf("attempt %d of the partition finished first", t.attempt))
		}
	}
	r.pending = slices.DeleteFunc(r.pending, func(p *pendingTask) bool { return p.part == t.part })
	return nil
}

// speculate queues a backup copy of each running task that is slow
// compared with the finished ones, at most one per partition.
func (r *stageRun) speculate() {
	if len(r.durations) == 0 || float64(len(r.done)) < speculationQuorum*float64(r.total) {
		return
	}
	d := slices.Clone(r.durations)
	slices.Sort(d)
	median := d[len(d)/2]
	threshold := max(time.Duration(float64(median)*speculationMultiplier), speculationMinRuntime)
	now := time.Now()
	for _, id := range slices.Sorted(maps.Keys(r.running)) {
		t := r.running[id]
		if r.backedUp[t.part] || now.Sub(t.start) <= threshold {
			continue
		}
		r.backedUp[t.part] = true
		r.pending = append(r.pending, &pendingTask{part: t.part, avoid: t.worker, backup: true, since: now})
		r.s.c.log.Info("speculating a slow task", "stage", r.st.id, "partition", t.part, "attempt", t.attempt,
			"running", now.Sub(t.start).Round(time.Millisecond), "median", median.Round(time.Millisecond))
	}
}

// assign gives pending tasks to free slots of usable workers.
func (r *stageRun) assign() {
	s, c := r.s, r.s.c
	for _, wid := range slices.Clone(s.order) {
		w := s.workers[wid]
		if w == nil || !s.usable(w) {
			continue
		}
		for w.free > 0 && len(r.pending) > 0 {
			i := pick(r.pending, w, c.opts.LocalityWait, len(s.order) > 1)
			if i < 0 {
				break
			}
			p := r.pending[i]
			s.taskIDs++
			t := &taskRun{
				id: s.taskIDs, stage: r.st, part: p.part, attempt: s.nextAttempt(r.st, p.part),
				worker: wid, node: w.info.Node, shuffleAddr: w.info.ShuffleAddr, start: time.Now(),
			}
			rt := &computepb.RunTask{
				TaskId: t.id, Stage: uint32(r.st.id), StageAttempt: uint32(r.stageAttempt), Partition: uint32(p.part),
				Attempt: uint32(t.attempt), Kind: r.kind, Plan: r.plan, Inputs: r.taskInputs(p.part),
			}
			if st := r.st; st.shuffle != nil {
				rt.OutputShuffle = uint32(st.shuffle.id)
				rt.Epoch = 1 + s.epochs[[2]int{st.shuffle.id, p.part}]
			}
			if err := s.ep.Run(wid, rt); err != nil {
				break // the worker is going; its loss event follows
			}
			r.pending = slices.Delete(r.pending, i, i+1)
			w.free--
			s.tasks[t.id] = t
			r.running[t.id] = t
			c.events.Write(&eventlog.TaskStart{TaskAttempt: r.task(t), Speculative: p.backup, Locality: p.locality(w.info.Node)})
		}
	}
}
