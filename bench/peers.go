package bench

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"shoal/jobs"
)

// PeersConfig is `shoal bench peers` (make bench-peers): shoal side by
// side with the tool a user would pick instead, one row per kind of work,
// both sides run as whole processes, alternately, Runs times each; each
// run's outputs are checked equal (untimed) and removed.
type PeersConfig struct {
	// Shoal is the shoal binary run for shoal's side and to generate the
	// inputs; default the running executable.
	Shoal string
	// DuckCmp is bench/duckcmp's binary; if it does not exist the
	// ecommerce row is skipped, with the reason.
	DuckCmp string
	// Python is the interpreter of the networkx side; default
	// /usr/bin/python3. SortCommand is GNU sort; default "sort".
	Python, SortCommand string
	// Quick shrinks every input so that the whole comparison takes
	// seconds; sizes set below override it.
	Quick bool
	Runs  int // default 3
	// Rows, if set, are the rows to run (PeerRowNames), in their order.
	Rows []string
	// Sizes, default the full size (quick: small).
	GraphEdges            int64 // pagerank: generated edges (1,000,000)
	SortRecords           int64 // sort: gensort records (10,000,000)
	EcommerceRows         int64 // ecommerce: generated rows (42,000,000)
	TextLines             int64 // wordcount: generated lines (16,200,000, ~1.2 GB)
	TextFiles             int   // wordcount: files the lines are split into (3,400)
	WideTasks, PeerTasks  int   // tasks-wide: maps = reduces = 2,000 against 100
	NarrowTasks           int   // tasks-narrow: 4,000 against PeerNarrowTasks
	PeerNarrowTasks       int   // 200
	TaskRecords           int64 // records of the task rows (20,000)
	PageRankIterations    int   // 20
	CommandTimeout        time.Duration
	Dir                   string // work directory; default a temporary one, removed
	Progress, ShoalStderr io.Writer
	// Perturb, if set, is called with the row's name and the peer side's
	// output after each of its runs, before the check: the harness's test
	// changes the output there to see the check fail.
	Perturb func(row, peerOutput string) error
	// Command is the command line recorded in the results.
	Command string
}

// PeerRowNames are the rows of the comparison, in the order they run.
func PeerRowNames() []string {
	return []string{"pagerank", "sort", "ecommerce", "wordcount", "tasks-wide", "tasks-narrow"}
}

func (c *PeersConfig) ensureDefaults() error {
	if c.Shoal == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		c.Shoal = exe
	}
	if c.Python == "" {
		c.Python = "/usr/bin/python3"
	}
	if c.SortCommand == "" {
		c.SortCommand = "sort"
	}
	if c.Runs <= 0 {
		c.Runs = 3
	}
	if len(c.Rows) == 0 {
		c.Rows = PeerRowNames()
	}
	for _, r := range c.Rows {
		if !slices.Contains(PeerRowNames(), r) {
			return fmt.Errorf("bench: no peer row %q (want %s)", r, strings.Join(PeerRowNames(), ", "))
		}
	}
	set := func(v *int64, full, quick int64) {
		if *v <= 0 {
			*v = full
			if c.Quick {
				*v = quick
			}
		}
	}
	seti := func(v *int, full, quick int) {
		if *v <= 0 {
			*v = full
			if c.Quick {
				*v = quick
			}
		}
	}
	set(&c.GraphEdges, 1_000_000, 5_000)
	set(&c.SortRecords, 10_000_000, 20_000)
	set(&c.EcommerceRows, 42_000_000, 50_000)
	set(&c.TextLines, 16_200_000, 20_000)
	seti(&c.TextFiles, 3_400, 20)
	seti(&c.WideTasks, 2_000, 40)
	seti(&c.PeerTasks, 100, 10)
	seti(&c.NarrowTasks, 4_000, 80)
	seti(&c.PeerNarrowTasks, 200, 20)
	set(&c.TaskRecords, 20_000, 2_000)
	seti(&c.PageRankIterations, 20, 20)
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 30 * time.Minute
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.ShoalStderr == nil {
		c.ShoalStderr = io.Discard
	}
	return nil
}

// PeersResults is results.json.
type PeersResults struct {
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Quick    bool      `json:"quick"`
	Runs     int       `json:"runs"`
	Machine  Machine   `json:"machine"`
	// LoadStart and LoadEnd are the load averages (1, 5, 15 minutes) at
	// the start and the end.
	LoadStart [3]float64
	LoadEnd   [3]float64
	Rows      []*PeerRow `json:"rows"`
	// Merges are the later runs whose rows replaced this run's
	// (MergePeersResults).
	Merges []PeersMerge `json:"merges,omitempty"`
}

