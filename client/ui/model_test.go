package ui

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"shoal/client/eventlog"
)

// scenario is a small application as its driver would log it: two nodes,
// two workers, a job whose map stage loses a worker mid-stage and whose
// result stage hits a fetch failure and runs again, then a job that skips
// the map stage, a persisted RDD and a checkpoint.
func scenario() []eventlog.Event {
	ts := int64(1_000_000)
	at := func(d int64) eventlog.Meta { ts += d; return eventlog.Meta{TS: ts} }
	task := func(stage, sa, part, attempt int, id uint64, kind, w, n string) eventlog.TaskAttempt {
		return eventlog.TaskAttempt{Stage: stage, StageAttempt: sa, Partition: part, Attempt: attempt, Task: id, Kind: kind, Worker: w, Node: n}
	}
	evs := []eventlog.Event{
		&eventlog.AppStart{Meta: at(0), App: "app1", Pid: 42, GoVersion: "go1.x", Command: []string{"shoal", "run"}, Options: map[string]string{"Nodes": "2"}},
		&eventlog.NodeAdded{Meta: at(1), Node: "n1", Addr: "n1", Pid: 10},
		&eventlog.NodeAdded{Meta: at(1), Node: "n2", Addr: "n2", Pid: 11},
		&eventlog.WorkerAdded{Meta: at(1), Worker: "w1", Node: "n1", Pid: 20, Slots: 2},
		&eventlog.WorkerAdded{Meta: at(1), Worker: "w2", Node: "n2", Pid: 21, Slots: 2},
		&eventlog.RDDPersisted{Meta: at(1), RDD: 3, Name: "words", Partitions: 2, Level: "MemorySer"},
		&eventlog.JobStart{Meta: at(10), Job: 0, Action: "collect"},
		&eventlog.StageSubmitted{Meta: at(1), Job: 0, Stage: 1, StageAttempt: 0, Kind: "map", Tasks: 2, Name: "map#3", Shuffle: 1},
		&eventlog.TaskStart{Meta: at(1), TaskAttempt: task(1, 0, 0, 0, 1, "map", "w1", "n1"), Locality: "no_pref"},
		&eventlog.TaskStart{Meta: at(1), TaskAttempt: task(1, 0, 1, 0, 2, "map", "w2", "n2"), Locality: "no_pref"},
		&eventlog.TaskEnd{Meta: at(100), TaskAttempt: task(1, 0, 0, 0, 1, "map", "w1", "n1"), Status: "succeeded", DurationMs: 100,
			Metrics: map[string]int64{"records_in": 10, "records_out": 10, "shuffle_bytes_written": 1000}},
		&eventlog.WorkerLost{Meta: at(5), Worker: "w2", Node: "n2", Pid: 21, Reason: "stream broken"},
		&eventlog.TaskEnd{Meta: at(0), TaskAttempt: task(1, 0, 1, 0, 2, "map", "w2", "n2"), Status: "lost", Reason: "stream broken", DurationMs: 105},
		&eventlog.BlockStored{Meta: at(1), Block: eventlog.Block{RDD: 3, Partition: 0, Level: "MemorySer", Node: "n1"}, Bytes: 500},
		&eventlog.TaskStart{Meta: at(1), TaskAttempt: task(1, 0, 1, 1, 3, "map", "w1", "n1"), Locality: "any"},
		&eventlog.TaskEnd{Meta: at(300), TaskAttempt: task(1, 0, 1, 1, 3, "map", "w1", "n1"), Status: "succeeded", DurationMs: 300,
			Metrics: map[string]int64{"records_in": 20, "records_out": 20, "shuffle_bytes_written": 3000}},
		&eventlog.StageCompleted{Meta: at(1), Stage: 1, StageAttempt: 0, Status: "succeeded"},
		&eventlog.StageSubmitted{Meta: at(1), Job: 0, Stage: 2, StageAttempt: 0, Kind: "result", Tasks: 1, Name: "collect#5", Parents: []int{1}},
		&eventlog.TaskStart{Meta: at(1), TaskAttempt: task(2, 0, 0, 0, 4, "result", "w1", "n1")},
		&eventlog.TaskEnd{Meta: at(10), TaskAttempt: task(2, 0, 0, 0, 4, "result", "w1", "n1"), Status: "failed", Reason: "fetch failed", DurationMs: 10},
		&eventlog.FetchFailed{Meta: at(0), Shuffle: 1, Map: 1, Node: "n2", Reason: "unavailable", Stage: 2, StageAttempt: 0, Partition: 0, Task: 4},
		&eventlog.StageCompleted{Meta: at(200), Stage: 2, StageAttempt: 0, Status: "failed"},
		&eventlog.StageSubmitted{Meta: at(1), Job: 0, Stage: 2, StageAttempt: 1, Kind: "result", Tasks: 1, Name: "collect#5", Parents: []int{1}},
		&eventlog.TaskStart{Meta: at(1), TaskAttempt: task(2, 1, 0, 1, 5, "result", "w1", "n1")},
		&eventlog.TaskEnd{Meta: at(50), TaskAttempt: task(2, 1, 0, 1, 5, "result", "w1", "n1"), Status: "succeeded", DurationMs: 50,
			Metrics: map[string]int64{"records_in": 30, "records_out": 3, "shuffle_read_remote_bytes": 3000, "shuffle_read_local_bytes": 1000}},
		&eventlog.StageCompleted{Meta: at(1), Stage: 2, StageAttempt: 1, Status: "succeeded"},
		&eventlog.JobEnd{Meta: at(1), Job: 0, Status: "succeeded", PlanMs: 0.5},
		&eventlog.JobStart{Meta: at(10), Job: 1, Action: "count"},
		&eventlog.StageSkipped{Meta: at(1), Job: 1, Stage: 1, Name: "map#3", Shuffle: 1},
		&eventlog.StageSubmitted{Meta: at(1), Job: 1, Stage: 3, StageAttempt: 0, Kind: "result", Tasks: 1, Name: "count#6", Parents: []int{1}},
		&eventlog.TaskStart{Meta: at(1), TaskAttempt: task(3, 0, 0, 0, 6, "result", "w1", "n1")},
		&eventlog.TaskEnd{Meta: at(20), TaskAttempt: task(3, 0, 0, 0, 6, "result", "w1", "n1"), Status: "succeeded", DurationMs: 20},
		&eventlog.StageCompleted{Meta: at(1), Stage: 3, StageAttempt: 0, Status: "succeeded"},
		&eventlog.JobEnd{Meta: at(1), Job: 1, Status: "succeeded"},
		&eventlog.BlockStored{Meta: at(1), Block: eventlog.Block{RDD: 3, Partition: 1, Level: "MemorySer", Node: "n2"}, Bytes: 700},
		&eventlog.BlockEvicted{Meta: at(1), Block: eventlog.Block{RDD: 3, Partition: 1, Level: "MemorySer", Node: "n2"}, ToDisk: true},
		&eventlog.CheckpointWritten{Meta: at(1), Checkpoint: eventlog.Checkpoint{RDD: 7, Partition: 0, URI: "file:///c/ck/part-0"}, Name: "ck", Sequence: 9, Partitions: 2, Bytes: 64},
		&eventlog.NodeStatus{Meta: at(1), Node: "n1", Dirs: []string{"/d1"}, DirBytes: []int64{4500}, MapOutputs: 2, OutputBytes: 4000, MemoryBlocks: 1, MemoryBytes: 500, MemoryLimit: 1000},
		&eventlog.NodeLost{Meta: at(1), Node: "n2", Addr: "n2", Pid: 11, Reason: "connection refused", Outputs: 1, Blocks: 1},
		&eventlog.AppEnd{Meta: at(1), App: "app1", Status: "succeeded"},
	}
	return evs
}

