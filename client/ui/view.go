package ui

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"sort"

	"shoal/client/eventlog"
)

// The types of this file are what the pages show and what the REST API
// (/api/v1) returns as JSON: snapshots copied out of the model by its
// owner goroutine, so a page renders without holding anything. Times are
// Unix milliseconds, durations milliseconds, sizes bytes.

// Application is one application: the live driver's, or one event log's.
type Application struct {
	ID string `json:"id"`
	// Status is "running" (live, or a log still being written),
	// "incomplete" (a log without app_end: a driver killed, or still
	// running), or app_end's status.
	Status        string         `json:"status"`
	Complete      bool           `json:"complete"`
	Start         int64          `json:"start"`
	End           int64          `json:"end"`
	Last          int64          `json:"last_event"`
	DurationMs    int64          `json:"duration_ms"`
	Jobs          int            `json:"jobs"`
	JobsByStatus  map[string]int `json:"jobs_by_status"`
	StageAttempts map[string]int `json:"stage_attempts_by_status"`
	// Tasks counts task attempts by status; "running" are started and
	// not ended.
	Tasks         map[string]int `json:"tasks_by_status"`
	FetchFailures int            `json:"fetch_failures"`
	ShuffleBytes  ShuffleBytes   `json:"shuffle_bytes"`
	Events        int64          `json:"events"`
	// Dropped is the events the live UI could not queue (Options.
	// EventBuffer): if not zero, the figures miss them.
	Dropped int64 `json:"dropped_events"`
}

// ShuffleBytes sums the tasks' shuffle metrics.
type ShuffleBytes struct {
	Written    int64 `json:"written"`
	ReadRemote int64 `json:"read_remote"`
	ReadLocal  int64 `json:"read_local"`
}

// Job is one job (an action).
type Job struct {
	ID            int     `json:"id"`
	Action        string  `json:"action"`
	Status        string  `json:"status"`
	Error         string  `json:"error,omitempty"`
	Start         int64   `json:"start"`
	End           int64   `json:"end"`
	DurationMs    int64   `json:"duration_ms"`
	PlanMs        float64 `json:"plan_ms"`
	Stages        int     `json:"stages"`
	StagesDone    int     `json:"stages_done"`
	StagesSkipped int     `json:"stages_skipped"`
	// StagesFailed counts stage attempts that failed (and were retried,
	// or failed the job).
	StagesFailed int            `json:"stages_failed"`
	StageList    []JobStage     `json:"stage_list,omitempty"`
	Tasks        map[string]int `json:"tasks_by_status"`
}

// JobStage is a stage of a job as its DAG shows it.
type JobStage struct {
	ID       int    `json:"id"`
	Name     string `json:"name"`
	Kind     string `json:"kind"`
	Parents  []int  `json:"parents"`
	Skipped  bool   `json:"skipped"`
	Attempts int    `json:"attempts"`
	Status   string `json:"status"` // of its newest attempt; "skipped"
	Tasks    int    `json:"tasks"`  // of its newest attempt
}

// StageAttempt is one attempt of a stage. Tasks and FetchFailures are
// filled by the stage-attempt endpoint only.
type StageAttempt struct {
	Stage      int    `json:"stage"`
	Attempt    int    `json:"attempt"`
	Job        int    `json:"job"`
	Jobs       []int  `json:"jobs"`
	Name       string `json:"name"`
	Kind       string `json:"kind"`
	Status     string `json:"status"`
	Submitted  int64  `json:"submitted"`
	Completed  int64  `json:"completed"`
	DurationMs int64  `json:"duration_ms"`
	NumTasks   int    `json:"num_tasks"`
	// TasksByStatus counts every task attempt; Running are started and
	// not ended.
	TasksByStatus map[string]int   `json:"tasks_by_status"`
	Running       int              `json:"running"`
	Totals        map[string]int64 `json:"totals"`
	TaskTimeMs    int64            `json:"task_time_ms"`
	// Kept is the task attempts kept in detail, Forgotten those that
	// were not (Options.MaxTasksPerStage).
	Kept               int           `json:"tasks_kept"`
	Forgotten          int           `json:"tasks_forgotten"`
	FetchFailuresTotal int           `json:"fetch_failures"`
	Quantiles          []Quantiles   `json:"quantiles,omitempty"`
	FetchFailures      []FetchFailed `json:"fetch_failure_list,omitempty"`
}

