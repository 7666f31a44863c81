package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"shoal/internal/tail"
	"shoal/shuffleservice/shuffle"
)

// SweepConfig is `shoal bench shuffle --sweep`: the shuffle benchmark
// over a grid of writer modes, map counts, reduce counts and data sizes,
// each cell run in a child process of its own (`shoal bench shuffle
// --json`), with its results kept in a directory.
type SweepConfig struct {
	Modes     []shuffle.Mode
	Maps      []int
	Reduces   []int
	DataBytes []int64 // records' bytes per cell; records = DataBytes / RecordBytes
	// RecordBytes is each record's size, key included; default 100.
	RecordBytes int
	// Nodes is the node services of each cell; default 2, so that half
	// of every reducer's blocks are fetched from the other node.
	Nodes int
	// Codec compresses blocks; default shuffle.DefaultCodec.
	Codec shuffle.Codec
	// Parallelism is passed to each cell (tasks at once); 0 leaves the
	// child's default, GOMAXPROCS.
	Parallelism int
	// Runs is how many times each cell runs (default 1); the cell's
	// figures are the medians. A cell whose first run took RepeatUnder or
	// longer (default 2 minutes) runs once.
	Runs        int
	RepeatUnder time.Duration
	// CellTimeout bounds each run, the child's start and clean-up
	// included (default 10 minutes); a run that reaches it is stopped and
	// recorded as a failure.
	CellTimeout time.Duration
	// MaxOpenFiles, if positive, is passed to each cell (see
	// ShuffleConfig.MaxOpenFiles).
	MaxOpenFiles int
	// SortRecords, if positive, adds `shoal bench sort --records N` (shoal's
	// sort job against GNU sort) to the study, run Runs times.
	SortRecords int64
	// Results is the results directory; default "results/shuffle-study".
	Results string
	// Resume keeps the cells results.json already holds and runs only the
	// others; without it the sweep starts afresh.
	Resume bool
	// Dir is where each run's node directories are made (and removed);
	// default the system's temporary directory.
	Dir string
	// Binary is the shoal binary run for each cell; default the running
	// executable.
	Binary string
	// Command is the command line recorded with the results.
	Command string
	// Progress receives a line per cell started and finished; default
	// discarded.
	Progress io.Writer
	// OnRecorded, if set, is called after each cell is recorded.
	OnRecorded func(*SweepCell)
}

// The study's defaults. Its grid is the command's (`shoal bench shuffle
// --sweep`: --grid-modes, --grid-maps, --grid-reduces, --grid-data).
const (
	DefaultSweepResults     = "results/shuffle-study"
	DefaultCellTimeout      = 10 * time.Minute
	DefaultSweepRepeatUnder = 2 * time.Minute
	// stopGrace is how long a run stopped with SIGTERM may take to report
	// what it measured before its process group is killed.
	stopGrace = 30 * time.Second
)

func (c *SweepConfig) ensureDefaults() error {
	if c.RecordBytes == 0 {
		c.RecordBytes = 100
	}
	if c.Nodes <= 0 {
		c.Nodes = 2
	}
	if c.Runs <= 0 {
		c.Runs = 1
	}
	if c.RepeatUnder <= 0 {
		c.RepeatUnder = DefaultSweepRepeatUnder
	}
	if c.CellTimeout <= 0 {
		c.CellTimeout = DefaultCellTimeout
	}
	if c.Results == "" {
		c.Results = DefaultSweepResults
	}
	if c.Dir == "" {
		c.Dir = os.TempDir()
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		c.Binary = exe
	}
	var errs []error
	if len(c.Modes) == 0 || len(c.Maps) == 0 || len(c.Reduces) == 0 || len(c.DataBytes) == 0 {
		errs = append(errs, errors.New("bench: sweep: the grid needs at least one mode, map count, reduce count and data size"))
	}
	for _, m := range c.Maps {
		if m <= 0 {
			errs = append(errs, fmt.Errorf("bench: sweep: map count %d is not positive", m))
		}
	}
	for _, r := range c.Reduces {
		if r <= 0 || r > shuffle.MaxPartitions {
			errs = append(errs, fmt.Errorf("bench: sweep: reduce count %d outside [1, %d]", r, shuffle.MaxPartitions))
		}
	}
	for _, d := range c.DataBytes {
		if d < int64(c.RecordBytes) {
			errs = append(errs, fmt.Errorf("bench: sweep: data size %d is less than one %d-byte record", d, c.RecordBytes))
		}
	}
	if c.RecordBytes < KeyBytes {
		errs = append(errs, fmt.Errorf("bench: sweep: record bytes must be at least %d (the key), got %d", KeyBytes, c.RecordBytes))
	}
	return errors.Join(errs...)
}