func build(opts Options, evs []eventlog.Event) *model {
	opts.EnsureDefaults()
	m := newModel(opts)
	for _, ev := range evs {
		m.apply(ev)
	}
	return m
}

func TestModelFigures(t *testing.T) {
	m := build(Options{}, scenario())
	a := m.application(false)
	for _, c := range []struct {
		what      string
		got, want any
	}{
		{"app id", a.ID, "app1"},
		{"status", a.Status, "succeeded"},
		{"jobs", a.Jobs, 2},
		{"succeeded jobs", a.JobsByStatus["succeeded"], 2},
		{"tasks succeeded", a.Tasks["succeeded"], 4},
		{"tasks lost", a.Tasks["lost"], 1},
		{"tasks failed", a.Tasks["failed"], 1},
		{"tasks running", a.Tasks["running"], 0},
		{"failed stage attempts", a.StageAttempts["failed"], 1},
		{"fetch failures", a.FetchFailures, 1},
		{"shuffle written", a.ShuffleBytes.Written, int64(4000)},
		{"shuffle fetched", a.ShuffleBytes.ReadRemote, int64(3000)},
	} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	j0 := m.jobView(m.jobByID[0], true)
	if j0.StagesDone != 2 || j0.StagesFailed != 1 || j0.StagesSkipped != 0 || len(j0.StageList) != 2 || j0.StageList[1].Attempts != 2 {
		t.Errorf("job 0: %+v", j0)
	}
	j1 := m.jobView(m.jobByID[1], true)
	if j1.StagesSkipped != 1 || j1.StagesDone != 1 || !j1.StageList[0].Skipped {
		t.Errorf("job 1: %+v", j1)
	}
	st := m.attemptView(m.stages[1], m.attempt(1, 0), true)
	if st.TasksByStatus["succeeded"] != 2 || st.TasksByStatus["lost"] != 1 || st.Totals["records_in"] != 30 || st.Kept != 3 {
		t.Errorf("stage 1: %+v", st)
	}
	if q := st.Quantiles[0]; q.Metric != "duration_ms" || q.Values != [5]int64{100, 100, 300, 300, 300} || q.Tasks != 2 {
		t.Errorf("stage 1 duration quantiles: %+v", q)
	}
	rerun := m.attemptView(m.stages[2], m.attempt(2, 0), true)
	if rerun.Status != "failed" || len(rerun.FetchFailures) != 1 || rerun.FetchFailures[0].Node != "n2" {
		t.Errorf("stage 2 attempt 0: %+v", rerun)
	}
	ws := m.workerList()
	if len(ws) != 2 || ws[1].State != "lost" || ws[1].Reason != "stream broken" || ws[0].TasksRun != 5 || ws[1].TasksFailed != 1 || ws[0].Slots != 2 {
		t.Errorf("workers: %+v", ws)
	}
	ns := m.nodeList()
	if len(ns) != 2 || ns[0].Status == nil || ns[0].Status.MemoryLimit != 1000 || ns[1].State != "lost" || ns[1].Reason != "connection refused" ||
		!slices.Equal(ns[0].Status.DirsUsage, []DirUsage{{Dir: "/d1", Bytes: 4500}}) {
		t.Errorf("nodes: %+v", ns)
	}
	// n2 was lost: its block is forgotten.
	sto := m.storage()
	if len(sto) != 1 || sto[0].Cached != 1 || sto[0].Partitions != 2 || sto[0].MemoryBytes != 500 || sto[0].DiskBytes != 0 || sto[0].Name != "words" {
		t.Errorf("storage: %+v", sto)
	}
	ck := m.checkpointList()
	if len(ck) != 1 || ck[0].Name != "ck" || ck[0].Bytes != 64 || ck[0].Written != 1 || ck[0].Partitions != 2 || ck[0].URI != "file:///c/ck" {
		t.Errorf("checkpoints: %+v", ck)
	}
	if env := m.environment(); env.Pid != 42 || env.Options["Nodes"] != "2" {
		t.Errorf("environment: %+v", env)
	}
}