// Quantiles of one task metric over the succeeded task attempts kept in
// detail: min, 25th percentile, median, 75th percentile, max (nearest
// rank).
type Quantiles struct {
	Metric string   `json:"metric"`
	Values [5]int64 `json:"values"`
	Tasks  int      `json:"tasks"`
}

// Task is one task attempt.
type Task struct {
	Task        uint64           `json:"task"`
	Partition   int              `json:"partition"`
	Attempt     int              `json:"attempt"`
	Kind        string           `json:"kind"`
	Worker      string           `json:"worker"`
	Node        string           `json:"node"`
	Locality    string           `json:"locality"`
	Speculative bool             `json:"speculative"`
	Status      string           `json:"status"`
	Reason      string           `json:"reason,omitempty"`
	Start       int64            `json:"start"`
	End         int64            `json:"end"`
	DurationMs  int64            `json:"duration_ms"`
	Metrics     map[string]int64 `json:"metrics,omitempty"`
}

// TaskPage is a page of a stage attempt's tasks (kept in detail).
type TaskPage struct {
	Offset int    `json:"offset"`
	Total  int    `json:"total"`
	Tasks  []Task `json:"tasks"`
}

// FetchFailed is a fetch failure of a stage attempt.
type FetchFailed struct {
	TS        int64  `json:"ts"`
	Task      uint64 `json:"task"`
	Partition int    `json:"partition"`
	Shuffle   int    `json:"shuffle"`
	Map       int    `json:"map"`
	Node      string `json:"node"`
	Reason    string `json:"reason"`
}

// Worker is a worker process.
type Worker struct {
	ID       string `json:"id"`
	Node     string `json:"node"`
	Pid      int    `json:"pid"`
	Slots    int    `json:"slots"`
	State    string `json:"state"` // alive or lost
	Added    int64  `json:"added"`
	Lost     int64  `json:"lost"`
	Reason   string `json:"reason,omitempty"`
	TasksRun int    `json:"tasks_run"`
	// TasksFailed counts its task attempts that did not succeed: failed,
	// killed, or lost with it.
	TasksFailed    int   `json:"tasks_failed"`
	Running        int   `json:"running"`
	ShuffleRead    int64 `json:"shuffle_read_bytes"`
	ShuffleWritten int64 `json:"shuffle_written_bytes"`
}

// Node is a node service.
type Node struct {
	Addr  string `json:"addr"`
	Pid   int    `json:"pid"`
	State string `json:"state"` // alive, lost, taken back
	// Reason is why it was lost, or why it was taken back.
	Reason           string `json:"reason,omitempty"`
	Added            int64  `json:"added"`
	Lost             int64  `json:"lost"`
	TimesLost        int    `json:"times_lost"`
	OutputsForgotten int    `json:"outputs_forgotten"`
	BlocksForgotten  int    `json:"blocks_forgotten"`
	// Status is the node's last node_status, if any.
	Status *NodeStatus `json:"status,omitempty"`
}

// NodeStatus is what a node reported holding.
type NodeStatus struct {
	TS   int64    `json:"ts"`
	Dirs []string `json:"dirs"`
	// DirsUsage is the bytes each directory holds (map outputs and cached
	// blocks), when the node says.
	DirsUsage    []DirUsage `json:"dirs_usage,omitempty"`
	Apps         int        `json:"apps"`
	MapOutputs   int        `json:"map_outputs"`
	OutputBytes  int64      `json:"output_bytes"`
	MemoryBlocks int        `json:"memory_blocks"`
	MemoryBytes  int64      `json:"memory_bytes"`
	MemoryLimit  int64      `json:"memory_limit"`
	DiskBlocks   int        `json:"disk_blocks"`
	DiskBytes    int64      `json:"disk_bytes"`
	Evictions    int64      `json:"evictions"`
}

// DirUsage is what one of a node's directories holds.
type DirUsage struct {
	Dir   string `json:"dir"`
	Bytes int64  `json:"bytes"`
}

// RDDStorage is a persisted (or once persisted) RDD.
type RDDStorage struct {
	RDD        int    `json:"rdd"`
	Name       string `json:"name"`
	Level      string `json:"level"`
	Persisted  bool   `json:"persisted"`
	Partitions int    `json:"partitions"` // 0 if unknown
	// Cached is the partitions with at least one block; Replicas the
	// blocks (a partition held on two nodes counts twice).
	Cached      int           `json:"cached"`
	Replicas    int           `json:"replicas"`
	MemoryBytes int64         `json:"memory_bytes"`
	DiskBytes   int64         `json:"disk_bytes"`
	Nodes       []NodeStorage `json:"nodes"`
}