// SweepResults is results.json.
type SweepResults struct {
	Command  string         `json:"command"`
	Grid     SweepGrid      `json:"grid"`
	Machine  Machine        `json:"machine"`
	Sessions []SweepSession `json:"sessions"`
	Cells    []*SweepCell   `json:"cells"`
	Sort     *SortCell      `json:"sort_comparison,omitempty"`
}

// SweepGrid is what a sweep was asked to measure.
type SweepGrid struct {
	Modes              []string `json:"modes"`
	Maps               []int    `json:"maps"`
	Reduces            []int    `json:"reduces"`
	DataBytes          []int64  `json:"data_bytes"`
	RecordBytes        int      `json:"record_bytes"`
	Nodes              int      `json:"nodes"`
	Codec              string   `json:"codec"`
	Runs               int      `json:"runs"`
	RepeatUnderSeconds float64  `json:"repeat_under_seconds"`
	CellTimeoutSeconds float64  `json:"cell_timeout_seconds"`
	MaxOpenFiles       int      `json:"max_open_files,omitempty"`
	SortRecords        int64    `json:"sort_records,omitempty"`
}

// SweepSession is one invocation of the sweep (a resumed sweep has
// several).
type SweepSession struct {
	Start       time.Time  `json:"start"`
	End         time.Time  `json:"end"`
	LoadStart   [3]float64 `json:"load_average_start"`
	LoadEnd     [3]float64 `json:"load_average_end"`
	CellsRun    int        `json:"cells_run"`
	Interrupted bool       `json:"interrupted"`
}

// Cell status values.
const (
	CellOK     = "ok"
	CellFailed = "failed"
)

// SweepCell is one cell of the grid. Its figures are the medians of its
// runs when every run succeeded; for a failed cell they are what the
// failing run measured until it failed (zero where it got nowhere).
type SweepCell struct {
	Mode        string `json:"mode"`
	Maps        int    `json:"maps"`
	Reduces     int    `json:"reduces"`
	DataBytes   int64  `json:"data_bytes"`
	Records     int64  `json:"records"`
	RecordBytes int    `json:"record_bytes"`
	Nodes       int    `json:"nodes"`
	Codec       string `json:"codec"`

	Status string `json:"status"`
	// Reason says why a failed cell failed: the system error ("too many
	// open files (EMFILE)"), "timed out after 10m0s", "killed by the
	// kernel's OOM killer", or the run's error.
	Reason string `json:"reason,omitempty"`
	// Phase is where a failed cell failed: start, write, read or clean-up.
	Phase string `json:"phase,omitempty"`

	TotalSeconds        float64 `json:"total_seconds"`
	WriteSeconds        float64 `json:"write_seconds"`
	ReadSeconds         float64 `json:"read_seconds"`
	MBPerSecond         float64 `json:"mb_per_second"`
	FilesCreated        int     `json:"files_created"`
	PeakOpenFiles       int     `json:"peak_open_files"`
	NodePeakOpenFiles   int     `json:"node_peak_open_files"`
	BytesWritten        int64   `json:"bytes_written"`
	DiskBytes           int64   `json:"disk_bytes"`
	WritePeakRSSBytes   int64   `json:"write_peak_rss_bytes"`
	ProcessPeakRSSBytes int64   `json:"process_peak_rss_bytes"`
	NodePeakRSSBytes    int64   `json:"node_peak_rss_bytes"`
	GCPauseSeconds      float64 `json:"gc_pause_seconds"`
	FetchRequests       int64   `json:"fetch_requests"`
	BlocksServed        int64   `json:"blocks_served"`
	Spills              int     `json:"spills"`

	// LoadStart and LoadEnd are the machine's load average when the
	// cell's first run started and its last ended; CellSeconds the wall
	// time of all its runs, child processes' start and clean-up included.
	LoadStart   [3]float64 `json:"load_average_start"`
	LoadEnd     [3]float64 `json:"load_average_end"`
	Started     time.Time  `json:"started"`
	CellSeconds float64    `json:"cell_seconds"`

	Runs []SweepRun `json:"runs"`
}