// PeersMerge is a later run of some rows merged into results.
type PeersMerge struct {
	Command   string     `json:"command"`
	Rows      []string   `json:"rows"`
	Started   time.Time  `json:"started"`
	Finished  time.Time  `json:"finished"`
	LoadStart [3]float64 `json:"load_average_start"`
	LoadEnd   [3]float64 `json:"load_average_end"`
}

// MergePeersResults replaces the rows of old that later ran again with
// their new results and records the later run; rows stay in the order of
// PeerRowNames. A row that failed or was skipped in the later run keeps
// its old results, if it has any (RunPeers' error reports the failure).
func MergePeersResults(old, later *PeersResults) *PeersResults {
	m := PeersMerge{Command: later.Command, Started: later.Started, Finished: later.Finished, LoadStart: later.LoadStart, LoadEnd: later.LoadEnd}
	byName := map[string]*PeerRow{}
	for _, r := range old.Rows {
		if r.Command == "" {
			r.Command, r.Started = old.Command, old.Started
		}
		byName[r.Name] = r
	}
	for _, r := range later.Rows {
		if prev, ok := byName[r.Name]; ok && prev.Error == "" && prev.Skipped == "" && (r.Error != "" || r.Skipped != "") {
			continue
		}
		byName[r.Name] = r
		m.Rows = append(m.Rows, r.Name)
	}
	merged := *old
	merged.Rows = nil
	for _, name := range PeerRowNames() {
		if r, ok := byName[name]; ok {
			merged.Rows = append(merged.Rows, r)
		}
	}
	merged.Merges = append(slices.Clone(old.Merges), m)
	return &merged
}

// PeerRow is one kind of work.
type PeerRow struct {
	Name  string       `json:"name"`
	Work  string       `json:"work"`
	Shoal PeerSideRuns `json:"shoal"`
	Peer  PeerSideRuns `json:"peer"`
	// Unit is what the medians compare: "s" (whole processes, wall
	// clock) or "ms/task" (the job's time over its tasks).
	Unit string `json:"unit"`
	// Ratio is shoal's median over the peer's.
	Ratio float64 `json:"ratio"`
	// Check says how the outputs were compared; Equal that every run's
	// were equal; Mismatch the first difference found.
	Check    string `json:"check"`
	Equal    bool   `json:"equal"`
	Mismatch string `json:"mismatch,omitempty"`
	// Skipped says why the row did not run; Error why it failed.
	Skipped string `json:"skipped,omitempty"`
	Error   string `json:"error,omitempty"`
	// LoadAverage is the 1-minute load average at the row's start.
	LoadAverage float64 `json:"load_average"`
	// Command is the command that measured the row, Started when.
	Command string    `json:"command,omitempty"`
	Started time.Time `json:"started"`
}

// PeerSideRuns is one side's runs.
type PeerSideRuns struct {
	Name    string    `json:"name"`
	Command string    `json:"command"`
	Seconds []float64 `json:"seconds"` // wall clock of each run
	// Value is each run's figure in the row's Unit; Median their median.
	Value  []float64 `json:"value"`
	Median float64   `json:"median"`
	// PeakRSSBytes is each run's peak RSS of the whole process tree
	// (treeUsage.PeakRSSBytes), ConcurrentRSSBytes the largest sampled
	// sum; Processes the processes seen in the tree.
	PeakRSSBytes       []int64 `json:"peak_rss_bytes"`
	ConcurrentRSSBytes []int64 `json:"concurrent_rss_bytes"`
	Processes          int     `json:"processes"`
}

// MaxPeakRSS is the largest PeakRSSBytes of the runs.
func (s *PeerSideRuns) MaxPeakRSS() int64 {
	if len(s.PeakRSSBytes) == 0 {
		return 0
	}
	return slices.Max(s.PeakRSSBytes)
}

// peerSide is how to run one side of a row.
type peerSide struct {
	name string
	// args is the command line writing to out (argv[0] the program).
	args func(out string) []string
	env  []string
	// value turns a run's measurement into the row's unit; default its
	// wall clock in seconds.
	value func(u *treeUsage) (float64, error)
}

// peerRow is a row's recipe.
type peerRow struct {
	name, work, check, unit string
	skipped                 string
	prepare                 func(ctx context.Context) error
	shoal, peer             peerSide
	// compare checks the two outputs of a run.
	compare func(shoalOut, peerOut string) error
}

//go:embed peers_networkx.py
var networkxScript string

