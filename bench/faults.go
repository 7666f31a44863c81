package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"shoal/client"
	"shoal/client/eventlog"
	"shoal/internal/hostcluster"
)

// FaultsConfig is one run of the fault experiments (`shoal demo faults`).
type FaultsConfig struct {
	// Records is the number of ecommerce rows generated as the input;
	// default 2,000,000 (about 270 MB, a job of a few seconds).
	Records int64
	// Partitions of the input and of the shuffle; default 36, three
	// waves of tasks on the default 12 slots, so that a worker is killed
	// while it holds finished work and runs more.
	Partitions int
	// Seed of the generated input; default 1.
	Seed uint64
	// Dir holds the input, the outputs and the event logs; default a new
	// temporary directory, removed afterwards.
	Dir string
	// Options configure every context the experiments start. Nodes and
	// WorkersPerNode default to 3 and 2; Binary defaults to the running
	// executable. EventLog and NoShuffleService are set per run.
	Options client.Options
	// InjectTimeout bounds the wait for the moment of a fault; default 2
	// minutes.
	InjectTimeout time.Duration
	// Log receives a line per run; default discarded.
	Log io.Writer
	// Hosts runs the experiments on a cluster of Options.Nodes containers
	// (hostcluster: node services on a private Docker network, MinIO for
	// the input and the outputs) instead of the embedded local cluster,
	// with three more scenarios, a whole host killed, paused and cut off
	// (hostfaults.go). HeartbeatTimeout then defaults to
	// HostsHeartbeatTimeout.
	Hosts bool
	// Scenarios, if set, are the IDs of the scenarios to run; default
	// all.
	Scenarios []int
}