// SweepRun is one run of a cell: the child's own report (partial if it
// failed) and what the sweep saw of the child.
type SweepRun struct {
	ShuffleResult
	// ProcessPeakRSSBytes is the child's peak RSS from its rusage, the
	// readers' phase included; known even for a child that was killed.
	ProcessPeakRSSBytes int64      `json:"process_peak_rss_bytes"`
	WallSeconds         float64    `json:"wall_seconds"`
	LoadStart           [3]float64 `json:"load_average_start"`
	LoadEnd             [3]float64 `json:"load_average_end"`
	Reason              string     `json:"reason,omitempty"`
	Stderr              string     `json:"stderr,omitempty"` // the end of a failed child's stderr
}

// key identifies a cell across runs of the sweep.
func (c *SweepCell) key() string {
	return fmt.Sprintf("%s/%d/%d/%d/%d/%d/%s", c.Mode, c.Maps, c.Reduces, c.DataBytes, c.RecordBytes, c.Nodes, c.Codec)
}

// SortCell is the sort comparison's entry in the results.
type SortCell struct {
	Records        int64        `json:"records"`
	Status         string       `json:"status"`
	Reason         string       `json:"reason,omitempty"`
	ShoalSeconds   float64      `json:"shoal_seconds"`    // median
	GNUSortSeconds float64      `json:"gnu_sort_seconds"` // median
	Command        string       `json:"command"`
	Runs           []SortResult `json:"runs"`
	LoadStart      [3]float64   `json:"load_average_start"`
	LoadEnd        [3]float64   `json:"load_average_end"`
}

// RunSweep runs every cell of the grid that the results do not hold yet,
// one child process at a time, and after each cell rewrites results.json,
// results.md and the charts in cfg.Results, so that an interrupted sweep
// keeps the cells it finished. A cell that fails is recorded with its
// reason; the sweep goes on. RunSweep returns ctx's error if ctx ended
// before every cell was run.
func RunSweep(ctx context.Context, cfg SweepConfig) (*SweepResults, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Results, 0o755); err != nil {
		return nil, fmt.Errorf("bench: sweep: results directory: %w", err)
	}
	s := &sweeper{cfg: &cfg, res: &SweepResults{}}
	if cfg.Resume {
		old, err := LoadSweepResults(cfg.Results)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			s.res = old
		}
	}
	s.res.Command = cfg.Command
	s.res.Grid = cfg.grid()
	s.res.Machine = DescribeMachine(cfg.Dir)
	s.res.Sessions = append(s.res.Sessions, SweepSession{Start: time.Now().UTC(), LoadStart: loadAverage()})
	s.session = &s.res.Sessions[len(s.res.Sessions)-1]
	err := s.run(ctx)
	s.session.End, s.session.LoadEnd = time.Now().UTC(), loadAverage()
	s.session.Interrupted = ctx.Err() != nil
	if serr := s.save(); err == nil {
		err = serr
	}
	if err == nil {
		err = ctx.Err()
	}
	return s.res, err
}

func (c *SweepConfig) grid() SweepGrid {
	g := SweepGrid{
		Maps: c.Maps, Reduces: c.Reduces, DataBytes: c.DataBytes, RecordBytes: c.RecordBytes,
		Nodes: c.Nodes, Codec: c.Codec.String(), Runs: c.Runs, RepeatUnderSeconds: c.RepeatUnder.Seconds(),
		CellTimeoutSeconds: c.CellTimeout.Seconds(), MaxOpenFiles: c.MaxOpenFiles, SortRecords: c.SortRecords,
	}
	for _, m := range c.Modes {
		g.Modes = append(g.Modes, m.String())
	}
	return g
}