// RunPeers runs the comparison. A row that fails is recorded with its
// error and the others still run; the error returned joins the rows'
// errors and unequal outputs.
func RunPeers(ctx context.Context, cfg PeersConfig) (*PeersResults, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	work, done, err := workDir(cfg.Dir, "peers")
	if err != nil {
		return nil, err
	}
	defer done()
	res := &PeersResults{
		Command: cfg.Command, Started: time.Now().UTC(), Quick: cfg.Quick, Runs: cfg.Runs,
		Machine: DescribeMachine(work), LoadStart: loadAverage(),
	}
	var errs []error
	for _, name := range cfg.Rows {
		dir := filepath.Join(work, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return res, err
		}
		r := cfg.recipe(name, dir)
		row := &PeerRow{
			Name: name, Work: r.work, Unit: r.unit, Check: r.check, LoadAverage: loadAverage()[0],
			Command: cfg.Command, Started: time.Now().UTC(),
		}
		row.Shoal.Name, row.Peer.Name = r.shoal.name, r.peer.name
		row.Shoal.Command = cfg.shown(work, r.shoal.args("OUT"))
		row.Peer.Command = cfg.shown(work, append(slices.Clone(r.peer.env), r.peer.args("OUT")...))
		res.Rows = append(res.Rows, row)
		fmt.Fprintf(cfg.Progress, "peers: %s: %s\n", name, r.work)
		if r.skipped != "" {
			row.Skipped = r.skipped
			fmt.Fprintf(cfg.Progress, "peers: %s skipped: %s\n", name, r.skipped)
			continue
		}
		if err := cfg.runRow(ctx, r, row, dir); err != nil {
			row.Error = err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			fmt.Fprintf(cfg.Progress, "peers: %s failed: %v\n", name, err)
		} else if !row.Equal {
			errs = append(errs, fmt.Errorf("%s: outputs differ: %s", name, row.Mismatch))
		}
		os.RemoveAll(dir)
		if ctx.Err() != nil {
			break
		}
	}
	res.LoadEnd, res.Finished = loadAverage(), time.Now().UTC()
	return res, errors.Join(errs...)
}

// shown is a command line as the results show it: the work directory is
// WORK, shoal's binary "shoal", the DuckDB side's "duckcmp".
func (cfg *PeersConfig) shown(work string, args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		switch {
		case a == cfg.Shoal:
			a = "shoal"
		case a == cfg.DuckCmp:
			a = "duckcmp"
		}
		out[i] = strings.ReplaceAll(a, work, "WORK")
	}
	return strings.Join(out, " ")
}

// runRow prepares the row's inputs and runs both sides Runs times,
// alternately: shoal first in even runs, the peer first in odd ones.
func (cfg *PeersConfig) runRow(ctx context.Context, r *peerRow, row *PeerRow, dir string) error {
	if err := r.prepare(ctx); err != nil {
		return fmt.Errorf("preparing the input: %w", err)
	}
	row.Equal = true
	for i := range cfg.Runs {
		sides := []struct {
			side *peerSide
			runs *PeerSideRuns
			out  string
		}{
			{&r.shoal, &row.Shoal, filepath.Join(dir, fmt.Sprintf("shoal-out-%d", i))},
			{&r.peer, &row.Peer, filepath.Join(dir, fmt.Sprintf("peer-out-%d", i))},
		}
		if i%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, s := range sides {
			if err := cfg.runSide(ctx, s.side, s.runs, s.out); err != nil {
				return err
			}
			fmt.Fprintf(cfg.Progress, "peers: %s run %d: %s %.2fs, peak RSS %s\n", r.name, i+1, s.side.name,
				s.runs.Seconds[len(s.runs.Seconds)-1], formatBytes(s.runs.PeakRSSBytes[len(s.runs.PeakRSSBytes)-1]))
		}
		shoalOut, peerOut := filepath.Join(dir, fmt.Sprintf("shoal-out-%d", i)), filepath.Join(dir, fmt.Sprintf("peer-out-%d", i))
		if cfg.Perturb != nil {
			if err := cfg.Perturb(r.name, peerOut); err != nil {
				return err
			}
		}
		if err := r.compare(shoalOut, peerOut); err != nil && row.Equal {
			row.Equal, row.Mismatch = false, fmt.Sprintf("run %d: %v", i+1, err)
		}
		os.RemoveAll(shoalOut)
		os.RemoveAll(peerOut)
	}
	row.Shoal.Median, row.Peer.Median = median(row.Shoal.Value), median(row.Peer.Value)
	if row.Peer.Median > 0 {
		row.Ratio = row.Shoal.Median / row.Peer.Median
	}
	return nil
}

