package ui

import (
	"slices"
	"strings"

	"shoal/client/eventlog"
)

// model is what the UI knows of one application, built from its events
// only (apply), so that the live UI and the history server are the same
// code. It is owned by one goroutine (tracker); it has no lock.
type model struct {
	opts Options

	app      string
	env      *eventlog.AppStart
	start    int64 // ms
	end      int64 // ms; 0 while the application runs
	last     int64 // ts of the newest event
	status   string
	complete bool  // app_end seen
	events   int64 // applied

	jobs      []*job // in detail, oldest first, at most opts.MaxJobs
	jobByID   map[int]*job
	jobCounts map[string]int // by status, every job (running included)
	jobsTotal int

	stages         map[int]*stage
	stageCounts    map[string]int // attempts by status
	taskCounts     map[string]int // task ends by status, plus "running"
	fetchFailures  int
	shuffleWritten int64
	shuffleRemote  int64
	shuffleLocal   int64

	workers     map[string]*worker
	workerOrder []string
	nodes       map[string]*node
	nodeOrder   []string
	timeline    []timelineEvent

	rdds        map[int]*rdd
	blocks      map[blockKey]*block
	checkpoints map[string]*checkpointInfo
	ckptOrder   []string
}

type job struct {
	id       int
	action   string
	start    int64
	end      int64
	status   string // running, succeeded, failed
	err      string
	planMs   float64
	stageIDs []int // submitted or skipped, in order of first mention
	skipped  map[int]bool
	failed   int // stage attempts that failed
}

type stage struct {
	id       int
	name     string
	kind     string
	parents  []int
	shuffle  int
	jobs     []int
	attempts []*stageAttempt
}

type stageAttempt struct {
	stage, attempt, job  int
	submitted, completed int64
	status               string // running, succeeded, failed
	tasks                int    // submitted
	counts               map[string]int
	running              int
	totals               map[string]int64
	durationMs           int64 // of task ends with a duration, all
	detail               []*task
	byID                 map[uint64]*task
	forgotten            int // task attempts not kept in detail
	fetchFailures        []fetchFailure
	fetchFailuresTotal   int
}

type task struct {
	id          uint64
	partition   int
	attempt     int
	kind        string
	worker      string
	node        string
	locality    string
	speculative bool
	start, end  int64
	status      string
	reason      string
	durationMs  int64
	metrics     map[string]int64
}

type fetchFailure struct {
	ts        int64
	task      uint64
	partition int
	shuffle   int
	mapID     int
	node      string
	reason    string
}

type worker struct {
	id, node       string
	pid, slots     int
	added, lost    int64
	reason         string
	tasksRun       int
	tasksFailed    int
	running        int
	shuffleRead    int64
	shuffleWritten int64
}

type node struct {
	addr      string
	pid       int
	added     int64
	lost      int64 // 0 unless the node is lost now
	state     string
	reason    string
	lostCount int
	forgotOut int // map outputs forgotten when it was last lost
	forgotBlk int
	status    *eventlog.NodeStatus
}

type rdd struct {
	id         int
	name       string
	level      string
	partitions int
	persisted  bool
}

type blockKey struct {
	rdd, partition int
	where          string
}

type block struct {
	level  string
	bytes  int64
	onDisk bool
}

type checkpointInfo struct {
	name       string
	sequence   int64
	rdd        int
	partitions int
	written    map[int]int64 // bytes by partition
	uri        string
	reads      int
	first      int64
}

type timelineEvent struct {
	ts     int64
	kind   string // worker_added, worker_lost, node_lost, node_added
	what   string
	reason string
}

// Task and stage states besides the event log's statuses.
const (
	stateRunning    = "running"
	stateIncomplete = "incomplete"
	stateAlive      = "alive"
	stateLost       = "lost"
	stateTakenBack  = "taken back"
)

func newModel(opts Options) *model {
	return &model{
		opts: opts, status: stateRunning,
		jobByID: map[int]*job{}, jobCounts: map[string]int{},
		stages: map[int]*stage{}, stageCounts: map[string]int{}, taskCounts: map[string]int{},
		workers: map[string]*worker{}, nodes: map[string]*node{},
		rdds: map[int]*rdd{}, blocks: map[blockKey]*block{}, checkpoints: map[string]*checkpointInfo{},
	}
}