// cells lists the grid's cells in the order they run: smaller data
// first, then by maps, reduces and mode.
func (c *SweepConfig) cells() []*SweepCell {
	var cells []*SweepCell
	for _, d := range c.DataBytes {
		for _, m := range c.Maps {
			for _, r := range c.Reduces {
				for _, mode := range c.Modes {
					cells = append(cells, &SweepCell{
						Mode: mode.String(), Maps: m, Reduces: r, DataBytes: d,
						Records: d / int64(c.RecordBytes), RecordBytes: c.RecordBytes,
						Nodes: c.Nodes, Codec: c.Codec.String(),
					})
				}
			}
		}
	}
	return cells
}

// LoadSweepResults reads dir/results.json.
func LoadSweepResults(dir string) (*SweepResults, error) {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return nil, err
	}
	var r SweepResults
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("bench: %s: %w (remove it, or run without --resume)", filepath.Join(dir, "results.json"), err)
	}
	return &r, nil
}

type sweeper struct {
	cfg     *SweepConfig
	res     *SweepResults
	session *SweepSession
	started time.Time
}

func (s *sweeper) run(ctx context.Context) error {
	s.started = time.Now()
	done := map[string]bool{}
	for _, c := range s.res.Cells {
		done[c.key()] = true
	}
	var todo []*SweepCell
	for _, c := range s.cfg.cells() {
		if !done[c.key()] {
			todo = append(todo, c)
		}
	}
	sortTodo := s.cfg.SortRecords > 0 && (s.res.Sort == nil || s.res.Sort.Records != s.cfg.SortRecords)
	then := ""
	if sortTodo {
		then = ", then the sort comparison"
	}
	fmt.Fprintf(s.cfg.Progress, "sweep: %d cells to run (%d already recorded in %s)%s\n", len(todo), len(s.res.Cells), s.cfg.Results, then)
	for i, c := range todo {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(s.cfg.Progress, "[%d/%d] start %s%s\n", i+1, len(todo), c.label(), s.eta(todo[i:]))
		if err := s.runCell(ctx, c); err != nil {
			fmt.Fprintf(s.cfg.Progress, "[%d/%d] interrupted %s: not recorded\n", i+1, len(todo), c.label())
			return err
		}
		s.res.Cells = append(s.res.Cells, c)
		s.session.CellsRun++
		if err := s.save(); err != nil {
			return err
		}
		fmt.Fprintf(s.cfg.Progress, "[%d/%d] %s %s: %s%s\n", i+1, len(todo), c.Status, c.label(), c.summary(), s.eta(todo[i+1:]))
		if s.cfg.OnRecorded != nil {
			s.cfg.OnRecorded(c)
		}
	}
	if sortTodo && ctx.Err() == nil {
		fmt.Fprintf(s.cfg.Progress, "sort comparison: %d records, %d run(s)\n", s.cfg.SortRecords, s.cfg.Runs)
		sc, err := s.runSort(ctx)
		if err != nil {
			return err
		}
		s.res.Sort = sc
		if err := s.save(); err != nil {
			return err
		}
		fmt.Fprintf(s.cfg.Progress, "sort comparison %s: shoal %.2fs, GNU sort %.2fs %s\n", sc.Status, sc.ShoalSeconds, sc.GNUSortSeconds, sc.Reason)
	}
	return nil
}

// label names a cell in progress lines.
func (c *SweepCell) label() string {
	return fmt.Sprintf("mode=%s maps=%d reduces=%d data=%s", c.Mode, c.Maps, c.Reduces, formatBytes(c.DataBytes))
}

// summary is a finished cell's figures on one line.
func (c *SweepCell) summary() string {
	var b strings.Builder
	if c.Status == CellFailed {
		fmt.Fprintf(&b, "%s (in %s) | ", c.Reason, cmpOrString(c.Phase, "?"))
	}
	fmt.Fprintf(&b, "total %.2fs (write %.2fs, read %.2fs), %d files, %d open at peak, %s on disk, writer RSS %s, GC %.0f ms, %d fetches, load %.1f, %d run(s) in %s",
		c.TotalSeconds, c.WriteSeconds, c.ReadSeconds, c.FilesCreated, c.PeakOpenFiles, formatBytes(c.DiskBytes),
		formatBytes(c.WritePeakRSSBytes), c.GCPauseSeconds*1e3, c.FetchRequests, c.LoadStart[0], len(c.Runs),
		time.Duration(c.CellSeconds*float64(time.Second)).Round(100*time.Millisecond))
	return b.String()
}