// NodeStorage is an RDD's blocks on one node (or a worker's heap).
type NodeStorage struct {
	Where       string `json:"where"`
	Blocks      int    `json:"blocks"`
	MemoryBytes int64  `json:"memory_bytes"`
	DiskBytes   int64  `json:"disk_bytes"`
}

// Checkpoint is a checkpoint written (or read) by the application.
type Checkpoint struct {
	Name       string `json:"name"`
	Sequence   int64  `json:"sequence"`
	RDD        int    `json:"rdd"`
	Partitions int    `json:"partitions"` // 0 if unknown
	Written    int    `json:"written"`
	Bytes      int64  `json:"bytes"`
	URI        string `json:"uri"`
	Reads      int    `json:"reads"`
}

// Environment is the driver's environment (app_start).
type Environment struct {
	App       string            `json:"app"`
	Pid       int               `json:"pid"`
	GoVersion string            `json:"go_version"`
	Version   string            `json:"version"`
	Command   []string          `json:"command"`
	Options   map[string]string `json:"options"`
}

// TimelineEvent is a worker or node event on the Jobs page's timeline.
type TimelineEvent struct {
	TS     int64  `json:"ts"`
	Kind   string `json:"kind"`
	What   string `json:"what"`
	Reason string `json:"reason,omitempty"`
}

// application describes the application; live says its events come
// from the driver itself, so that without app_end it is running rather
// than incomplete.
func (m *model) application(live bool) Application {
	a := Application{
		ID: m.app, Status: m.status, Complete: m.complete, Start: m.start, End: m.end, Last: m.last,
		Jobs: m.jobsTotal, JobsByStatus: nonZero(m.jobCounts), StageAttempts: nonZero(m.stageCounts),
		Tasks: nonZero(m.taskCounts), FetchFailures: m.fetchFailures, Events: m.events,
		ShuffleBytes: ShuffleBytes{Written: m.shuffleWritten, ReadRemote: m.shuffleRemote, ReadLocal: m.shuffleLocal},
	}
	end := m.end
	if !m.complete {
		end = m.last
		if !live {
			a.Status = stateIncomplete
		}
	}
	a.DurationMs = end - m.start
	return a
}