// apply folds one event into the model. It never fails: events out of
// the expected order (a log cut short, a listener that dropped some) are
// applied as far as they make sense.
func (m *model) apply(ev eventlog.Event) {
	m.events++
	ts := eventlog.Timestamp(ev)
	if m.start == 0 || ts < m.start {
		m.start = ts
	}
	m.last = max(m.last, ts)
	switch e := ev.(type) {
	case *eventlog.AppStart:
		m.app, m.env, m.start = e.App, e, e.TS
	case *eventlog.AppEnd:
		m.complete, m.end, m.status = true, e.TS, e.Status
		if m.app == "" {
			m.app = e.App
		}
	case *eventlog.JobStart:
		m.jobStart(e)
	case *eventlog.JobEnd:
		if j := m.jobByID[e.Job]; j != nil {
			m.jobCounts[j.status]--
			j.end, j.status, j.err, j.planMs = e.TS, e.Status, e.Error, e.PlanMs
			m.jobCounts[j.status]++
		}
	case *eventlog.StageSubmitted:
		m.stageSubmitted(e)
	case *eventlog.StageSkipped:
		m.stage(e.Stage, e.Name, eventlog.KindMap, e.Parents, e.Shuffle, e.Job)
		if j := m.jobByID[e.Job]; j != nil {
			j.addStage(e.Stage)
			j.skipped[e.Stage] = true
		}
	case *eventlog.StageCompleted:
		if a := m.attempt(e.Stage, e.StageAttempt); a != nil {
			m.stageCounts[a.status]--
			a.status, a.completed = e.Status, e.TS
			m.stageCounts[a.status]++
			if j := m.jobByID[a.job]; j != nil && e.Status == eventlog.StatusFailed {
				j.failed++
			}
		}
	case *eventlog.TaskStart:
		m.taskStart(e)
	case *eventlog.TaskEnd:
		m.taskEnd(e)
	case *eventlog.FetchFailed:
		m.fetchFailures++
		if a := m.attempt(e.Stage, e.StageAttempt); a != nil && e.Stage != 0 {
			a.fetchFailuresTotal++
			f := fetchFailure{ts: e.TS, task: e.Task, partition: e.Partition, shuffle: e.Shuffle, mapID: e.Map, node: e.Node, reason: e.Reason}
			a.fetchFailures = appendBounded(a.fetchFailures, f, m.opts.MaxFetchFailures)
		}
	case *eventlog.WorkerAdded:
		w := m.worker(e.Worker)
		w.node, w.pid, w.slots, w.added = e.Node, e.Pid, e.Slots, e.TS
		m.mark(e.TS, "worker_added", e.Worker, "")
	case *eventlog.WorkerLost:
		w := m.worker(e.Worker)
		w.lost, w.reason = e.TS, e.Reason
		if w.node == "" {
			w.node, w.pid = e.Node, e.Pid
		}
		m.mark(e.TS, "worker_lost", e.Worker, e.Reason)
	case *eventlog.NodeAdded:
		n := m.node(e.Node)
		n.pid = e.Pid
		if n.added == 0 {
			n.added = e.TS
		}
		if n.lost != 0 || e.Reason != "" {
			n.state, n.reason = stateTakenBack, e.Reason
			m.mark(e.TS, "node_added", e.Node, e.Reason)
		}
		n.lost = 0
	case *eventlog.NodeLost:
		n := m.node(e.Node)
		n.lost, n.state, n.reason, n.lostCount = e.TS, stateLost, e.Reason, n.lostCount+1
		n.forgotOut, n.forgotBlk = e.Outputs, e.Blocks
		if e.Pid != 0 {
			n.pid = e.Pid
		}
		for k := range m.blocks {
			if k.where == e.Node {
				delete(m.blocks, k)
			}
		}
		m.mark(e.TS, "node_lost", e.Node, e.Reason)
	case *eventlog.NodeStatus:
		m.node(e.Node).status = e
	case *eventlog.RDDPersisted:
		r := m.rdd(e.RDD)
		r.name, r.level, r.partitions, r.persisted = e.Name, e.Level, e.Partitions, true
	case *eventlog.RDDUnpersisted:
		if r := m.rdds[e.RDD]; r != nil {
			r.persisted = false
		}
		for k := range m.blocks {
			if k.rdd == e.RDD {
				delete(m.blocks, k)
			}
		}
	case *eventlog.BlockStored:
		r := m.rdd(e.RDD)
		if r.level == "" {
			r.level = e.Level
		}
		m.blocks[blockKey{e.RDD, e.Partition, e.Node}] = &block{level: e.Level, bytes: e.Bytes, onDisk: isDiskLevel(e.Level)}
	case *eventlog.BlockEvicted:
		k := blockKey{e.RDD, e.Partition, e.Node}
		if b := m.blocks[k]; b != nil && e.ToDisk {
			b.onDisk = true
		} else {
			delete(m.blocks, k)
		}
	case *eventlog.CheckpointWritten:
		c := m.checkpoint(e)
		c.written[e.Partition] = e.Bytes
	case *eventlog.CheckpointRead:
		m.checkpoint(&eventlog.CheckpointWritten{Meta: e.Meta, Checkpoint: e.Checkpoint}).reads++
	}
}