// eta estimates the time the cells todo will take: each as long as the
// mean of the cells of its mode and data size recorded so far, else of
// its data size, else of every cell scaled by data size. Rough: cells of
// one data size differ by orders of magnitude.
func (s *sweeper) eta(todo []*SweepCell) string {
	if len(todo) == 0 {
		return ""
	}
	mean := func(keep func(*SweepCell) bool, perByte bool) (float64, bool) {
		var sum float64
		n := 0
		for _, c := range s.res.Cells {
			if keep(c) {
				v := c.CellSeconds
				if perByte {
					v /= float64(c.DataBytes)
				}
				sum += v
				n++
			}
		}
		return sum / float64(max(n, 1)), n > 0
	}
	var total float64
	for _, t := range todo {
		if m, ok := mean(func(c *SweepCell) bool { return c.Mode == t.Mode && c.DataBytes == t.DataBytes }, false); ok {
			total += m
		} else if m, ok := mean(func(c *SweepCell) bool { return c.DataBytes == t.DataBytes }, false); ok {
			total += m
		} else if m, ok := mean(func(*SweepCell) bool { return true }, true); ok {
			total += m * float64(t.DataBytes)
		} else {
			return ""
		}
	}
	return fmt.Sprintf(" | elapsed %s, ETA ~%s for %d cell(s)", time.Since(s.started).Round(time.Second), (time.Duration(total) * time.Second).Round(time.Second), len(todo))
}

// runCell runs c's runs and fills in its figures. It returns an error
// only if ctx ended: the cell is then not recorded.
func (s *sweeper) runCell(ctx context.Context, c *SweepCell) error {
	start := time.Now()
	c.Started = start.UTC()
	c.LoadStart = loadAverage()
	for i := range s.cfg.Runs {
		run, err := s.runOnce(ctx, c)
		if err != nil {
			return err
		}
		c.Runs = append(c.Runs, run)
		if run.Reason != "" {
			break
		}
		if i == 0 && run.WallSeconds >= s.cfg.RepeatUnder.Seconds() {
			break
		}
	}
	c.LoadEnd = loadAverage()
	c.CellSeconds = time.Since(start).Seconds()
	c.summarize()
	return nil
}

// summarize sets c's status and figures from its runs.
func (c *SweepCell) summarize() {
	runs := c.Runs
	c.Status = CellOK
	if last := runs[len(runs)-1]; last.Reason != "" {
		c.Status, c.Reason, c.Phase = CellFailed, last.Reason, last.Phase
		runs = runs[len(runs)-1:]
	}
	med := func(get func(*SweepRun) float64) float64 {
		v := make([]float64, len(runs))
		for i := range runs {
			v[i] = get(&runs[i])
		}
		return median(v)
	}
	medInt := func(get func(*SweepRun) int64) int64 {
		return int64(med(func(r *SweepRun) float64 { return float64(get(r)) }) + 0.5)
	}
	c.TotalSeconds = med(func(r *SweepRun) float64 { return r.TotalSeconds })
	c.WriteSeconds = med(func(r *SweepRun) float64 { return r.WriteSeconds })
	c.ReadSeconds = med(func(r *SweepRun) float64 { return r.ReadSeconds })
	c.MBPerSecond = med(func(r *SweepRun) float64 { return r.MBPerSecond })
	c.GCPauseSeconds = med(func(r *SweepRun) float64 { return r.GCPauseSeconds })
	c.FilesCreated = int(medInt(func(r *SweepRun) int64 { return int64(r.FilesCreated) }))
	c.PeakOpenFiles = int(medInt(func(r *SweepRun) int64 { return int64(r.PeakOpenFiles) }))
	c.NodePeakOpenFiles = int(medInt(func(r *SweepRun) int64 { return int64(r.NodePeakOpenFiles) }))
	c.Spills = int(medInt(func(r *SweepRun) int64 { return int64(r.Spills) }))
	c.BytesWritten = medInt(func(r *SweepRun) int64 { return r.BytesWritten })
	c.DiskBytes = medInt(func(r *SweepRun) int64 { return r.DiskBytes })
	c.WritePeakRSSBytes = medInt(func(r *SweepRun) int64 { return r.WritePeakRSSBytes })
	c.ProcessPeakRSSBytes = medInt(func(r *SweepRun) int64 { return r.ProcessPeakRSSBytes })
	c.NodePeakRSSBytes = medInt(func(r *SweepRun) int64 { return r.NodePeakRSSBytes })
	c.FetchRequests = medInt(func(r *SweepRun) int64 { return r.FetchRequests })
	c.BlocksServed = medInt(func(r *SweepRun) int64 { return r.BlocksServed })
}

