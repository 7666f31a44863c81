package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"shoal/compute"
	"shoal/compute/computepb"
)

// scheduler runs jobs: it submits each stage's missing partitions as tasks
// to the workers' slots, tracks where map outputs live, and reacts to lost
// workers, failed tasks and fetch failures.
type scheduler struct {
	c       *Context
	workers map[string]*workerState
	order   []string            // worker IDs in order of arrival
	tasks   map[uint64]*taskRun // every task sent and not yet ended

	mapStages map[int]*stage // by shuffle id
	outputs   map[int][]*computepb.MapLocation
	epochs    map[[2]int]uint64 // (shuffle, map) → epoch of its next commit
	accDone   map[[2]int]bool   // (stage, partition) whose accumulator updates were applied
	stageIDs  int
	jobs      int
	taskIDs   uint64
	prog      *progress
}

type workerState struct {
	info compute.WorkerInfo
	free int
}

type taskRun struct {
	id            uint64
	stage         *stage
	part, attempt int
	worker, node  string
	start         time.Time
}

// pendingTask is a partition waiting for a slot.
type pendingTask struct {
	part, attempt int
	prefs         []string // nodes it prefers
	avoid         string   // a worker it failed on
	since         time.Time
}

func newScheduler(c *Context) *scheduler {
	return &scheduler{
		c: c, workers: map[string]*workerState{}, tasks: map[uint64]*taskRun{},
		mapStages: map[int]*stage{}, outputs: map[int][]*computepb.MapLocation{},
		epochs: map[[2]int]uint64{}, accDone: map[[2]int]bool{}, prog: newProgress(c.opts.Progress),
	}
}

