package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"shoal/client"
	"shoal/client/eventlog"
	"shoal/jobs"
)

// PageRankConfig is the checkpoint-interval experiment (`shoal bench
// pagerank`): PageRank on a generated graph, for each checkpoint interval
// run without a fault and with a node killed before iteration KillAt.
type PageRankConfig struct {
	Edges      int64 // of the generated graph; default 200,000
	Iterations int   // default 40
	KillAt     int   // the iteration before which node 1 is killed; default 35
	Partitions int   // default 8
	// Intervals are the checkpoint intervals compared; 0 is no checkpoint.
	// Default 0, 20, 10, 5.
	Intervals []int
	// Dir holds the graph, outputs, checkpoints and event logs; default a
	// temporary directory, removed afterwards.
	Dir string
	// Options configure every cluster (2 nodes of 2 workers by default);
	// EventLog and CheckpointDir are set per run.
	Options client.Options
	Log     io.Writer // a line per run; default discarded
}

// PageRankRow is one checkpoint interval.
type PageRankRow struct {
	Interval int `json:"checkpoint_every"` // 0: none
	// FaultFreeSeconds is the run without a fault; OverheadMs the extra
	// time per iteration it took against the run without checkpoints.
	FaultFreeSeconds float64 `json:"fault_free_seconds"`
	OverheadMs       float64 `json:"overhead_ms_per_iteration"`
	// FaultSeconds is the run with node 1 killed before iteration
	// KillAt; RecoverySeconds how much longer iteration KillAt took than
	// the median iteration of the fault-free run: the cost of the loss.
	FaultSeconds    float64 `json:"fault_seconds"`
	RecoverySeconds float64 `json:"recovery_seconds"`
	// ReachBack is the earliest iteration a task started after the kill
	// belongs to (by stage name); TasksAfterKill counts those tasks.
	ReachBack      int `json:"reach_back_iteration"`
	TasksAfterKill int `json:"tasks_after_kill"`
	// RightAnswer: both runs equal the single-process reference to 1e-12.
	RightAnswer bool `json:"right_answer"`
}