// shuffleArgs is the command line of one run of c.
func (s *sweeper) shuffleArgs(c *SweepCell, dir string) []string {
	args := []string{"bench", "shuffle", "--json",
		"--mode", c.Mode, "--maps", strconv.Itoa(c.Maps), "--reduces", strconv.Itoa(c.Reduces),
		"--records", strconv.FormatInt(c.Records, 10), "--record-bytes", strconv.Itoa(c.RecordBytes),
		"--nodes", strconv.Itoa(c.Nodes), "--codec", c.Codec, "--dir", dir}
	if s.cfg.Parallelism > 0 {
		args = append(args, "--parallelism", strconv.Itoa(s.cfg.Parallelism))
	}
	if s.cfg.MaxOpenFiles > 0 {
		args = append(args, "--max-open-files", strconv.Itoa(s.cfg.MaxOpenFiles))
	}
	return args
}

// runOnce runs c once in a child process. A failed run is a SweepRun with
// a Reason; the error is ctx's, when it ended first.
func (s *sweeper) runOnce(ctx context.Context, c *SweepCell) (SweepRun, error) {
	dir, err := os.MkdirTemp(s.cfg.Dir, "shoal-sweep-")
	if err != nil {
		return SweepRun{Reason: fmt.Sprintf("cannot make its directory: %v", err)}, nil
	}
	defer os.RemoveAll(dir)
	ch, err := s.child(ctx, s.shuffleArgs(c, dir))
	if err != nil {
		return SweepRun{}, err
	}
	run := SweepRun{
		ProcessPeakRSSBytes: ch.peakRSS, WallSeconds: ch.wall.Seconds(),
		LoadStart: ch.loadStart, LoadEnd: ch.loadEnd,
	}
	if line := lastLine(ch.stdout.Bytes()); len(line) > 0 {
		if err := json.Unmarshal(line, &run.ShuffleResult); err != nil {
			run.Error = fmt.Sprintf("cannot parse its result: %v", err)
		}
	} else {
		run.Phase = "start" // it reported nothing
	}
	run.Reason = ch.reason(&run.ShuffleResult)
	if run.Reason == "" && run.DigestRead != run.DigestWritten {
		run.Reason = fmt.Sprintf("records read differ from records written (digest %s, want %s)", run.DigestRead, run.DigestWritten)
	}
	if run.Reason != "" {
		run.Stderr = ch.stderr.String()
	}
	return run, nil
}

// childRun is what the sweep saw of a child process.
type childRun struct {
	stdout             bytes.Buffer
	stderr             *tail.Buffer
	state              *os.ProcessState
	wall               time.Duration
	peakRSS            int64
	timedOut           time.Duration // the limit it reached, if it did
	loadStart, loadEnd [3]float64
	oomBefore          int64
}