func (cfg *PeersConfig) runSide(ctx context.Context, s *peerSide, runs *PeerSideRuns, out string) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.CommandTimeout)
	defer cancel()
	args := s.args(out)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), s.env...)
	var stderr limitedBuffer
	stderr.limit = 64 << 10
	cmd.Stderr = io.MultiWriter(&stderr, cfg.ShoalStderr)
	u, err := runTree(ctx, cmd)
	if err != nil {
		return commandError(s.name, err, stderr.Bytes())
	}
	v := u.Seconds
	if s.value != nil {
		if v, err = s.value(u); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	runs.Seconds = append(runs.Seconds, u.Seconds)
	runs.Value = append(runs.Value, v)
	runs.PeakRSSBytes = append(runs.PeakRSSBytes, u.PeakRSSBytes)
	runs.ConcurrentRSSBytes = append(runs.ConcurrentRSSBytes, u.ConcurrentRSSBytes)
	runs.Processes = max(runs.Processes, u.Processes)
	return nil
}

// recipe builds row name's recipe; its files go in dir.
func (cfg *PeersConfig) recipe(name, dir string) *peerRow {
	shoalRun := func(job, input string) func(string) []string {
		return func(out string) []string {
			args := []string{cfg.Shoal, "run", job, "--input", input, "--output", out, "--ui-addr", "off"}
			if job == "pagerank" {
				args = append(args, "--iterations", strconv.Itoa(cfg.PageRankIterations))
			}
			return args
		}
	}
	gen := func(kind string, records int64, path string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			return cfg.gen(ctx, kind, records, path)
		}
	}
	switch name {
	case "pagerank":
		graph, script := filepath.Join(dir, "graph.txt"), filepath.Join(dir, "peers_networkx.py")
		r := &peerRow{
			name: name, unit: "s",
			work:  fmt.Sprintf("PageRank, `shoal gen graph --records %d` (make demo's graph has 1,000,000 edges), %d iterations, load included", cfg.GraphEdges, cfg.PageRankIterations),
			check: "same pages, every rank equal to a relative 1e-9",
			prepare: func(ctx context.Context) error {
				if err := os.WriteFile(script, []byte(networkxScript), 0o644); err != nil {
					return err
				}
				return gen("graph", cfg.GraphEdges, graph)(ctx)
			},
			shoal: peerSide{name: "shoal run pagerank", args: shoalRun("pagerank", graph)},
			peer: peerSide{name: "networkx " + pythonModuleVersion(cfg.Python, "networkx"), args: func(out string) []string {
				return []string{cfg.Python, script, graph, out, strconv.Itoa(cfg.PageRankIterations), strconv.FormatFloat(jobs.PageRankDamping, 'g', -1, 64)}
			}},
			compare: compareRanks,
		}
		if reason := pythonMissing(cfg.Python, "networkx", "scipy"); reason != "" {
			r.skipped = reason
		}
		return r
	case "sort":
		input := filepath.Join(dir, "records")
		var count int64
		var sum uint64
		return &peerRow{
			name: name, unit: "s",
			work:  fmt.Sprintf("`shoal run sort` of %d gensort records (%s) against GNU sort of the same file as lines", cfg.SortRecords, formatBytes(cfg.SortRecords*jobs.SortRecordSize)),
			check: "shoal's parts sorted and holding the input's records (digest), and byte for byte equal to GNU sort's output",
			prepare: func(ctx context.Context) error {
				if err := writeFile(input, func(w io.Writer) error { return jobs.GenSortASCII(w, cfg.SortRecords, 1) }); err != nil {
					return err
				}
				var err error
				count, sum, err = digestFiles(input)
				return err
			},
			shoal: peerSide{name: "shoal run sort", args: shoalRun("sort", input)},
			peer: peerSide{name: "GNU sort", env: []string{"LC_ALL=C"}, args: func(out string) []string {
				return []string{cfg.SortCommand, "--parallel=2", "-S", "4G", "-T", dir, "-o", out, input}
			}},
			compare: func(shoalOut, peerOut string) error {
				parts, err := partFiles(shoalOut)
				if err != nil {
					return err
				}
				if err := verifySorted(parts, count, sum); err != nil {
					return fmt.Errorf("shoal's output: %w", err)
				}
				return sameBytes(parts, []string{peerOut})
			},
		}
	case "ecommerce":
		input := filepath.Join(dir, "events.csv")
		r := &peerRow{
			name: name, unit: "s",
			work:    fmt.Sprintf("`shoal run ecommerce` of %d rows of `shoal gen ecommerce` against DuckDB, the same group-by as SQL, output to a TSV", cfg.EcommerceRows),
			check:   "the same lines (session, last event time, users, count, sum), in any order",
			prepare: gen("ecommerce", cfg.EcommerceRows, input),
			shoal:   peerSide{name: "shoal run ecommerce", args: shoalRun("ecommerce", input)},
			peer: peerSide{name: "DuckDB (bench/duckcmp)", args: func(out string) []string {
				return []string{cfg.DuckCmp, "--input", input, "--output", out}
			}},
			compare: sameLines,
		}
		if cfg.DuckCmp == "" {
			r.skipped = "no duckcmp binary given (make bench-peers builds bench/duckcmp)"
		} else if _, err := os.Stat(cfg.DuckCmp); err != nil {
			r.skipped = fmt.Sprintf("%s is not built (make bench-peers builds it)", cfg.DuckCmp)
		}
		return r
	case "wordcount":
		text, files := filepath.Join(dir, "text.txt"), filepath.Join(dir, "files")
		return &peerRow{
			name: name, unit: "s",
			work:  fmt.Sprintf("`shoal run wordcount` of a directory of %d files against the same bytes as one file (`shoal gen text --records %d`)", cfg.TextFiles, cfg.TextLines),
			check: "the same words with the same counts",
			prepare: func(ctx context.Context) error {
				if err := cfg.gen(ctx, "text", cfg.TextLines, text); err != nil {
					return err
				}
				return splitLines(text, files, cfg.TextFiles)
			},
			shoal:   peerSide{name: "shoal run wordcount, a directory", args: shoalRun("wordcount", files)},
			peer:    peerSide{name: "shoal run wordcount, one file", args: shoalRun("wordcount", text)},
			compare: sameCounts,
		}
	case "tasks-wide", "tasks-narrow":
		narrow := name == "tasks-narrow"
		side := func(maps int) peerSide {
			label := fmt.Sprintf("%d × %d tasks", maps, maps)
			if narrow {
				label = fmt.Sprintf("%d narrow tasks", maps)
			}
			return peerSide{name: label, args: func(out string) []string {
				args := []string{cfg.Shoal, "bench", "tasks", "--maps", strconv.Itoa(maps), "--records", strconv.FormatInt(cfg.TaskRecords, 10), "--json", "--output", out}
				if narrow {
					return append(args, "--narrow")
				}
				return append(args, "--reduces", strconv.Itoa(maps))
			}, value: tasksValue}
		}
		r := &peerRow{
			name: name, unit: "ms/task", prepare: func(context.Context) error { return nil },
			check:   "each side's count equal to the number of distinct keys (wide) or records (narrow)",
			compare: compareTasks,
		}
		if narrow {
			r.work = fmt.Sprintf("a Map and a Count over %d records in %d partitions: one stage of narrow tasks, against %d partitions", cfg.TaskRecords, cfg.NarrowTasks, cfg.PeerNarrowTasks)
			r.shoal, r.peer = side(cfg.NarrowTasks), side(cfg.PeerNarrowTasks)
		} else {
			r.work = fmt.Sprintf("a ReduceByKey of %d records with %d map and %d reduce tasks, against %d × %d", cfg.TaskRecords, cfg.WideTasks, cfg.WideTasks, cfg.PeerTasks, cfg.PeerTasks)
			r.shoal, r.peer = side(cfg.WideTasks), side(cfg.PeerTasks)
		}
		return r
	}
	panic("bench: no recipe for peer row " + name) // ensureDefaults checked the names
}

// gen runs `shoal gen KIND` into path (untimed).
func (cfg *PeersConfig) gen(ctx context.Context, kind string, records int64, path string) error {
	cmd := exec.CommandContext(ctx, cfg.Shoal, "gen", kind, "--records", strconv.FormatInt(records, 10), "--output", path, "-q")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("shoal gen %s: %w: %s", kind, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// pythonMissing says why python cannot import modules; "" if it can.
func pythonMissing(python string, modules ...string) string {
	args := []string{"-c", "import " + strings.Join(modules, ", ")}
	if out, err := exec.Command(python, args...).CombinedOutput(); err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		return fmt.Sprintf("%s cannot import %s (%s; install Debian's python3-networkx and python3-scipy: make bench-peers does)",
			python, strings.Join(modules, ", "), lines[len(lines)-1])
	}
	return ""
}

// pythonModuleVersion is module.__version__ under python, "" if unknown.
func pythonModuleVersion(python, module string) string {
	out, err := exec.Command(python, "-c", "import "+module+"; print("+module+".__version__)").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