func (cfg *PageRankConfig) ensureDefaults() error {
	if cfg.Edges == 0 {
		cfg.Edges = 200_000
	}
	if cfg.Iterations == 0 {
		cfg.Iterations = 40
	}
	if cfg.KillAt == 0 {
		cfg.KillAt = 35
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 8
	}
	if cfg.Intervals == nil {
		cfg.Intervals = []int{0, 20, 10, 5}
	}
	if cfg.Options.Nodes == 0 {
		cfg.Options.Nodes = 2
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	var errs []error
	if cfg.KillAt < 2 || cfg.KillAt > cfg.Iterations {
		errs = append(errs, fmt.Errorf("kill-at %d must be within iterations 2-%d", cfg.KillAt, cfg.Iterations))
	}
	if cfg.Options.Nodes < 2 {
		errs = append(errs, fmt.Errorf("a node is killed: the cluster needs at least 2 nodes, got %d", cfg.Options.Nodes))
	}
	for _, k := range cfg.Intervals {
		if k < 0 {
			errs = append(errs, fmt.Errorf("checkpoint interval %d is negative", k))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("bench: pagerank: %w", err)
	}
	return nil
}

// RunPageRank runs the experiment: for each interval, a fault-free run
// and a run with the node killed, each on a fresh cluster.
func RunPageRank(ctx context.Context, cfg PageRankConfig) ([]PageRankRow, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	dir, done, err := workDir(cfg.Dir, "pagerank")
	if err != nil {
		return nil, err
	}
	defer done()
	cfg.Dir = dir
	input := filepath.Join(cfg.Dir, "graph.txt")
	if err := generateFile("graph", input, cfg.Edges, 1); err != nil {
		return nil, err
	}
	f, err := os.Open(input)
	if err != nil {
		return nil, err
	}
	want, err := jobs.RefPageRank(f, cfg.Iterations)
	f.Close()
	if err != nil {
		return nil, err
	}
	var rows []PageRankRow
	var baseline float64 // fault-free seconds without checkpoints
	for _, k := range cfg.Intervals {
		row := PageRankRow{Interval: k}
		free, err := cfg.run(ctx, k, false, want)
		if err != nil {
			return rows, err
		}
		faulty, err := cfg.run(ctx, k, true, want)
		if err != nil {
			return rows, err
		}
		row.FaultFreeSeconds, row.FaultSeconds = free.total.Seconds(), faulty.total.Seconds()
		if k == 0 {
			baseline = row.FaultFreeSeconds
		}
		if baseline > 0 {
			row.OverheadMs = (row.FaultFreeSeconds - baseline) * 1000 / float64(cfg.Iterations)
		}
		row.RecoverySeconds = faulty.iterations[cfg.KillAt-1].Seconds() - median(seconds(free.iterations))
		row.ReachBack, row.TasksAfterKill = faulty.reachBack, faulty.tasksAfterKill
		row.RightAnswer = free.right && faulty.right
		fmt.Fprintf(cfg.Log, "checkpoint every %d: fault-free %.2f s, with the node killed %.2f s (iteration %d took %.2f s), recomputation reached back to iteration %d\n",
			k, row.FaultFreeSeconds, row.FaultSeconds, cfg.KillAt, faulty.iterations[cfg.KillAt-1].Seconds(), row.ReachBack)
		rows = append(rows, row)
	}
	return rows, nil
}

// pagerankRun is one run.
type pagerankRun struct {
	total          time.Duration
	iterations     []time.Duration // iteration i at index i-1: from its start to the next's (or the end)
	reachBack      int
	tasksAfterKill int
	right          bool
}

var iterationName = regexp.MustCompile(`\[(\d+)\]`)

func (cfg *PageRankConfig) run(ctx context.Context, every int, kill bool, want map[string]float64) (pagerankRun, error) {
	name := fmt.Sprintf("every-%d-kill-%v", every, kill)
	opts := cfg.Options
	opts.EventLog = filepath.Join(cfg.Dir, name+"-events.jsonl")
	opts.CheckpointDir = filepath.Join(cfg.Dir, name+"-checkpoints")
	c, err := client.NewContext(ctx, opts)
	if err != nil {
		return pagerankRun{}, err
	}
	defer c.Close()
	var (
		r       pagerankRun
		starts  []time.Time
		killErr error
		killAt  int // events in the log when the node was killed
	)
	o := jobs.PageRankOptions{Iterations: cfg.Iterations, Partitions: cfg.Partitions, CheckpointEvery: every,
		BeforeIteration: func(i int) {
			starts = append(starts, time.Now())
			if kill && i == cfg.KillAt {
				evs, _ := eventlog.ReadFile(opts.EventLog)
				killAt = len(evs)
				killErr = c.Local().KillNode(1)
			}
		}}
	out := filepath.Join(cfg.Dir, name+"-out")
	start := time.Now()
	if _, err := jobs.PageRankWith(ctx, c, filepath.Join(cfg.Dir, "graph.txt"), out, o); err != nil {
		return r, fmt.Errorf("bench: pagerank (%s): %w", name, err)
	}
	end := time.Now()
	if killErr != nil {
		return r, killErr
	}
	r.total = end.Sub(start)
	for i, s := range starts {
		next := end
		if i+1 < len(starts) {
			next = starts[i+1]
		}
		r.iterations = append(r.iterations, next.Sub(s))
	}
	got, err := readRanks(out)
	if err != nil {
		return r, err
	}
	r.right = len(got) == len(want)
	for p, v := range want {
		if d := got[p] - v; d > 1e-12 || d < -1e-12 {
			r.right = false
		}
	}
	if kill {
		evs, err := eventlog.ReadFile(opts.EventLog)
		if err != nil {
			return r, err
		}
		r.reachBack, r.tasksAfterKill = reachBack(evs[killAt:], cfg.KillAt)
	}
	os.RemoveAll(out)
	return r, nil
}

// reachBack returns the earliest iteration (by stage name, contribs[i] or
// ranks[i]) of the tasks started in events, and how many tasks started.
func reachBack(events []eventlog.Event, from int) (earliest, tasks int) {
	names := map[int]string{}
	earliest = from
	for _, ev := range events {
		switch ev := ev.(type) {
		case *eventlog.StageSubmitted:
			names[ev.Stage] = ev.Name
		case *eventlog.TaskStart:
			tasks++
			if m := iterationName.FindStringSubmatch(names[ev.Stage]); m != nil {
				it, _ := strconv.Atoi(m[1])
				earliest = min(earliest, it)
			}
		}
	}
	return earliest, tasks
}

// readRanks reads a pagerank output.
func readRanks(dir string) (map[string]float64, error) {
	lines, err := readParts(dir)
	if err != nil {
		return nil, err
	}
	out := make(map[string]float64, len(lines))
	for _, l := range lines {
		var page string
		var rank float64
		if _, err := fmt.Sscanf(l, "%s\t%g", &page, &rank); err != nil {
			return nil, fmt.Errorf("bench: pagerank output line %q: %w", l, err)
		}
		out[page] = rank
	}
	return out, nil
}

func seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// PageRankCharts draws the experiment's rows as two SVG charts against
// the checkpoint interval (no checkpoint drawn at x = iterations): the
// tasks run again after the kill, and the iteration the recomputation
// reached back to.
func PageRankCharts(cfg PageRankConfig, rows []PageRankRow) (tasks, reach []byte) {
	sub := fmt.Sprintf("PageRank, %d edges, %d iterations, node 1 of 2 killed before iteration %d", cfg.Edges, cfg.Iterations, cfg.KillAt)
	x := func(r PageRankRow) float64 {
		if r.Interval == 0 || r.Interval >= cfg.Iterations {
			return float64(cfg.Iterations)
		}
		return float64(r.Interval)
	}
	chart := func(title, ylabel string, y func(PageRankRow) float64) []byte {
		ch := &lineChart{
			Title: title, Subtitle: sub,
			XLabel: "checkpoint every K iterations (log scale)", YLabel: ylabel,
			Series: []chartSeries{{Name: "measured", Color: "#1f77b4", Marker: "circle"}},
			Panels: []chartPanel{{Title: title, Points: make([][]chartPoint, 1)}},
			Cols:   1,
		}
		for _, r := range rows {
			label := strconv.Itoa(r.Interval)
			if x(r) == float64(cfg.Iterations) {
				label = "never"
			}
			ch.XTicks = append(ch.XTicks, chartTick{X: x(r), Label: label})
		}
		sorted := slices.Clone(rows)
		slices.SortFunc(sorted, func(a, b PageRankRow) int { return cmp.Compare(x(a), x(b)) })
		for _, r := range sorted {
			ch.Panels[0].Points[0] = append(ch.Panels[0].Points[0], chartPoint{X: x(r), Y: y(r)})
		}
		return ch.SVG()
	}
	tasks = chart("Tasks run again after the node's loss", "tasks", func(r PageRankRow) float64 { return float64(r.TasksAfterKill) })
	reach = chart("Earliest iteration recomputed after the loss", "iteration", func(r PageRankRow) float64 { return float64(r.ReachBack) })
	return tasks, reach
}