// child runs the shoal binary with args in a process group of its own,
// within the cell timeout: at the timeout, or when ctx ends, the child
// gets SIGTERM (it then reports what it measured) and, stopGrace later,
// its process group SIGKILL. It returns an error only if ctx ended.
func (s *sweeper) child(ctx context.Context, args []string) (*childRun, error) {
	ch := &childRun{stderr: &tail.Buffer{Max: 4 << 10}, loadStart: loadAverage(), oomBefore: oomKills()}
	cmd := exec.Command(s.cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = &ch.stdout, ch.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		ch.stderr.Write([]byte(err.Error()))
		return ch, nil
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(s.cfg.CellTimeout)
	defer timer.Stop()
	var interrupted bool
	select {
	case <-done:
	case <-timer.C:
		ch.timedOut = s.cfg.CellTimeout
		stopChild(cmd, done)
	case <-ctx.Done():
		interrupted = true
		stopChild(cmd, done)
	}
	ch.wall = time.Since(start)
	ch.loadEnd = loadAverage()
	ch.state = cmd.ProcessState
	if ru, ok := ch.state.SysUsage().(*syscall.Rusage); ok {
		ch.peakRSS = ru.Maxrss << 10
	}
	if interrupted {
		return nil, ctx.Err()
	}
	return ch, nil
}

// stopChild asks the child to stop, then kills its process group.
func stopChild(cmd *exec.Cmd, done chan error) {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return
	case <-time.After(stopGrace):
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// reason says why a child failed, "" if it did not. res is what it
// reported, if anything.
func (ch *childRun) reason(res *ShuffleResult) string {
	if ch.state == nil {
		return fmt.Sprintf("did not start: %s", ch.stderr.String())
	}
	if ch.timedOut > 0 {
		return fmt.Sprintf("timed out after %v", ch.timedOut)
	}
	ws, _ := ch.state.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled() && ws.Signal() == syscall.SIGKILL && ch.oomBefore >= 0 && oomKills() > ch.oomBefore:
		return "killed by the kernel's OOM killer (SIGKILL; /proc/vmstat oom_kill rose)"
	case ws.Signaled():
		return fmt.Sprintf("killed by signal %v", ws.Signal())
	case ch.state.Success():
		if res.Error != "" {
			return res.Error
		}
		return ""
	case res.Failure != "":
		return res.Failure
	case res.Error != "":
		return res.Error
	}
	return fmt.Sprintf("exited with status %d: %s", ws.ExitStatus(), lastLine([]byte(ch.stderr.String())))
}

// lastLine is the last non-empty line of b.
func lastLine(b []byte) []byte {
	b = bytes.TrimRight(b, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// runSort runs the sort comparison cfg.Runs times.
func (s *sweeper) runSort(ctx context.Context) (*SortCell, error) {
	args := []string{"bench", "sort", "--json", "--records", strconv.FormatInt(s.cfg.SortRecords, 10), "--dir", s.cfg.Dir}
	sc := &SortCell{Records: s.cfg.SortRecords, Status: CellOK, LoadStart: loadAverage(),
		Command: "shoal " + strings.Join(args, " ")}
	for range s.cfg.Runs {
		ch, err := s.child(ctx, args)
		if err != nil {
			return nil, err
		}
		var r SortResult
		if line := lastLine(ch.stdout.Bytes()); len(line) > 0 {
			if err := json.Unmarshal(line, &r); err != nil {
				r = SortResult{}
			}
		}
		if why := ch.reason(&ShuffleResult{}); why != "" || r.ShoalSeconds == 0 {
			sc.Status, sc.Reason = CellFailed, cmpOrString(why, "no result on stdout")
			break
		}
		sc.Runs = append(sc.Runs, r)
	}
	var shoal, gnu []float64
	for _, r := range sc.Runs {
		shoal, gnu = append(shoal, r.ShoalSeconds), append(gnu, r.GNUSortSeconds)
	}
	sc.ShoalSeconds, sc.GNUSortSeconds = median(shoal), median(gnu)
	sc.LoadEnd = loadAverage()
	return sc, nil
}

func cmpOrString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// save writes results.json (through a temporary file renamed into place,
// so that an interrupted write never leaves half a file), results.md,
// machine.md and the charts.
func (s *sweeper) save() error {
	b, err := json.MarshalIndent(s.res, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(s.cfg.Results, "results.json"), append(b, '\n')); err != nil {
		return err
	}
	return WriteSweepReport(s.cfg.Results, s.res)
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// formatBytes writes n in binary units: "100 MiB", "1 GiB", "812 KiB".
func formatBytes(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == float64(int64(v)) || v >= 100 {
		return fmt.Sprintf("%.0f %ciB", v, units[i])
	}
	return fmt.Sprintf("%.1f %ciB", v, units[i])
}
