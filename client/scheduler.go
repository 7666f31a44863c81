package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"shoal/client/eventlog"
	"shoal/compute"
	"shoal/compute/computepb"
)

// scheduler runs jobs: it submits each stage's missing partitions as tasks
// to the workers' slots, tracks where map outputs live, and reacts to lost
// workers and nodes, failed tasks and fetch failures (failure.go). One
// stage attempt at a time runs (stagerun.go). Everything here belongs to
// the loop's goroutine (loop.go); nothing else touches it.
type scheduler struct {
	c     *Context
	ep    taskEndpoint
	cl    cluster
	nodes nodeService

	// The loop's own (loop.go).
	loopStarted bool            // loop runs or has run; set before it starts
	closing     bool            // Close's request was served: the loop ends
	deferred    []*request      // requests that came while a job ran
	running     int             // the job running, or -1
	doneq       chan func()     // continuations of async work
	life        context.Context // ends with the loop: async work stops
	endLife     context.CancelFunc
	inflight    sync.WaitGroup // async goroutines

	workers map[string]*workerState
	order   []string            // worker IDs in order of arrival
	tasks   map[uint64]*taskRun // every task sent and not yet ended

	mapStages map[int]*stage // by shuffle id
	outputs   map[int][]*computepb.MapLocation
	epochs    map[[2]int]uint64 // (shuffle, map) → epoch of its next commit
	// lostOutputs counts the map outputs found lost: a stage attempt
	// checks its inputs again when it changes (stageRun.inputsLost).
	lostOutputs int
	accDone     map[[2]int]bool // (stage, partition) whose accumulator updates were applied
	attempts    map[[2]int]int  // (stage, partition) → number of its next task attempt

	blocks     map[blockKey][]string // cached partition → where it is held (node addresses, worker IDs)
	broadcasts map[int][]byte        // by ID, for nodes started later

	lostNodes map[string]bool // shuffle server addresses declared lost
	// ckptManifestBusy: a checkpoint's manifest is being written off
	// the loop (ckptnode.go: one at a time).
	ckptManifestBusy bool
	lastRevive       time.Time   // when a job's start last probed the lost nodes
	reviving         bool        // a probe of the lost nodes is under way
	replacements     map[int]int // local node index → workers started to replace lost ones

	stageIDs int
	jobs     int
	planTime time.Duration // of the running job: cutting stages and building plans
	planned  time.Duration // of every job so far
	taskIDs  uint64
	prog     *progress
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
	shuffleAddr   string // the shuffle server its map output goes to
	start         time.Time
}

// pendingTask is a partition waiting for a slot.
type pendingTask struct {
	part   int
	prefs  []string // nodes it prefers
	avoid  string   // a worker it failed on, or the one running the original of a backup
	backup bool     // a speculative copy: never on avoid
	since  time.Time
}

func newScheduler(c *Context, ep taskEndpoint, cl cluster, nodes nodeService) *scheduler {
	s := &scheduler{
		c: c, ep: ep, cl: cl, nodes: nodes, running: -1, doneq: make(chan func()),
		workers: map[string]*workerState{}, tasks: map[uint64]*taskRun{},
		mapStages: map[int]*stage{}, outputs: map[int][]*computepb.MapLocation{},
		epochs: map[[2]int]uint64{}, accDone: map[[2]int]bool{}, attempts: map[[2]int]int{},
		blocks: map[blockKey][]string{}, broadcasts: map[int][]byte{},
		lostNodes: map[string]bool{}, replacements: map[int]int{},
		prog: newProgress(c.opts.Progress),
	}
	s.life, s.endLife = context.WithCancel(context.Background())
	return s
}

