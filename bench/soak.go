package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"shoal/client"
	"shoal/internal/hostcluster"
)

// SoakConfig is one run of the soak test (`shoal demo soak`).
type SoakConfig struct {
	// Duration: no job is started after it; default 5 minutes.
	Duration time.Duration
	// Seed chooses the jobs, the faults, their victims and their times;
	// default 1.
	Seed uint64
	// EcommerceRecords and TextRecords size the two inputs; default
	// 1,000,000 each (jobs of one to two seconds).
	EcommerceRecords, TextRecords int64
	// Partitions of the inputs and of the shuffles; default 24.
	Partitions int
	// JobTimeout fails a job still running after it: a hang is reported,
	// not waited on; default 2 minutes.
	JobTimeout time.Duration
	// RunsPerCluster: the cluster is replaced by a fresh one after this
	// many runs (default 25), or sooner when a node nears the driver's
	// limit of replacement workers, or after a failed job.
	RunsPerCluster int
	// Dir holds the inputs and outputs; default a new temporary
	// directory, removed afterwards.
	Dir string
	// Options configure the clusters; Nodes and WorkersPerNode default
	// to 3 and 2, Binary to the running executable.
	Options client.Options
	// Log receives a line per run; default discarded.
	Log io.Writer
	// Hosts runs the soak on a cluster of Options.Nodes containers
	// (hostsoak.go): one driver for RunsPerCluster runs, whose faults are
	// workers killed and whole hosts killed, paused or cut off, brought
	// back once the job ends. HeartbeatTimeout then defaults to
	// HostsHeartbeatTimeout.
	Hosts bool
}