// TestModelBounds keeps the detail within its bounds while every count
// stays exact.
func TestModelBounds(t *testing.T) {
	var evs []eventlog.Event
	const jobs, tasks = 10, 50
	for j := range jobs {
		evs = append(evs, &eventlog.JobStart{Meta: eventlog.Meta{TS: 1}, Job: j},
			&eventlog.StageSubmitted{Meta: eventlog.Meta{TS: 1}, Job: j, Stage: j + 1, Kind: "result", Tasks: tasks})
		for p := range tasks {
			ta := eventlog.TaskAttempt{Stage: j + 1, Partition: p, Task: uint64(j*tasks + p + 1), Worker: "w"}
			evs = append(evs, &eventlog.TaskStart{Meta: eventlog.Meta{TS: 1}, TaskAttempt: ta},
				&eventlog.TaskEnd{Meta: eventlog.Meta{TS: 2}, TaskAttempt: ta, Status: "succeeded", DurationMs: int64(p)})
		}
		evs = append(evs, &eventlog.StageCompleted{Meta: eventlog.Meta{TS: 3}, Stage: j + 1, Status: "succeeded"},
			&eventlog.JobEnd{Meta: eventlog.Meta{TS: 3}, Job: j, Status: "succeeded"})
	}
	m := build(Options{MaxJobs: 3, MaxTasksPerStage: 7}, evs)
	a := m.application(false)
	if a.Jobs != jobs || a.JobsByStatus["succeeded"] != jobs || a.Tasks["succeeded"] != jobs*tasks {
		t.Errorf("counts: %+v", a)
	}
	if got := m.jobList(); len(got) != 3 || got[0].ID != jobs-1 {
		t.Errorf("jobs kept: %d, newest %d", len(got), got[0].ID)
	}
	if len(m.stages) != 3 {
		t.Errorf("%d stages kept, want those of the 3 jobs kept", len(m.stages))
	}
	st := m.attemptView(m.stages[jobs], m.attempt(jobs, 0), true)
	if st.Kept != 7 || st.Forgotten != tasks-7 || st.TasksByStatus["succeeded"] != tasks {
		t.Errorf("stage: kept %d forgotten %d succeeded %d", st.Kept, st.Forgotten, st.TasksByStatus["succeeded"])
	}
	if p := m.tasks(m.attempt(jobs, 0), 0, 100); p.Tasks[0].Partition != tasks-7 {
		t.Errorf("the newest tasks are kept: first kept is partition %d", p.Tasks[0].Partition)
	}
}

func TestQuantile5(t *testing.T) {
	for _, c := range []struct {
		in   []int64
		want [5]int64
	}{
		{nil, [5]int64{}},
		{[]int64{7}, [5]int64{7, 7, 7, 7, 7}},
		{[]int64{5, 1, 4, 2, 3}, [5]int64{1, 2, 3, 4, 5}},
		{[]int64{10, 20, 30, 40}, [5]int64{10, 20, 30, 30, 40}}, // round(0.75·3) = 2
	} {
		if got := Quantile5(append([]int64(nil), c.in...)); got != c.want {
			t.Errorf("Quantile5(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	o := Options{MaxJobs: -1, EventBuffer: -2, Refresh: -1}
	o.EnsureDefaults()
	err := o.Validate()
	for _, want := range []string{"MaxJobs -1", "EventBuffer -2", "Refresh -1ns"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %q", err, want)
		}
	}
}