func (m *model) jobStart(e *eventlog.JobStart) {
	j := &job{id: e.Job, action: e.Action, start: e.TS, status: stateRunning, skipped: map[int]bool{}}
	if old := m.jobByID[e.Job]; old != nil {
		m.jobCounts[old.status]--
	} else {
		m.jobsTotal++
	}
	m.jobCounts[stateRunning]++
	m.jobByID[e.Job] = j
	m.jobs = append(m.jobs, j)
	for len(m.jobs) > m.opts.MaxJobs {
		m.forgetJob(m.jobs[0])
		m.jobs = m.jobs[1:]
	}
}

// forgetJob drops a job's detail and the stages no kept job uses.
func (m *model) forgetJob(j *job) {
	delete(m.jobByID, j.id)
	for _, id := range j.stageIDs {
		st := m.stages[id]
		if st == nil {
			continue
		}
		st.jobs = slices.DeleteFunc(st.jobs, func(x int) bool { return x == j.id })
		if len(st.jobs) == 0 {
			delete(m.stages, id)
		}
	}
}

func (j *job) addStage(id int) {
	if !slices.Contains(j.stageIDs, id) {
		j.stageIDs = append(j.stageIDs, id)
	}
}

func (m *model) stage(id int, name, kind string, parents []int, shuffle, jobID int) *stage {
	st := m.stages[id]
	if st == nil {
		st = &stage{id: id}
		m.stages[id] = st
	}
	st.name, st.kind, st.parents, st.shuffle = name, kind, parents, shuffle
	if !slices.Contains(st.jobs, jobID) {
		st.jobs = append(st.jobs, jobID)
	}
	return st
}

func (m *model) stageSubmitted(e *eventlog.StageSubmitted) {
	st := m.stage(e.Stage, e.Name, e.Kind, e.Parents, e.Shuffle, e.Job)
	a := &stageAttempt{
		stage: e.Stage, attempt: e.StageAttempt, job: e.Job, submitted: e.TS, status: stateRunning, tasks: e.Tasks,
		counts: map[string]int{}, totals: map[string]int64{}, byID: map[uint64]*task{},
	}
	st.attempts = append(st.attempts, a)
	m.stageCounts[stateRunning]++
	if j := m.jobByID[e.Job]; j != nil {
		j.addStage(e.Stage)
		delete(j.skipped, e.Stage)
	}
}

// attempt finds a stage attempt; the newest of that number (numbers are
// never reused, so there is one).
func (m *model) attempt(stageID, attempt int) *stageAttempt {
	st := m.stages[stageID]
	if st == nil {
		return nil
	}
	for i := len(st.attempts) - 1; i >= 0; i-- {
		if st.attempts[i].attempt == attempt {
			return st.attempts[i]
		}
	}
	return nil
}