func (cfg *SoakConfig) ensureDefaults() error {
	if cfg.Duration == 0 {
		cfg.Duration = 5 * time.Minute
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.EcommerceRecords == 0 {
		cfg.EcommerceRecords = 1_000_000
	}
	if cfg.TextRecords == 0 {
		cfg.TextRecords = 1_000_000
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 24
	}
	if cfg.JobTimeout == 0 {
		cfg.JobTimeout = 2 * time.Minute
	}
	if cfg.RunsPerCluster == 0 {
		cfg.RunsPerCluster = 25
	}
	if cfg.Options.Nodes == 0 {
		cfg.Options.Nodes = 3
	}
	if cfg.Options.WorkersPerNode == 0 {
		cfg.Options.WorkersPerNode = 2
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.Options.Nodes < 2 {
		return fmt.Errorf("bench: soak: nodes are killed: the cluster needs at least 2, got %d", cfg.Options.Nodes)
	}
	return nil
}

// SoakResult sums up a soak test. Field names are the JSON contract of
// `shoal demo soak --json`.
type SoakResult struct {
	Seed     uint64        `json:"seed"`
	Hosts    bool          `json:"hosts,omitempty"` // across hosts (SoakConfig.Hosts)
	Seconds  float64       `json:"seconds"`
	Clusters int           `json:"clusters"` // started, one after another
	Runs     int           `json:"runs"`
	Jobs     []SoakJobRuns `json:"jobs"`
	// Faults injected: workers killed on their own, nodes killed (with
	// their workers), and nodes restarted after the job.
	WorkersKilled  int `json:"workers_killed"`
	NodesKilled    int `json:"nodes_killed"`
	NodesRestarted int `json:"nodes_restarted"`
	// Across hosts (SoakConfig.Hosts), the hosts' faults: NodesKilled
	// counts them all, and each host brought back is NodesRestarted.
	HostsKilled int `json:"hosts_killed,omitempty"`
	HostsPaused int `json:"hosts_paused,omitempty"`
	HostsCutOff int `json:"hosts_cut_off,omitempty"`
	// Wrong lists the jobs that succeeded with a wrong answer; Failed
	// those that failed or hung.
	Wrong  []SoakFailure `json:"wrong"`
	Failed []SoakFailure `json:"failed"`
}

// SoakJobRuns counts the runs of one job.
type SoakJobRuns struct {
	Job  string `json:"job"`
	Runs int    `json:"runs"`
}

// SoakFailure is a run that went wrong.
type SoakFailure struct {
	Run    int    `json:"run"`
	Job    string `json:"job"`
	Faults string `json:"faults"` // what was killed during the run
	Error  string `json:"error"`
}

const (
	// soakNodeKillRate and soakTwoWorkersRate are the fractions of runs
	// (after each job's first, fault-free run) that kill a node, and two
	// workers; the others kill one worker.
	soakNodeKillRate   = 0.2
	soakTwoWorkersRate = 0.2
	// soakMaxKillsPerNode keeps the worker kills per node of a cluster
	// below the driver's limit of 16 replacements per node.
	soakMaxKillsPerNode = 12
	// soakHangGrace is how long past JobTimeout a job that does not
	// return is waited for before it is abandoned as hung.
	soakHangGrace = 30 * time.Second
)

// RunSoak repeats wide jobs (the ecommerce group-by and a word count) on
// a local cluster while killing random workers and now and then a random
// node, which is restarted (Context.RestartNode) once the job ends. Each
// answer is checked against the single-process reference. Each job's
// first run is fault-free; later faults are timed uniformly over its
// shortest run without a fault (a fault planned after the job's end is
// not injected). The error returned is for what prevents the test
// (inputs, a cluster that does not start); wrong answers and failed jobs
// are in the result.
func RunSoak(ctx context.Context, cfg SoakConfig) (*SoakResult, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	dir, done, err := workDir(cfg.Dir, "soak")
	if err != nil {
		return nil, fmt.Errorf("bench: soak: %w", err)
	}
	defer done()
	cfg.Dir = dir
	ecInput, textInput := filepath.Join(cfg.Dir, "ecommerce.csv"), filepath.Join(cfg.Dir, "text.txt")
	err = errors.Join(
		generateFile("ecommerce", ecInput, cfg.EcommerceRecords, cfg.Seed),
		generateFile("text", textInput, cfg.TextRecords, cfg.Seed))
	if err != nil {
		return nil, err
	}
	ref, err := refEcommerce(ecInput)
	if err != nil {
		return nil, err
	}
	var sc soakCluster = localSoak{dir: cfg.Dir}
	ecJob, textJob := ecInput, textInput
	if cfg.Hosts {
		hs, err := startHostSoak(ctx, &cfg)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err := hs.close(); err != nil {
				fmt.Fprintf(cfg.Log, "removing the containers: %v\n", err)
			}
		}()
		if ecJob, err = hs.upload(ctx, ecInput); err != nil {
			return nil, err
		}
		if textJob, err = hs.upload(ctx, textInput); err != nil {
			return nil, err
		}
		sc = hs
	}
	wc, err := wordCountJob(textJob, textInput, cfg.Partitions, sc.readOutput)
	if err != nil {
		return nil, err
	}
	s := &soaker{
		cfg:      &cfg,
		cluster:  sc,
		rng:      rand.New(rand.NewPCG(cfg.Seed, 0x736f616b)),
		jobs:     []checkedJob{ecommerceJob(ecJob, cfg.Partitions, ref, sc.readOutput), wc},
		expected: map[string]time.Duration{},
		res:      &SoakResult{Seed: cfg.Seed, Hosts: cfg.Hosts},
	}
	defer s.closeCluster()
	start := time.Now()
	for run := 1; time.Since(start) < cfg.Duration && ctx.Err() == nil; run++ {
		if err := s.ensureCluster(ctx); err != nil {
			s.res.Seconds = time.Since(start).Seconds()
			return s.res, err
		}
		s.runOne(ctx, run)
	}
	s.res.Seconds = time.Since(start).Seconds()
	for _, j := range s.jobs {
		s.res.Jobs = append(s.res.Jobs, SoakJobRuns{Job: j.name, Runs: s.runsOf[j.name]})
	}
	return s.res, nil
}

// soaker is the state of a soak test. Only RunSoak's goroutine uses it.
type soaker struct {
	cfg      *SoakConfig
	cluster  soakCluster
	rng      *rand.Rand
	jobs     []checkedJob
	expected map[string]time.Duration // each job's shortest fault-free run
	runsOf   map[string]int
	res      *SoakResult

	c         *client.Context // nil between clusters
	runs      int             // on c
	killsOn   map[int]int     // worker kills per node index on c
	abandoned bool            // a hung job still holds c
}

func (s *soaker) ensureCluster(ctx context.Context) error {
	full := s.runs >= s.cfg.RunsPerCluster
	for _, n := range s.killsOn {
		full = full || n >= soakMaxKillsPerNode
	}
	if s.c != nil && !full {
		return nil
	}
	s.closeCluster()
	opts, err := s.cluster.options(s.cfg.Options)
	if err != nil {
		return err
	}
	c, err := client.NewContext(ctx, opts)
	if err != nil {
		return err
	}
	s.c, s.runs, s.killsOn = c, 0, map[int]int{}
	s.res.Clusters++
	return nil
}

// closeCluster closes the cluster; one a hung job still holds is closed
// in the background, and left to its fate if that hangs too.
func (s *soaker) closeCluster() {
	if s.c == nil {
		return
	}
	c := s.c
	s.c = nil
	if s.abandoned {
		s.abandoned = false
		go c.Close()
		return
	}
	if err := c.Close(); err != nil {
		fmt.Fprintf(s.cfg.Log, "soak: closing a cluster: %v\n", err)
	}
}

// soakFault is a fault planned for a run: at a time after the job's
// start. host is the fault of a whole host, across hosts.
type soakFault struct {
	at   time.Duration
	node bool
	host hostcluster.Fault
}

func (s *soaker) plan(job checkedJob) []soakFault {
	span := s.expected[job.name]
	if span == 0 {
		return nil // the job's first run measures it
	}
	at := func() time.Duration { return time.Duration(s.rng.Int64N(int64(span))) }
	var faults []soakFault
	switch r := s.rng.Float64(); {
	case r < soakNodeKillRate && s.cfg.Hosts:
		all := hostcluster.Faults()
		faults = []soakFault{{at: at(), node: true, host: all[s.rng.IntN(len(all))]}}
	case r < soakNodeKillRate:
		faults = []soakFault{{at: at(), node: true}}
	case r < soakNodeKillRate+soakTwoWorkersRate:
		faults = []soakFault{{at: at()}, {at: at()}}
	default:
		faults = []soakFault{{at: at()}}
	}
	slices.SortFunc(faults, func(a, b soakFault) int { return int(a.at - b.at) })
	return faults
}

func (s *soaker) runOne(ctx context.Context, run int) {
	job := s.jobs[s.rng.IntN(len(s.jobs))]
	faults := s.plan(job)
	s.runs++
	s.res.Runs++
	if s.runsOf == nil {
		s.runsOf = map[string]int{}
	}
	s.runsOf[job.name]++

	jctx, cancel := context.WithTimeout(ctx, s.cfg.JobTimeout)
	defer cancel()
	out := s.cluster.location(fmt.Sprintf("run-%d", run))
	defer s.cluster.remove(out)
	var res jobResult
	ended := make(chan struct{})
	c := s.c
	go func() {
		res = runJob(jctx, c, job, out)
		close(ended)
	}()
	start := time.Now()
	var did []string
	var killedNodes []int
	var nodeFaults []hostcluster.Fault // of killedNodes
inject:
	for _, f := range faults {
		select {
		case <-ended:
			break inject
		case <-time.After(f.at - time.Since(start)):
		}
		if f.node {
			if i, what, ok := s.cluster.takeNode(s, killedNodes, f.host); ok {
				killedNodes = append(killedNodes, i)
				nodeFaults = append(nodeFaults, f.host)
				did = append(did, what)
			}
		} else if id, ok := s.cluster.killWorker(s, killedNodes); ok {
			did = append(did, "worker "+id)
		}
	}
	faultText := strings.Join(did, ", ")
	if faultText == "" {
		faultText = "no fault"
	}
	select {
	case <-ended:
	case <-time.After(s.cfg.JobTimeout + soakHangGrace - time.Since(start)):
		f := SoakFailure{Run: run, Job: job.name, Faults: faultText,
			Error: fmt.Sprintf("hung: the job did not return %v after its %v timeout", soakHangGrace, s.cfg.JobTimeout)}
		s.res.Failed = append(s.res.Failed, f)
		fmt.Fprintf(s.cfg.Log, "run %d %s: %s: %s\n", run, job.name, faultText, f.Error)
		s.abandoned = true
		s.closeCluster()
		return
	}
	for k, i := range killedNodes {
		if err := s.cluster.bringBack(ctx, s, i, nodeFaults[k]); err != nil {
			fmt.Fprintf(s.cfg.Log, "run %d: bring node %d back: %v (starting a fresh cluster)\n", run, i, err)
			s.closeCluster()
			break
		}
		s.res.NodesRestarted++
	}

	verdict := "right"
	switch {
	case res.err != nil:
		verdict = "FAILED: " + res.err.Error()
		s.res.Failed = append(s.res.Failed, SoakFailure{Run: run, Job: job.name, Faults: faultText, Error: res.err.Error()})
		s.closeCluster() // start afresh after a failure
	default:
		if ok, note := job.check(res.answer); !ok {
			verdict = "WRONG: " + note
			s.res.Wrong = append(s.res.Wrong, SoakFailure{Run: run, Job: job.name, Faults: faultText, Error: note})
		} else if len(did) == 0 {
			// The span of later faults: the shortest fault-free run, so
			// that few planned faults come after the job's end.
			if e := s.expected[job.name]; e == 0 || res.elapsed < e {
				s.expected[job.name] = res.elapsed
			}
		}
	}
	fmt.Fprintf(s.cfg.Log, "run %d %s: %.2f s, %s: %s\n", run, job.name, res.elapsed.Seconds(), faultText, verdict)
}

// soakCluster is where the soak runs and how it makes its faults: the
// embedded local cluster (localSoak), or containers (hostSoak,
// hostsoak.go).
type soakCluster interface {
	// options completes the Options of a driver.
	options(o client.Options) (client.Options, error)
	// location is where a run writes its output; remove deletes it.
	location(name string) string
	remove(out string)
	// readOutput returns the lines of an output, sorted.
	readOutput(ctx context.Context, out string) ([]string, error)
	// killWorker kills a random live worker of a node not in taken and
	// returns its ID.
	killWorker(s *soaker, taken []int) (string, bool)
	// takeNode takes a random node not in taken away, if another one
	// is left (across hosts, with the host's fault f), and returns its
	// index and what was done.
	takeNode(s *soaker, taken []int, f hostcluster.Fault) (int, string, bool)
	// bringBack brings node i back once the job has ended.
	bringBack(ctx context.Context, s *soaker, i int, f hostcluster.Fault) error
}

// localSoak is the soak on the embedded local cluster.
type localSoak struct{ dir string }

func (l localSoak) options(o client.Options) (client.Options, error) { return o, nil }
func (l localSoak) location(name string) string                      { return filepath.Join(l.dir, name) }
func (l localSoak) remove(out string)                                { os.RemoveAll(out) }
func (l localSoak) readOutput(ctx context.Context, out string) ([]string, error) {
	return readLocalParts(ctx, out)
}

func (l localSoak) killWorker(s *soaker, taken []int) (string, bool) { return s.killWorker(taken) }

func (l localSoak) takeNode(s *soaker, taken []int, _ hostcluster.Fault) (int, string, bool) {
	i, ok := s.killNode(taken)
	return i, fmt.Sprintf("node %d", i), ok
}

func (l localSoak) bringBack(ctx context.Context, s *soaker, i int, _ hostcluster.Fault) error {
	return s.c.RestartNode(ctx, i)
}

// killWorker kills a random live worker of a node not killed in this
// run.
func (s *soaker) killWorker(killedNodes []int) (string, bool) {
	var live []string
	nodeOf := map[string]int{}
	for _, w := range s.c.Local().Workers() {
		if !w.Exited && !slices.Contains(killedNodes, w.Node) {
			live = append(live, w.ID)
			nodeOf[w.ID] = w.Node
		}
	}
	if len(live) == 0 {
		return "", false
	}
	id := live[s.rng.IntN(len(live))]
	if err := s.c.Local().KillWorker(id); err != nil {
		fmt.Fprintf(s.cfg.Log, "soak: kill worker %s: %v\n", id, err)
		return "", false
	}
	s.res.WorkersKilled++
	s.killsOn[nodeOf[id]]++
	return id, true
}

// killNode kills a random node not killed in this run, if another one
// is left.
func (s *soaker) killNode(killedNodes []int) (int, bool) {
	var alive []int
	for _, n := range s.c.Local().Nodes() {
		if !slices.Contains(killedNodes, n.Index) {
			alive = append(alive, n.Index)
		}
	}
	if len(alive) < 2 {
		return 0, false
	}
	i := alive[s.rng.IntN(len(alive))]
	if err := s.c.Local().KillNode(i); err != nil {
		fmt.Fprintf(s.cfg.Log, "soak: kill node %d: %v\n", i, err)
		return 0, false
	}
	s.res.NodesKilled++
	return i, true
}