// awaitWorkers waits until n workers have connected.
func (s *scheduler) awaitWorkers(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for len(s.workers) < n {
		select {
		case ev, ok := <-s.ep.Events():
			if !ok {
				return errors.New("client: the driver endpoint closed")
			}
			s.handle(ev)
		case f := <-s.doneq:
			f()
		case err := <-s.cl.Failures():
			return fmt.Errorf("client: %d of %d workers connected: %w", len(s.workers), n, err)
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
		s.c.events.Write(&eventlog.WorkerAdded{Worker: ev.Worker.ID, Node: ev.Worker.Node, Pid: ev.Worker.Pid, Slots: ev.Worker.Slots})
	case compute.WorkerLost:
		delete(s.workers, ev.Worker.ID)
		s.order = slices.DeleteFunc(s.order, func(id string) bool { return id == ev.Worker.ID })
		s.c.events.Write(&eventlog.WorkerLost{Worker: ev.Worker.ID, Node: ev.Worker.Node, Pid: ev.Worker.Pid, Reason: ev.Reason})
		for id, t := range s.tasks {
			if t.worker == ev.Worker.ID {
				delete(s.tasks, id)
				ended = append(ended, t)
			}
		}
		slices.SortFunc(ended, func(a, b *taskRun) int { return cmp.Compare(a.id, b.id) })
		s.workerLost(ev.Worker)
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

// usable reports whether tasks may be placed on w: its node is not lost.
func (s *scheduler) usable(w *workerState) bool {
	return !s.lostNodes[w.info.Node] && !s.lostNodes[w.info.ShuffleAddr]
}

// usableWorkers counts the workers tasks may be placed on.
func (s *scheduler) usableWorkers() int {
	n := 0
	for _, w := range s.workers {
		if s.usable(w) {
			n++
		}
	}
	return n
}

// runJob computes parts of final through sink and returns their results,
// in the order of parts.
func (c *Context) runJob(ctx context.Context, final *node, action string, sink opSpec, parts []int) ([][]byte, error) {
	if err := final.lineageErr(); err != nil {
		return nil, err
	}
	var res [][]byte
	c.jobsRunning.Add(1)
	defer c.jobsRunning.Add(-1)
	err := c.call(ctx, func(s *scheduler) error {
		var err error
		res, err = s.job(ctx, final, action, sink, parts)
		return err
	})
	return res, err
}

// job runs one job on the loop.
func (s *scheduler) job(ctx context.Context, final *node, action string, sink opSpec, parts []int) ([][]byte, error) {
	job := s.jobs
	s.jobs++
	s.running = job
	defer func() { s.running = -1 }()
	s.c.events.Write(&eventlog.JobStart{Job: job, Action: action})
	s.planTime = 0
	// Checkpoints through the nodes completed since the last job are
	// truncated now, between jobs; one that failed fails this job.
	err := s.settleCheckpoints()
	var res [][]byte
	if err == nil {
		res, err = s.runJob(ctx, job, final, sink, parts)
	}
	if err == nil {
		err = s.finishCheckpoints(ctx, job)
	}
	s.planned += s.planTime
	end := &eventlog.JobEnd{Job: job, Status: eventlog.StatusSucceeded, PlanMs: float64(s.planTime.Microseconds()) / 1000}
	if err != nil {
		end.Status, end.Error = eventlog.StatusFailed, err.Error()
	}
	s.c.events.Write(end)
	return res, err
}

// PlanTime is the time the driver has spent planning jobs (cutting
// stages, building task plans) since it started; job_end events carry
// each job's (plan_ms).
func (c *Context) PlanTime() time.Duration {
	var d time.Duration
	c.call(context.Background(), func(s *scheduler) error { d = s.planned; return nil })
	return d
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

// runJob runs the job's plan until its result stage has every partition.
// A stage attempt that ends on fetch failures has already unregistered
// what was lost; the plan is then run again, which recomputes only that,
// and the stage is resubmitted. A stage that fails MaxStageAttempts
// attempts in a row on fetch failures fails the job.
func (s *scheduler) runJob(ctx context.Context, job int, final *node, sink opSpec, parts []int) ([][]byte, error) {
	if len(s.lostNodes) > 0 && time.Since(s.lastRevive) >= jobReviveInterval {
		s.lastRevive = time.Now()
		probed, err := await(s, ctx, probeTimeout, s.probeLost())
		if err != nil {
			return nil, err
		}
		s.reviveNodes(probed)
	}
	result := s.resultStage(final)
	js := newJobState(job)
	results := newJobResults(parts, s.c.opts.MaxResultBytes)
	for {
		if s.closing {
			return nil, s.closedErr()
		}
		s.drain()
		err := s.ensure(ctx, js, s.needed(result))
		if err == nil {
			err = s.runStage(ctx, js, result, results.missing(), sink, results)
			if err == nil {
				return results.data, nil
			}
		}
		var ff *fetchFailedError
		if !errors.As(err, &ff) {
			return nil, err
		}
		if err := s.stageFetchFailed(ff); err != nil {
			return nil, fmt.Errorf("client: job %d: %w", job, err)
		}
	}
}

// mapStage returns the stage that writes sd, made once per context.
func (s *scheduler) mapStage(sd *shuffleDep) *stage {
	if st := s.mapStages[sd.id]; st != nil {
		return st
	}
	s.stageIDs++
	st := &stage{id: s.stageIDs, final: sd.parent, shuffle: sd}
	s.mapStages[sd.id] = st
	for _, p := range shuffleDeps(sd.parent, nil) {
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
			steps = append(steps, s.planStages(s.needed(st), visited)...)
		}
		steps = append(steps, stageStep{st: st, missing: missing})
	}
	return steps
}

// ensure runs the plan of stages: it computes their missing outputs.
func (s *scheduler) ensure(ctx context.Context, js *jobState, stages []*stage) error {
	start := time.Now()
	steps := s.planStages(stages, map[int]bool{})
	s.planTime += time.Since(start)
	for _, step := range steps {
		st := step.st
		if len(step.missing) == 0 {
			if !js.computed[st.id] && !js.reported[st.id] {
				js.reported[st.id] = true
				s.c.events.Write(&eventlog.StageSkipped{Job: js.job, Stage: st.id, Name: st.name(), Parents: st.parentIDs(), Shuffle: st.shuffleID()})
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

// lostOutput forgets a map output; its recomputation commits with a
// higher epoch, so the node replaces whatever it still holds.
func (s *scheduler) lostOutput(shuffle, mapID int) {
	if outs := s.outputs[shuffle]; mapID < len(outs) {
		outs[mapID] = nil
	}
	s.epochs[[2]int{shuffle, mapID}]++
	s.lostOutputs++
}

// nextAttempt numbers a new task attempt of a partition of st. Attempt
// numbers are never reused for a partition, across stage attempts and
// jobs: a map output's files are named by its attempt, and a commit of an
// attempt already committed is taken for a retry of it.
func (s *scheduler) nextAttempt(st *stage, part int) int {
	key := [2]int{st.id, part}
	a := s.attempts[key]
	s.attempts[key]++
	return a
}

// pick chooses the pending task to run on w, or -1. A task that prefers
// some nodes waits up to wait for a slot on one of them; a retried task
// avoids the worker it failed on when others exist, and a backup copy
// never runs on the worker of its original.
func pick(pending []*pendingTask, w *workerState, wait time.Duration, others bool) int {
	fallback := -1
	for i, p := range pending {
		if p.avoid == w.info.ID && (others || p.backup) {
			continue
		}
		if slices.Contains(p.prefs, w.info.Node) || w.info.ShuffleAddr != "" && slices.Contains(p.prefs, w.info.ShuffleAddr) || slices.Contains(p.prefs, w.info.ID) {
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