func nonZero[K comparable](c map[K]int) map[K]int {
	out := map[K]int{}
	for k, v := range c {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

func (m *model) jobList() []Job {
	out := make([]Job, 0, len(m.jobs))
	for i := len(m.jobs) - 1; i >= 0; i-- {
		out = append(out, m.jobView(m.jobs[i], false))
	}
	return out
}

func (m *model) jobView(j *job, stages bool) Job {
	v := Job{
		ID: j.id, Action: j.action, Status: j.status, Error: j.err, Start: j.start, End: j.end, PlanMs: j.planMs,
		Stages: len(j.stageIDs), StagesSkipped: len(j.skipped), StagesFailed: j.failed, Tasks: map[string]int{},
	}
	end := j.end
	if end == 0 {
		end = m.last
	}
	v.DurationMs = end - j.start
	for _, id := range j.stageIDs {
		st := m.stages[id]
		if st == nil {
			continue
		}
		js := JobStage{ID: id, Name: st.name, Kind: st.kind, Parents: orEmpty(st.parents), Skipped: j.skipped[id], Status: "skipped"}
		for _, a := range st.attempts {
			if a.job != j.id {
				continue
			}
			js.Attempts++
			js.Status, js.Tasks = a.status, a.tasks
			for s, n := range a.counts {
				v.Tasks[s] += n
			}
		}
		if js.Status == eventlog.StatusSucceeded {
			v.StagesDone++
		}
		if stages {
			v.StageList = append(v.StageList, js)
		}
	}
	return v
}

func orEmpty(s []int) []int {
	if s == nil {
		return []int{}
	}
	return s
}

// stageList is every stage attempt, newest first.
func (m *model) stageList() []StageAttempt {
	var out []StageAttempt
	for _, id := range slices.Sorted(maps.Keys(m.stages)) {
		st := m.stages[id]
		for _, a := range st.attempts {
			out = append(out, m.attemptView(st, a, false))
		}
	}
	slices.SortStableFunc(out, func(a, b StageAttempt) int {
		return cmp.Or(cmp.Compare(b.Submitted, a.Submitted), cmp.Compare(b.Stage, a.Stage), cmp.Compare(b.Attempt, a.Attempt))
	})
	return out
}

func (m *model) attemptView(st *stage, a *stageAttempt, detail bool) StageAttempt {
	v := StageAttempt{
		Stage: st.id, Attempt: a.attempt, Job: a.job, Jobs: slices.Clone(st.jobs), Name: st.name, Kind: st.kind, Status: a.status,
		Submitted: a.submitted, Completed: a.completed, NumTasks: a.tasks, TasksByStatus: nonZero(a.counts), Running: a.running,
		Totals: maps.Clone(a.totals), TaskTimeMs: a.durationMs, Kept: len(a.detail), Forgotten: a.forgotten,
		FetchFailuresTotal: a.fetchFailuresTotal,
	}
	end := a.completed
	if end == 0 {
		end = m.last
	}
	v.DurationMs = end - a.submitted
	if !detail {
		return v
	}
	v.Quantiles = quantiles(a.detail)
	for _, f := range a.fetchFailures {
		v.FetchFailures = append(v.FetchFailures, FetchFailed{TS: f.ts, Task: f.task, Partition: f.partition, Shuffle: f.shuffle, Map: f.mapID, Node: f.node, Reason: f.reason})
	}
	return v
}

// QuantileMetrics are the task metrics the stage page summarises, in
// its order; "duration_ms" is the task's duration.
func QuantileMetrics() []string {
	return []string{
		"duration_ms", eventlog.MetricRecordsIn, eventlog.MetricRecordsOut,
		eventlog.MetricShuffleLocalBytes, eventlog.MetricShuffleRemoteBytes, eventlog.MetricShuffleFetchWaitUs,
		eventlog.MetricShuffleBytesWritten, eventlog.MetricShuffleWriteTimeUs, eventlog.MetricSpillBytes,
	}
}

func quantiles(tasks []*task) []Quantiles {
	var ok []*task
	for _, t := range tasks {
		if t.status == eventlog.StatusSucceeded {
			ok = append(ok, t)
		}
	}
	if len(ok) == 0 {
		return nil
	}
	var out []Quantiles
	vals := make([]int64, len(ok))
	for _, name := range QuantileMetrics() {
		for i, t := range ok {
			if name == "duration_ms" {
				vals[i] = t.durationMs
			} else {
				vals[i] = t.metrics[name]
			}
		}
		out = append(out, Quantiles{Metric: name, Values: Quantile5(vals), Tasks: len(ok)})
	}
	return out
}

// Quantile5 returns the min, 25th percentile, median, 75th percentile
// and max of vals by nearest rank (index round(q·(n−1)) of the sorted
// values). It sorts vals.
func Quantile5(vals []int64) [5]int64 {
	slices.Sort(vals)
	var q [5]int64
	if len(vals) == 0 {
		return q
	}
	for i, p := range []float64{0, 0.25, 0.5, 0.75, 1} {
		q[i] = vals[int(math.Round(p*float64(len(vals)-1)))]
	}
	return q
}

func taskView(t *task) Task {
	return Task{
		Task: t.id, Partition: t.partition, Attempt: t.attempt, Kind: t.kind, Worker: t.worker, Node: t.node,
		Locality: t.locality, Speculative: t.speculative, Status: t.status, Reason: t.reason, Start: t.start, End: t.end,
		DurationMs: t.durationMs, Metrics: t.metrics,
	}
}

func (m *model) tasks(a *stageAttempt, offset, length int) TaskPage {
	p := TaskPage{Offset: offset, Total: len(a.detail), Tasks: []Task{}}
	for i := offset; i < len(a.detail) && i < offset+length; i++ {
		p.Tasks = append(p.Tasks, taskView(a.detail[i]))
	}
	return p
}

func (m *model) workerList() []Worker {
	out := make([]Worker, 0, len(m.workerOrder))
	for _, id := range m.workerOrder {
		w := m.workers[id]
		v := Worker{
			ID: w.id, Node: w.node, Pid: w.pid, Slots: w.slots, State: stateAlive, Added: w.added, Lost: w.lost, Reason: w.reason,
			TasksRun: w.tasksRun, TasksFailed: w.tasksFailed, Running: max(w.running, 0), ShuffleRead: w.shuffleRead, ShuffleWritten: w.shuffleWritten,
		}
		if w.lost != 0 {
			v.State = stateLost
		}
		out = append(out, v)
	}
	return out
}

func (m *model) nodeList() []Node {
	out := make([]Node, 0, len(m.nodeOrder))
	for _, addr := range m.nodeOrder {
		n := m.nodes[addr]
		v := Node{
			Addr: n.addr, Pid: n.pid, State: n.state, Reason: n.reason, Added: n.added, Lost: n.lost, TimesLost: n.lostCount,
			OutputsForgotten: n.forgotOut, BlocksForgotten: n.forgotBlk,
		}
		if s := n.status; s != nil {
			v.Status = &NodeStatus{
				TS: s.TS, Dirs: s.Dirs, Apps: s.Apps, MapOutputs: s.MapOutputs, OutputBytes: s.OutputBytes,
				MemoryBlocks: s.MemoryBlocks, MemoryBytes: s.MemoryBytes, MemoryLimit: s.MemoryLimit,
				DiskBlocks: s.DiskBlocks, DiskBytes: s.DiskBytes, Evictions: s.Evictions,
			}
			if len(s.DirBytes) == len(s.Dirs) {
				for i, d := range s.Dirs {
					v.Status.DirsUsage = append(v.Status.DirsUsage, DirUsage{Dir: d, Bytes: s.DirBytes[i]})
				}
			}
		}
		out = append(out, v)
	}
	return out
}

func (m *model) storage() []RDDStorage {
	byRDD := map[int]*RDDStorage{}
	nodes := map[int]map[string]*NodeStorage{}
	parts := map[int]map[int]bool{}
	for id, r := range m.rdds {
		byRDD[id] = &RDDStorage{RDD: id, Name: r.name, Level: r.level, Persisted: r.persisted, Partitions: r.partitions, Nodes: []NodeStorage{}}
		nodes[id], parts[id] = map[string]*NodeStorage{}, map[int]bool{}
	}
	for k, b := range m.blocks {
		v := byRDD[k.rdd]
		if v == nil {
			continue
		}
		ns := nodes[k.rdd][k.where]
		if ns == nil {
			ns = &NodeStorage{Where: k.where}
			nodes[k.rdd][k.where] = ns
		}
		ns.Blocks++
		v.Replicas++
		parts[k.rdd][k.partition] = true
		if b.onDisk {
			ns.DiskBytes += b.bytes
			v.DiskBytes += b.bytes
		} else {
			ns.MemoryBytes += b.bytes
			v.MemoryBytes += b.bytes
		}
	}
	out := []RDDStorage{}
	for _, id := range slices.Sorted(maps.Keys(byRDD)) {
		v := byRDD[id]
		v.Cached = len(parts[id])
		for _, w := range slices.Sorted(maps.Keys(nodes[id])) {
			v.Nodes = append(v.Nodes, *nodes[id][w])
		}
		out = append(out, *v)
	}
	return out
}

func (m *model) checkpointList() []Checkpoint {
	out := []Checkpoint{}
	for _, name := range m.ckptOrder {
		c := m.checkpoints[name]
		v := Checkpoint{Name: c.name, Sequence: c.sequence, RDD: c.rdd, Partitions: c.partitions, Written: len(c.written), URI: c.uri, Reads: c.reads}
		for _, b := range c.written {
			v.Bytes += b
		}
		out = append(out, v)
	}
	return out
}

func (m *model) environment() Environment {
	v := Environment{App: m.app, Command: []string{}, Options: map[string]string{}}
	if e := m.env; e != nil {
		v.Pid, v.GoVersion, v.Version = e.Pid, e.GoVersion, e.Version
		if e.Command != nil {
			v.Command = e.Command
		}
		if e.Options != nil {
			v.Options = e.Options
		}
	}
	return v
}

func (m *model) timelineView() []TimelineEvent {
	out := make([]TimelineEvent, len(m.timeline))
	for i, e := range m.timeline {
		out[i] = TimelineEvent{TS: e.ts, Kind: e.kind, What: e.what, Reason: e.reason}
	}
	return out
}

// sortedKeys is for templates: a map's keys in order.
func sortedKeys[V any](mp map[string]V) []string {
	keys := slices.Collect(maps.Keys(mp))
	sort.Strings(keys)
	return keys
}