func (cfg *FaultsConfig) ensureDefaults() error {
	if cfg.Records == 0 {
		cfg.Records = 2_000_000
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 36
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.Options.Nodes == 0 {
		cfg.Options.Nodes = 3
	}
	if cfg.Options.WorkersPerNode == 0 {
		cfg.Options.WorkersPerNode = 2
	}
	if cfg.InjectTimeout == 0 {
		cfg.InjectTimeout = 2 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	var errs []error
	if cfg.Records < 1000 {
		errs = append(errs, fmt.Errorf("records must be at least 1000, got %d", cfg.Records))
	}
	if cfg.Partitions < 2 {
		errs = append(errs, fmt.Errorf("partitions must be at least 2, got %d", cfg.Partitions))
	}
	if cfg.Options.Nodes < 2 {
		errs = append(errs, fmt.Errorf("a node is killed: the cluster needs at least 2 nodes, got %d", cfg.Options.Nodes))
	}
	if cfg.Hosts && cfg.Options.Master != "" {
		errs = append(errs, errors.New("Hosts starts its own cluster: Options.Master must be empty"))
	}
	all := faultScenarios(cfg.Hosts)
	for _, id := range cfg.Scenarios {
		if !slices.ContainsFunc(all, func(sc faultScenario) bool { return sc.id == id }) {
			errs = append(errs, fmt.Errorf("no scenario %d (there are %d)", id, len(all)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: faults: %w", err)
	}
	return nil
}

// FaultRow is the outcome of one scenario. Field names are the JSON
// contract of `shoal demo faults --json`.
type FaultRow struct {
	ID       int    `json:"id"`
	Scenario string `json:"scenario"`
	// NotBuilt says why the scenario cannot run yet; nothing else is set.
	NotBuilt string `json:"not_built,omitempty"`
	// Error says why the experiment could not be carried out as planned
	// (the fault-free run failed, or the job ended before the fault).
	Error string `json:"error,omitempty"`

	// Fault describes what was killed and when; Victim is the worker ID
	// or the node's address, VictimPid its process.
	Fault     string `json:"fault,omitempty"`
	Victim    string `json:"victim,omitempty"`
	VictimPid int    `json:"victim_pid,omitempty"`
	// Stage is the stage the fault hit.
	Stage int `json:"stage,omitempty"`

	// RightAnswer: the job's output under the fault equals the
	// fault-free run's, which equals the single-process reference. Nil
	// when the scenario did not run. AnswerNote says what was wrong.
	RightAnswer *bool  `json:"right_answer,omitempty"`
	AnswerNote  string `json:"answer_note,omitempty"`

	// TasksRerun counts, per stage, the task attempts beyond the first of
	// each partition; MapOutputsRecomputed the map attempts started for a
	// partition whose output had been committed.
	TasksRerun           []StageReruns `json:"tasks_rerun,omitempty"`
	MapOutputsRecomputed int           `json:"map_outputs_recomputed"`
	// CachedRecomputed counts the cached partitions stored again after
	// they had been stored once (computed again because a block was lost).
	CachedRecomputed int `json:"cached_partitions_recomputed"`
	// DetectMs is from the kill to the worker_lost (node_lost for a
	// node) event; -1 if there was none. RecoverMs is from that event to
	// the end of the last rerun attempt that succeeded (0 if none ran).
	DetectMs  int64 `json:"detect_ms"`
	RecoverMs int64 `json:"recover_ms"`
	// Seconds is the job under the fault, BaselineSeconds the same job
	// without it, each on a fresh cluster, from the action's call to its
	// return. RerunSeconds sums the durations of the rerun attempts.
	Seconds         float64 `json:"seconds"`
	BaselineSeconds float64 `json:"baseline_seconds"`
	RerunSeconds    float64 `json:"rerun_seconds"`
	// Bound is the recovery-cost check, for a single worker killed.
	Bound *RecoveryBound `json:"recovery_bound,omitempty"`
}

// RecoveryBound checks that the job under the fault took no longer than
// the fault-free job plus the lost tasks' work (the rerun attempts'
// durations) plus a second.
type RecoveryBound struct {
	Seconds float64 `json:"seconds"` // BaselineSeconds + RerunSeconds + 1
	Held    bool    `json:"held"`    // Seconds of the row <= this Seconds
}

// RecoverySlack is the constant term of RecoveryBound: detecting the
// loss, starting a replacement worker, and rescheduling.
const RecoverySlack = time.Second

// faultScenario is one row of the experiment.
type faultScenario struct {
	id        int
	name      string
	wide      bool // the ecommerce group-by; else filter + count
	noService bool // Options.NoShuffleService
	node      bool // kill the worker's node, not the worker
	cached    bool // the ecommerce group-by over cached purchases
	ckpt      bool // the ecommerce group-by over checkpointed purchases
	// host is the fault of a whole host (a container), for node: killed
	// (and started again at once, as a supervisor restarts a node that
	// crashed, when restartAtOnce), paused or cut off.
	host          hostcluster.Fault
	restartAtOnce bool
	notBuilt      string
}

// faultScenarios are the scenarios of the local cluster, or those of a
// cluster of hosts: the same six, where a node killed is its container
// killed and started again at once, and three faults of whole hosts.
func faultScenarios(hosts bool) []faultScenario {
	scs := []faultScenario{
		{id: 1, name: "worker killed, narrow job (filter + count)"},
		{id: 2, name: "worker killed, wide job, shuffle service on", wide: true},
		{id: 3, name: "worker killed, wide job, shuffle service off", wide: true, noService: true},
		{id: 4, name: "node killed, wide job", wide: true, node: true},
		{id: 5, name: "worker killed, filtered data cached", wide: true, cached: true},
		{id: 6, name: "worker killed, filtered data checkpointed", wide: true, ckpt: true},
	}
	if !hosts {
		return scs
	}
	scs[2].notBuilt = "not in cluster mode: `shoal node` always runs the shuffle service"
	scs[3] = faultScenario{id: 4, name: "node killed and restarted at once, wide job", wide: true, node: true,
		host: hostcluster.Killed, restartAtOnce: true}
	return append(scs,
		faultScenario{id: 7, name: "host killed (docker kill), wide job", wide: true, node: true, host: hostcluster.Killed},
		faultScenario{id: 8, name: "host paused (docker pause), wide job", wide: true, node: true, host: hostcluster.Paused},
		faultScenario{id: 9, name: "host cut off (network disconnect), wide job", wide: true, node: true, host: hostcluster.CutOff})
}

// RunFaults runs the fault scenarios on generated ecommerce data and
// returns one row per scenario. Each scenario runs its job twice, each
// time on a fresh cluster: without a fault (the baseline), then with one,
// injected when the target stage (the only stage of the narrow job, the
// map stage of the wide one) has a worker that has finished a task of it
// and runs another: that worker is killed (or its node). Rows that could
// not be carried out say why in Error; the error returned is for what
// prevents the experiment altogether.
func RunFaults(ctx context.Context, cfg FaultsConfig) ([]FaultRow, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	dir, done, err := workDir(cfg.Dir, "faults")
	if err != nil {
		return nil, fmt.Errorf("bench: faults: %w", err)
	}
	defer done()
	cfg.Dir = dir
	input := filepath.Join(cfg.Dir, "ecommerce.csv")
	if err := generateFile("ecommerce", input, cfg.Records, cfg.Seed); err != nil {
		return nil, err
	}
	ref, err := refEcommerce(input)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "input: %d ecommerce rows, %d purchases in %d sessions\n", cfg.Records, ref.purchases, len(ref.lines)-1)
	var fc faultCluster = localFaults{dir: cfg.Dir}
	if cfg.Hosts {
		hf, err := startHostFaults(ctx, &cfg)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := hf.close(); err != nil {
				fmt.Fprintf(cfg.Log, "removing the containers: %v\n", err)
			}
		}()
		if input, err = hf.upload(ctx, input); err != nil {
			return nil, err
		}
		fc = hf
	}
	narrow := narrowJob(input, cfg.Partitions, ref)
	wide := ecommerceJob(input, cfg.Partitions, ref, fc.readOutput)
	cached := cachedEcommerceJob(input, cfg.Partitions, ref, false, fc.readOutput)
	checkpointed := cachedEcommerceJob(input, cfg.Partitions, ref, true, fc.readOutput)

	var rows []FaultRow
	for _, sc := range faultScenarios(cfg.Hosts) {
		if err := ctx.Err(); err != nil {
			return rows, err
		}
		if len(cfg.Scenarios) > 0 && !slices.Contains(cfg.Scenarios, sc.id) {
			continue
		}
		row := FaultRow{ID: sc.id, Scenario: sc.name, NotBuilt: sc.notBuilt}
		if sc.notBuilt == "" {
			job := narrow
			switch {
			case sc.cached:
				job = cached
			case sc.ckpt:
				job = checkpointed
			case sc.wide:
				job = wide
			}
			e := faultExperiment{cfg: &cfg, sc: sc, job: job, cluster: fc}
			e.run(ctx, &row)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// faultCluster is where the experiments run and how faults are made
// there: the embedded local cluster (localFaults), or containers
// (hostFaults, hostfaults.go).
type faultCluster interface {
	// options completes a run's Options.
	options(o client.Options) (client.Options, error)
	// location is where a run writes what it names (an output, the
	// checkpoints).
	location(name string) string
	// readOutput returns the lines of an output at a location, sorted.
	readOutput(ctx context.Context, out string) ([]string, error)
	// locate completes t, whose worker runs a task on t.nodeAddr, with
	// the victim: the worker's pid and node, or the node's (the host's)
	// address, pid and workers. It returns false while it cannot.
	locate(c *client.Context, events []eventlog.Event, t *faultTarget) bool
	// inject makes the scenario's fault happen to t.
	inject(ctx context.Context, c *client.Context, sc faultScenario, t *faultTarget) error
	// afterFault waits, with the job running, for what must come before
	// the victim is brought back, and brings it back (a host), or does
	// nothing (the local cluster, which is discarded after the run).
	afterFault(ctx context.Context, tail *eventlog.Tail, sc faultScenario, t faultTarget, ended <-chan struct{}) error
}

// localFaults runs the experiments on the embedded local cluster, a fresh
// one per run.
type localFaults struct{ dir string }

func (l localFaults) options(o client.Options) (client.Options, error) { return o, nil }
func (l localFaults) location(name string) string                      { return filepath.Join(l.dir, name) }
func (l localFaults) readOutput(ctx context.Context, out string) ([]string, error) {
	return readLocalParts(ctx, out)
}

func (l localFaults) locate(c *client.Context, _ []eventlog.Event, t *faultTarget) bool {
	local := c.Local()
	for _, w := range local.Workers() {
		if w.ID != t.worker || w.Exited {
			continue
		}
		t.node, t.victim, t.pid = w.Node, w.ID, w.Pid
		if t.wholeNode {
			n := local.Nodes()[w.Node]
			t.victim, t.pid = n.Addr, n.Pid
			for _, o := range local.Workers() {
				if o.Node == w.Node && !o.Exited {
					t.nodeWorker = append(t.nodeWorker, o.ID)
				}
			}
		}
		return true
	}
	return false
}

func (l localFaults) inject(_ context.Context, c *client.Context, sc faultScenario, t *faultTarget) error {
	if sc.node {
		return c.Local().KillNode(t.node)
	}
	return c.Local().KillWorker(t.victim)
}

func (l localFaults) afterFault(context.Context, *eventlog.Tail, faultScenario, faultTarget, <-chan struct{}) error {
	return nil
}

// faultExperiment runs one scenario.
type faultExperiment struct {
	cfg     *FaultsConfig
	sc      faultScenario
	job     checkedJob
	cluster faultCluster
}

func (e *faultExperiment) name(name string) string {
	return fmt.Sprintf("scenario-%d-%s", e.sc.id, name)
}

// path is a local file of the run: its event log.
func (e *faultExperiment) path(name string) string {
	return filepath.Join(e.cfg.Dir, e.name(name))
}

func (e *faultExperiment) options(run string) (client.Options, error) {
	o := e.cfg.Options
	o.EventLog = e.path(run + "-events.jsonl")
	o.NoShuffleService = e.sc.noService
	if e.sc.ckpt {
		o.CheckpointDir = e.cluster.location(e.name(run + "-checkpoints"))
	}
	return e.cluster.options(o)
}

func (e *faultExperiment) run(ctx context.Context, row *FaultRow) {
	log := e.cfg.Log
	// The baseline.
	base, err := e.baseline(ctx)
	if err != nil {
		row.Error = "the fault-free run failed: " + err.Error()
		fmt.Fprintf(log, "scenario %d: %s\n", e.sc.id, row.Error)
		return
	}
	row.BaselineSeconds = base.elapsed.Seconds()
	baseRight, baseNote := e.job.check(base.answer)
	fmt.Fprintf(log, "scenario %d: fault-free run %.2f s, answer right: %v %s\n", e.sc.id, row.BaselineSeconds, baseRight, baseNote)

	// The same job with the fault.
	f, err := e.faulty(ctx)
	if err != nil {
		row.Error = err.Error()
		fmt.Fprintf(log, "scenario %d: %s\n", e.sc.id, row.Error)
		return
	}
	t := f.target
	row.Stage, row.Victim, row.VictimPid = t.stage, t.victim, t.pid
	row.Fault = t.String()
	row.Seconds = f.result.elapsed.Seconds()
	right := false
	switch {
	case f.result.err != nil:
		row.AnswerNote = "the job failed: " + f.result.err.Error()
	case !baseRight:
		row.AnswerNote = "the fault-free run is wrong too: " + baseNote
	case !slices.Equal(f.result.answer, base.answer):
		_, note := e.job.check(f.result.answer)
		row.AnswerNote = "differs from the fault-free run: " + note
	default:
		right = true
	}
	row.RightAnswer = &right

	rec := analyzeRecovery(f.events)
	row.TasksRerun, row.MapOutputsRecomputed, row.CachedRecomputed = rec.reruns, rec.recomputed, rec.cachedRecomputed
	row.RerunSeconds = float64(rec.rerunMs) / 1000
	row.DetectMs, row.RecoverMs = -1, 0
	if ts := detectedAt(f.events, t, f.killedAt); ts > 0 {
		row.DetectMs = max(0, ts-f.killedAt.UnixMilli())
		if rec.lastRerunEnd > 0 {
			row.RecoverMs = max(0, rec.lastRerunEnd-ts)
		}
	}
	if !e.sc.node {
		b := row.BaselineSeconds + row.RerunSeconds + RecoverySlack.Seconds()
		row.Bound = &RecoveryBound{Seconds: b, Held: row.Seconds <= b}
	}
	fmt.Fprintf(log, "scenario %d: %s; run %.2f s, answer right: %v %s\n", e.sc.id, row.Fault, row.Seconds, right, row.AnswerNote)
}

// jobResult is one run of a job.
type jobResult struct {
	answer  []string
	err     error
	elapsed time.Duration
}

func runJob(ctx context.Context, c *client.Context, job checkedJob, out string) jobResult {
	start := time.Now()
	answer, err := job.run(ctx, c, out)
	return jobResult{answer: answer, err: err, elapsed: time.Since(start)}
}

func (e *faultExperiment) baseline(ctx context.Context) (jobResult, error) {
	opts, err := e.options("baseline")
	if err != nil {
		return jobResult{}, err
	}
	c, err := client.NewContext(ctx, opts)
	if err != nil {
		return jobResult{}, err
	}
	r := runJob(ctx, c, e.job, e.cluster.location(e.name("baseline-out")))
	return r, errors.Join(r.err, c.Close())
}

// faultyRun is the run with the fault.
type faultyRun struct {
	result   jobResult
	target   faultTarget
	killedAt time.Time
	events   []eventlog.Event
}

func (e *faultExperiment) faulty(ctx context.Context) (faultyRun, error) {
	opts, err := e.options("fault")
	if err != nil {
		return faultyRun{}, err
	}
	c, err := client.NewContext(ctx, opts)
	if err != nil {
		return faultyRun{}, err
	}
	defer c.Close()
	var f faultyRun
	ended := make(chan struct{})
	go func() {
		f.result = runJob(ctx, c, e.job, e.cluster.location(e.name("fault-out")))
		close(ended)
	}()

	tail := &eventlog.Tail{Path: opts.EventLog}
	locate := func(events []eventlog.Event, t *faultTarget) bool { return e.cluster.locate(c, events, t) }
	f.target, err = awaitTarget(ctx, tail, locate, e.job.faultStage, e.sc.node, ended, e.cfg.InjectTimeout)
	if err != nil {
		// The job has ended, or is failed by closing the cluster under it.
		return faultyRun{}, err
	}
	f.killedAt = time.Now()
	f.target.firstLoss = e.sc.host != ""
	err = e.cluster.inject(ctx, c, e.sc, &f.target)
	if err == nil {
		err = e.cluster.afterFault(ctx, tail, e.sc, f.target, ended)
	}
	<-ended
	if err != nil {
		return faultyRun{}, fmt.Errorf("%s: %w", f.target, err)
	}
	if err := c.Close(); err != nil {
		if e.sc.host == "" {
			return faultyRun{}, err
		}
		// A host brought back at another address no longer has the
		// driver's application where the driver last saw it; the node
		// removes it at its TTL.
		fmt.Fprintf(e.cfg.Log, "scenario %d: closing the driver: %v\n", e.sc.id, err)
	}
	f.events, err = eventlog.ReadFile(opts.EventLog)
	return f, err
}

// faultTarget is the process a fault kills, and the moment.
type faultTarget struct {
	stage      int
	stageKind  string
	stageName  string
	tasks      int // of the stage's first attempt
	succeeded  int // tasks of the stage that had succeeded
	worker     string
	victim     string // the worker ID, or the node's address
	pid        int    // of the victim
	node       int    // index of the worker's node
	nodeAddr   string // the worker's node's address
	nodeWorker []string
	wholeNode  bool
	// what, if set, says what was done to whom (a host's fault).
	what string
	// firstLoss: the fault is detected by the first worker_lost of the
	// node's workers or the node_lost, whichever comes first (a host).
	firstLoss bool
}

func (t faultTarget) String() string {
	what := fmt.Sprintf("worker %s (pid %d, node %d)", t.victim, t.pid, t.node)
	switch {
	case t.what != "":
		return fmt.Sprintf("%s while stage %d (%s, %s) ran, %d of %d tasks done", t.what, t.stage, t.stageKind, t.stageName, t.succeeded, t.tasks)
	case t.wholeNode:
		what = fmt.Sprintf("node %d at %s (pid %d) with workers %s", t.node, t.victim, t.pid, strings.Join(t.nodeWorker, ", "))
	}
	return fmt.Sprintf("killed %s while stage %d (%s, %s) ran, %d of %d tasks done", what, t.stage, t.stageKind, t.stageName, t.succeeded, t.tasks)
}

// errNoMoment: the job ended before the fault could be injected.
var errNoMoment = errors.New("bench: the job ended before a worker that had finished a task of the target stage ran another one; nothing was killed (give more records)")

// awaitTarget polls the event log until the first stage of kind
// stageKind ("map" or "result") has a running task on a worker that has
// finished a task of that stage (for a node: on a node where a task of it
// finished, i.e. holding a committed map output), and returns that
// worker, or its node, as locate completes it. Among several, the task
// that started first wins.
func awaitTarget(ctx context.Context, tail *eventlog.Tail, locate func([]eventlog.Event, *faultTarget) bool, stageKind string, wholeNode bool, ended <-chan struct{}, timeout time.Duration) (faultTarget, error) {
	deadline := time.Now().Add(timeout)
	var events []eventlog.Event
	for {
		evs, err := tail.Poll()
		if err != nil {
			return faultTarget{}, err
		}
		events = append(events, evs...)
		if t, ok := findTarget(events, stageKind, wholeNode); ok && locate(events, &t) {
			return t, nil
		}
		select {
		case <-ended:
			return faultTarget{}, errNoMoment
		case <-ctx.Done():
			return faultTarget{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return faultTarget{}, fmt.Errorf("bench: no moment to inject the fault within %v", timeout)
		}
	}
}

// findTarget scans events for the moment awaitTarget waits for.
func findTarget(events []eventlog.Event, stageKind string, wholeNode bool) (faultTarget, bool) {
	t := faultTarget{stage: -1, stageKind: stageKind, wholeNode: wholeNode}
	running := map[uint64]*eventlog.TaskStart{}
	doneOn := map[string]bool{} // workers and nodes where a task of the stage succeeded
	for _, ev := range events {
		switch ev := ev.(type) {
		case *eventlog.StageSubmitted:
			if ev.Kind == stageKind && t.stage < 0 {
				t.stage, t.stageName, t.tasks = ev.Stage, ev.Name, ev.Tasks
			}
		case *eventlog.TaskStart:
			if ev.Stage == t.stage {
				running[ev.Task] = ev
			}
		case *eventlog.TaskEnd:
			if ev.Stage != t.stage {
				continue
			}
			delete(running, ev.Task)
			if ev.Status == eventlog.StatusSucceeded {
				t.succeeded++
				doneOn["worker "+ev.Worker] = true
				doneOn["node "+ev.Node] = true
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(running)) {
		ev := running[id]
		key := "worker " + ev.Worker
		if wholeNode {
			key = "node " + ev.Node
		}
		if doneOn[key] {
			t.worker, t.nodeAddr = ev.Worker, ev.Node
			return t, true
		}
	}
	return t, false
}

// detectedAt returns the ts of the event that reports the target lost:
// worker_lost of the worker, node_lost of the node (for a host, the first
// worker_lost of its workers after killedAt, or its node_lost); 0 if
// none.
func detectedAt(events []eventlog.Event, t faultTarget, killedAt time.Time) int64 {
	for _, ev := range events {
		if t.firstLoss {
			switch ev := ev.(type) {
			case *eventlog.WorkerLost:
				if ev.Node == t.nodeAddr && ev.TS >= killedAt.UnixMilli()-50 {
					return ev.TS
				}
			case *eventlog.NodeLost:
				if ev.Node == t.nodeAddr {
					return ev.TS
				}
			}
			continue
		}
		switch ev := ev.(type) {
		case *eventlog.WorkerLost:
			if !t.wholeNode && ev.Worker == t.victim {
				return ev.TS
			}
		case *eventlog.NodeLost:
			if t.wholeNode && ev.Node == t.victim {
				return ev.TS
			}
		}
	}
	return 0
}