func (m *model) taskStart(e *eventlog.TaskStart) {
	m.taskCounts[stateRunning]++
	w := m.worker(e.Worker)
	w.running++
	a := m.attempt(e.Stage, e.StageAttempt)
	if a == nil {
		return
	}
	a.running++
	t := &task{
		id: e.Task, partition: e.Partition, attempt: e.Attempt, kind: e.Kind, worker: e.Worker, node: e.Node,
		locality: e.Locality, speculative: e.Speculative, start: e.TS, status: stateRunning,
	}
	a.detail = append(a.detail, t)
	a.byID[t.id] = t
	if len(a.detail) > m.opts.MaxTasksPerStage {
		// Forget the oldest task attempt that ended, or else the oldest.
		i := slices.IndexFunc(a.detail, func(t *task) bool { return t.status != stateRunning })
		if i < 0 {
			i = 0
		}
		delete(a.byID, a.detail[i].id)
		a.detail = slices.Delete(a.detail, i, i+1)
		a.forgotten++
	}
}

func (m *model) taskEnd(e *eventlog.TaskEnd) {
	m.taskCounts[stateRunning]--
	m.taskCounts[e.Status]++
	written, remote, local := e.Metrics[eventlog.MetricShuffleBytesWritten], e.Metrics[eventlog.MetricShuffleRemoteBytes], e.Metrics[eventlog.MetricShuffleLocalBytes]
	m.shuffleWritten += written
	m.shuffleRemote += remote
	m.shuffleLocal += local
	w := m.worker(e.Worker)
	w.running--
	w.tasksRun++
	if e.Status != eventlog.StatusSucceeded {
		w.tasksFailed++
	}
	w.shuffleRead += remote + local
	w.shuffleWritten += written
	a := m.attempt(e.Stage, e.StageAttempt)
	if a == nil {
		return
	}
	a.running--
	a.counts[e.Status]++
	a.durationMs += e.DurationMs
	for k, v := range e.Metrics {
		a.totals[k] += v
	}
	if t := a.byID[e.Task]; t != nil {
		t.end, t.status, t.reason, t.durationMs, t.metrics = e.TS, e.Status, e.Reason, e.DurationMs, e.Metrics
	}
}

func (m *model) worker(id string) *worker {
	w := m.workers[id]
	if w == nil {
		w = &worker{id: id}
		m.workers[id] = w
		m.workerOrder = append(m.workerOrder, id)
	}
	return w
}

func (m *model) node(addr string) *node {
	n := m.nodes[addr]
	if n == nil {
		n = &node{addr: addr, state: stateAlive}
		m.nodes[addr] = n
		m.nodeOrder = append(m.nodeOrder, addr)
	}
	return n
}

func (m *model) rdd(id int) *rdd {
	r := m.rdds[id]
	if r == nil {
		r = &rdd{id: id}
		m.rdds[id] = r
	}
	return r
}

func (m *model) checkpoint(e *eventlog.CheckpointWritten) *checkpointInfo {
	uri := e.URI[:max(strings.LastIndexByte(e.URI, '/'), 0)] // the checkpoint's, without the partition's object
	name := e.Name
	if name == "" {
		name = uri // a log from before checkpoint_written had a name
	}
	c := m.checkpoints[name]
	if c == nil {
		c = &checkpointInfo{name: name, rdd: e.RDD, written: map[int]int64{}, uri: uri, first: e.TS}
		m.checkpoints[name] = c
		m.ckptOrder = append(m.ckptOrder, name)
	}
	if e.Sequence != 0 {
		c.sequence = e.Sequence
	}
	if e.Partitions != 0 {
		c.partitions = e.Partitions
	}
	return c
}

func (m *model) mark(ts int64, kind, what, reason string) {
	m.timeline = appendBounded(m.timeline, timelineEvent{ts: ts, kind: kind, what: what, reason: reason}, m.opts.MaxTimeline)
}

// appendBounded appends v, dropping the oldest element past limit.
func appendBounded[T any](s []T, v T, limit int) []T {
	s = append(s, v)
	if len(s) > limit {
		s = slices.Delete(s, 0, len(s)-limit)
	}
	return s
}

// isDiskLevel reports whether a block stored at level is on disk.
func isDiskLevel(level string) bool {
	return len(level) >= 8 && level[:8] == "DiskOnly"
}