// awaitWorkers waits until n workers have connected.
func (s *scheduler) awaitWorkers(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for len(s.workers) < n {
		select {
		case ev := <-s.c.endpoint.Events():
			s.handle(ev)
		case <-deadline.C:
			return fmt.Errorf("client: %d of %d workers connected within %v (see the workers' logs: set Options.WorkerStderr)", len(s.workers), n, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// handle applies an event to the worker table; it returns the tasks that
// ended (updated, or lost with their worker).
func (s *scheduler) handle(ev compute.Event) (ended []*taskRun, lost bool) {
	switch ev.Kind {
	case compute.WorkerAdded:
		if _, ok := s.workers[ev.Worker.ID]; !ok {
			s.workers[ev.Worker.ID] = &workerState{info: ev.Worker, free: ev.Worker.Slots}
			s.order = append(s.order, ev.Worker.ID)
		}
		s.c.events.emit("worker_added", map[string]any{"worker": ev.Worker.ID, "node": ev.Worker.Node, "pid": ev.Worker.Pid})
	case compute.WorkerLost:
		delete(s.workers, ev.Worker.ID)
		s.order = slices.DeleteFunc(s.order, func(id string) bool { return id == ev.Worker.ID })
		s.c.events.emit("worker_lost", map[string]any{"worker": ev.Worker.ID, "node": ev.Worker.Node, "pid": ev.Worker.Pid, "reason": ev.Reason})
		for id, t := range s.tasks {
			if t.worker == ev.Worker.ID {
				delete(s.tasks, id)
				ended = append(ended, t)
			}
		}
		return ended, true
	case compute.TaskUpdate:
		t, ok := s.tasks[ev.Update.TaskId]
		if !ok || ev.Update.State == computepb.TaskState_TASK_STATE_RUNNING {
			return nil, false
		}
		delete(s.tasks, t.id)
		if w := s.workers[t.worker]; w != nil {
			w.free++
		}
		return []*taskRun{t}, false
	}
	return nil, false
}

// fetchFailedError ends a stage attempt: a map output it needed is gone.
type fetchFailedError struct {
	shuffle, mapID int
	node, reason   string
}

func (e *fetchFailedError) Error() string {
	return fmt.Sprintf("client: fetch failed: shuffle %d map %d on node %s: %s", e.shuffle, e.mapID, e.node, e.reason)
}

// runJob computes parts of final through sink and returns their results,
// in the order of parts.
func (c *Context) runJob(ctx context.Context, final *node, action string, sink opSpec, parts []int) ([][]byte, error) {
	if err := final.lineageErr(); err != nil {
		return nil, err
	}
	c.jobMu.Lock()
	defer c.jobMu.Unlock()
	if c.endpoint == nil {
		return nil, errors.New("client: context is closed")
	}
	s := c.sched
	job := s.jobs
	s.jobs++
	c.events.emit("job_start", map[string]any{"job": job, "action": action})
	res, err := s.runJob(ctx, job, final, sink, parts)
	end := map[string]any{"job": job, "status": "succeeded", "error": ""}
	if err != nil {
		end["status"], end["error"] = "failed", err.Error()
	}
	c.events.emit("job_end", end)
	return res, err
}

// jobState tracks, within one job, which map stages it computed and which
// it reported skipped.
type jobState struct {
	job      int
	computed map[int]bool
	reported map[int]bool
}

func newJobState(job int) *jobState {
	return &jobState{job: job, computed: map[int]bool{}, reported: map[int]bool{}}
}

func (s *scheduler) runJob(ctx context.Context, job int, final *node, sink opSpec, parts []int) ([][]byte, error) {
	result := s.resultStage(final)
	js := newJobState(job)
	results := make([][]byte, len(parts))
	done := make([]bool, len(parts))
	var lastErr error
	for attempt := 0; attempt < s.c.opts.MaxStageAttempts; attempt++ {
		err := s.ensure(ctx, js, result.parents)
		if err == nil {
			var todo []int
			for i, p := range parts {
				if !done[i] {
					todo = append(todo, p)
				}
			}
			err = s.runStage(ctx, js, result, todo, sink, func(part int, res []byte) {
				for i, p := range parts {
					if p == part && !done[i] {
						results[i], done[i] = res, true
					}
				}
			})
			if err == nil {
				return results, nil
			}
		}
		var ff *fetchFailedError
		if !errors.As(err, &ff) {
			return nil, err
		}
		lastErr = err
	}
	return nil, fmt.Errorf("client: job %d gave up after %d stage attempts: %w", job, s.c.opts.MaxStageAttempts, lastErr)
}

// mapStage returns the stage that writes sd, made once per context.
func (s *scheduler) mapStage(sd *shuffleDep) *stage {
	if st := s.mapStages[sd.id]; st != nil {
		return st
	}
	s.stageIDs++
	st := &stage{id: s.stageIDs, final: sd.parent, shuffle: sd}
	s.mapStages[sd.id] = st
	for _, p := range shuffleDeps(sd.parent) {
		st.parents = append(st.parents, s.mapStage(p))
	}
	return st
}

// missing is the map partitions of st whose outputs are not registered.
func (s *scheduler) missing(st *stage) []int {
	outs := s.outputs[st.shuffle.id]
	if outs == nil {
		outs = make([]*computepb.MapLocation, st.final.parts)
		s.outputs[st.shuffle.id] = outs
	}
	var m []int
	for i, o := range outs {
		if o == nil {
			m = append(m, i)
		}
	}
	return m
}

// stageStep is one step of a job's plan: a map stage to skip (missing is
// empty) or to run for its missing partitions.
type stageStep struct {
	st      *stage
	missing []int
}

// planStages lists, parents first, what ensuring stages takes given the
// registered outputs. A stage whose outputs are all registered is skipped
// without looking at its parents (nothing of them is needed); otherwise
// its parents come first, then its missing partitions. Each stage appears
// once, however many paths lead to it.
func (s *scheduler) planStages(stages []*stage, visited map[int]bool) []stageStep {
	var steps []stageStep
	for _, st := range stages {
		if visited[st.id] {
			continue
		}
		visited[st.id] = true
		missing := s.missing(st)
		if len(missing) > 0 {
			steps = append(steps, s.planStages(st.parents, visited)...)
		}
		steps = append(steps, stageStep{st: st, missing: missing})
	}
	return steps
}

// ensure runs the plan of stages: it computes their missing outputs.
func (s *scheduler) ensure(ctx context.Context, js *jobState, stages []*stage) error {
	for _, step := range s.planStages(stages, map[int]bool{}) {
		st := step.st
		if len(step.missing) == 0 {
			if !js.computed[st.id] && !js.reported[st.id] {
				js.reported[st.id] = true
				s.c.events.emit("stage_skipped", map[string]any{"job": js.job, "stage": st.id, "name": st.name()})
			}
			continue
		}
		if err := s.runStage(ctx, js, st, step.missing, st.shuffle.write, nil); err != nil {
			return err
		}
		js.computed[st.id] = true
	}
	return nil
}

// runStage runs one attempt of st for parts.
func (s *scheduler) runStage(ctx context.Context, js *jobState, st *stage, parts []int, sink opSpec, onResult func(int, []byte)) error {
	c := s.c
	stageAttempt := st.attempts
	st.attempts++
	plan, inputs := buildPlan(st.final, sink)
	planBytes, err := json.Marshal(plan)
	if err != nil {
		return fmt.Errorf("client: stage %d: %w", st.id, err)
	}
	var shuffleInputs []*computepb.ShuffleInput
	for _, id := range inputs {
		in := &computepb.ShuffleInput{Shuffle: uint32(id)}
		for m, loc := range s.outputs[id] {
			if loc == nil {
				return &fetchFailedError{shuffle: id, mapID: m, reason: "map output not registered"}
			}
			in.Maps = append(in.Maps, loc)
		}
		shuffleInputs = append(shuffleInputs, in)
	}
	kind := st.kind()
	c.events.emit("stage_submitted", map[string]any{
		"job": js.job, "stage": st.id, "stage_attempt": stageAttempt, "kind": kind, "tasks": len(parts), "name": st.name(),
	})
	started := time.Now()
	s.prog.start(st.id, st.name(), len(parts))

	now := time.Now()
	pending := make([]*pendingTask, len(parts))
	for i, p := range parts {
		pending[i] = &pendingTask{part: p, prefs: preferredNodes(shuffleInputs, p), since: now}
	}
	running := map[uint64]*taskRun{}
	failures := map[int]int{}
	total, finished := len(parts), 0

	fail := func(err error) error {
		for id, t := range running {
			c.endpoint.Kill(t.worker, id)
		}
		c.events.emit("stage_completed", map[string]any{"stage": st.id, "stage_attempt": stageAttempt, "status": "failed"})
		s.prog.end(st.id, st.name(), "failed", time.Since(started))
		return err
	}
	taskEnd := func(t *taskRun, status, reason string) {
		c.events.emit("task_end", map[string]any{
			"stage": st.id, "stage_attempt": stageAttempt, "partition": t.part, "attempt": t.attempt, "task": t.id,
			"kind": kind, "worker": t.worker, "node": t.node, "status": status, "reason": reason,
			"duration_ms": time.Since(t.start).Milliseconds(),
		})
	}
	retryIn := time.NewTimer(time.Hour)
	defer retryIn.Stop()

	for len(pending) > 0 || len(running) > 0 {
		pending = s.assign(st, stageAttempt, kind, planBytes, shuffleInputs, pending, running)
		s.prog.update(st.id, finished, len(running), total)
		if len(pending) > 0 && len(running) == 0 && len(s.workers) == 0 {
			// Nothing runs and no worker is left: wait for one, bounded.
			retryIn.Reset(c.opts.HeartbeatTimeout)
		} else {
			retryIn.Reset(c.opts.LocalityWait)
		}
		var ev compute.Event
		select {
		case ev = <-c.endpoint.Events():
		case <-retryIn.C:
			if len(s.workers) == 0 && len(running) == 0 {
				return fail(fmt.Errorf("client: stage %d (%s): no workers left to run its tasks", st.id, st.name()))
			}
			continue
		case <-ctx.Done():
			return fail(ctx.Err())
		}
		ended, lost := s.handle(ev)
		for _, t := range ended {
			if running[t.id] == nil {
				continue // a task of an earlier attempt, or killed
			}
			delete(running, t.id)
			if lost {
				taskEnd(t, "lost", ev.Reason)
				pending = append(pending, &pendingTask{part: t.part, attempt: t.attempt + 1, prefs: preferredNodes(shuffleInputs, t.part), since: time.Now()})
				continue
			}
			u := ev.Update
			switch u.State {
			case computepb.TaskState_TASK_STATE_SUCCEEDED:
				taskEnd(t, "succeeded", "")
				finished++
				if st.shuffle != nil {
					s.outputs[st.shuffle.id][t.part] = &computepb.MapLocation{Node: t.node, Output: u.MapOutput}
				}
				if onResult != nil {
					onResult(t.part, u.Result)
				}
				if key := [2]int{st.id, t.part}; !s.accDone[key] {
					s.accDone[key] = true
					updates := map[uint32][]byte{}
					for _, a := range u.Accumulators {
						updates[a.Id] = a.Value
					}
					c.applyAccumulators(updates)
				}
			case computepb.TaskState_TASK_STATE_FAILED:
				taskEnd(t, "failed", u.Error)
				if ff := u.FetchFailure; ff != nil {
					s.lostOutput(int(ff.Shuffle), int(ff.Map))
					c.events.emit("fetch_failed", map[string]any{"shuffle": ff.Shuffle, "map": ff.Map, "node": ff.Node, "reason": ff.Reason})
					return fail(&fetchFailedError{shuffle: int(ff.Shuffle), mapID: int(ff.Map), node: ff.Node, reason: ff.Reason})
				}
				failures[t.part]++
				if failures[t.part] >= c.opts.MaxTaskFailures {
					return fail(fmt.Errorf("client: stage %d (%s): partition %d failed %d times; last error: %s",
						st.id, st.name(), t.part, failures[t.part], u.Error))
				}
				pending = append(pending, &pendingTask{part: t.part, attempt: t.attempt + 1, avoid: t.worker, since: time.Now()})
			default: // killed
				taskEnd(t, "killed", u.Error)
				pending = append(pending, &pendingTask{part: t.part, attempt: t.attempt + 1, since: time.Now()})
			}
		}
	}
	s.prog.update(st.id, finished, 0, total)
	s.prog.end(st.id, st.name(), "done", time.Since(started))
	c.events.emit("stage_completed", map[string]any{"stage": st.id, "stage_attempt": stageAttempt, "status": "succeeded"})
	return nil
}

// lostOutput forgets a map output; its recomputation commits with a
// higher epoch, so the node replaces whatever it still holds.
func (s *scheduler) lostOutput(shuffle, mapID int) {
	if outs := s.outputs[shuffle]; mapID < len(outs) {
		outs[mapID] = nil
	}
	s.epochs[[2]int{shuffle, mapID}]++
}

// assign gives pending tasks to free slots and returns those still
// pending. A task that prefers some nodes waits up to LocalityWait for a
// slot on one of them; a retried task avoids the worker it failed on when
// another has a free slot.
func (s *scheduler) assign(st *stage, stageAttempt int, kind string, plan []byte, inputs []*computepb.ShuffleInput, pending []*pendingTask, running map[uint64]*taskRun) []*pendingTask {
	c := s.c
	for _, wid := range slices.Clone(s.order) {
		w := s.workers[wid]
		for w != nil && w.free > 0 && len(pending) > 0 {
			i := pick(pending, w, c.opts.LocalityWait, len(s.order) > 1)
			if i < 0 {
				break
			}
			p := pending[i]
			s.taskIDs++
			t := &taskRun{id: s.taskIDs, stage: st, part: p.part, attempt: p.attempt, worker: wid, node: w.info.Node, start: time.Now()}
			rt := &computepb.RunTask{
				TaskId: t.id, Stage: uint32(st.id), StageAttempt: uint32(stageAttempt), Partition: uint32(p.part),
				Attempt: uint32(p.attempt), Kind: kind, Plan: plan, Inputs: inputs,
			}
			if st.shuffle != nil {
				rt.OutputShuffle = uint32(st.shuffle.id)
				rt.Epoch = 1 + s.epochs[[2]int{st.shuffle.id, p.part}]
			}
			if err := c.endpoint.Run(wid, rt); err != nil {
				break // the worker is going; its loss event follows
			}
			pending = slices.Delete(pending, i, i+1)
			w.free--
			s.tasks[t.id] = t
			running[t.id] = t
			c.events.emit("task_start", map[string]any{
				"stage": st.id, "stage_attempt": stageAttempt, "partition": t.part, "attempt": t.attempt, "task": t.id,
				"kind": kind, "worker": wid, "node": t.node,
			})
		}
	}
	return pending
}

// pick chooses the pending task to run on w, or -1.
func pick(pending []*pendingTask, w *workerState, wait time.Duration, others bool) int {
	fallback := -1
	for i, p := range pending {
		if p.avoid == w.info.ID && others {
			continue
		}
		if slices.Contains(p.prefs, w.info.Node) {
			return i
		}
		if fallback < 0 && (len(p.prefs) == 0 || time.Since(p.since) >= wait) {
			fallback = i
		}
	}
	return fallback
}

// preferredNodes are the nodes holding at least a fifth of a reduce
// partition's input bytes.
func preferredNodes(inputs []*computepb.ShuffleInput, part int) []string {
	if len(inputs) == 0 {
		return nil
	}
	bytes := map[string]uint64{}
	var total uint64
	for _, in := range inputs {
		for _, m := range in.Maps {
			if out := m.Output; out != nil && part < len(out.Lengths) {
				bytes[m.Node] += out.Lengths[part]
				total += out.Lengths[part]
			}
		}
	}
	var prefs []string
	for n, b := range bytes {
		if total > 0 && b*5 >= total {
			prefs = append(prefs, n)
		}
	}
	slices.Sort(prefs)
	return prefs
}
