package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"shoal/bench"
	"shoal/client"
	"shoal/internal/cli"
	"shoal/internal/miniotest"
	"shoal/shuffleservice/shuffle"
)

// runBench dispatches `shoal bench KIND`.
func runBench(ctx context.Context, args []string) error {
	kinds := map[string]func(context.Context, []string) error{
		"shuffle":    runBenchShuffle,
		"reduce":     runBenchReduce,
		"sort":       runBenchSort,
		"cache":      runBenchCache,
		"checkpoint": runBenchCheckpoint,
		"pagerank":   runBenchPageRank,
		"peers":      runBenchPeers,
		"tasks":      runBenchTasks,
	}
	return dispatch(ctx, "shoal bench", kinds, args)
}

// benchShuffleConfig holds the flags of `shoal bench shuffle`.
type benchShuffleConfig struct {
	mode, codec   string
	spillCodec    string
	maps, reduces int
	records       int64
	recordBytes   int
	nodes         int
	memoryLimit   int
	parallelism   int
	remoteOnly    bool
	insecure      bool
	dir           string
	json          bool
	verbose       bool
	cpuProfile    string
	maxOpenFiles  int
	sweep         benchSweepConfig
}

func (c *benchShuffleConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.mode, "mode", "sort", "shuffle writer: sort, bypass or hash")
	fs.StringVar(&c.codec, "codec", shuffle.DefaultCodec.String(), "block compression: zstd, s2 or none")
	fs.StringVar(&c.spillCodec, "spill-codec", "none", "compression of the sort writer's spilled runs: zstd, s2 or none")
	fs.IntVar(&c.maps, "maps", 16, "map tasks (M)")
	fs.IntVar(&c.reduces, "reduces", 256, "reduce partitions (R)")
	fs.Int64Var(&c.records, "records", 1_000_000, "records in all")
	fs.IntVar(&c.recordBytes, "record-bytes", 100, "bytes per record, 10-byte key included")
	fs.IntVar(&c.nodes, "nodes", 0, "node-service processes to start (default 1; 2 with --sweep)")
	fs.IntVar(&c.memoryLimit, "memory-limit", shuffle.DefaultMemoryLimit, "each writer's buffer limit in bytes (small values force spills)")
	fs.IntVar(&c.parallelism, "parallelism", 0, "tasks run at once (default GOMAXPROCS)")
	fs.BoolVar(&c.remoteOnly, "remote-only", false, "fetch every block through the node service, even same-node ones")
	fs.BoolVar(&c.insecure, "insecure", false, "plain TCP to the node services instead of mutual TLS (an ephemeral CA made for the run), to measure TLS's cost")
	fs.StringVar(&c.dir, "dir", "", "directory for the node services' files (default a temporary directory, removed)")
	fs.BoolVar(&c.json, "json", false, "print one JSON object instead of a table")
	fs.BoolVar(&c.verbose, "v", false, "show the node services' logs, and a failure's whole error with any Go stack")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the benchmark process to this file")
	fs.IntVar(&c.maxOpenFiles, "max-open-files", 0, "lower this process's open-file limit (ulimit -n) to this once the node services run, to see a mode fail as it would under that limit")
	c.sweep.register(fs)
}

func runBenchShuffle(ctx context.Context, args []string) error {
	var c benchShuffleConfig
	fs := flag.NewFlagSet("shoal bench shuffle", flag.ContinueOnError)
	setUsage(fs, "shoal bench shuffle [--mode sort|bypass|hash] [--maps M] [--reduces R] [--records N] [flags]\n       shoal bench shuffle --sweep [--quick] [--results DIR] [--resume] [flags]")
	c.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if c.sweep.on {
		return runBenchSweep(ctx, fs, &c)
	}
	var sweepOnly []string
	fs.Visit(func(f *flag.Flag) {
		if slices.Contains(sweepOnlyFlags(), f.Name) {
			sweepOnly = append(sweepOnly, "--"+f.Name)
		}
	})
	if len(sweepOnly) > 0 {
		return usageErrorf("shoal bench shuffle", "%s need --sweep", strings.Join(sweepOnly, ", "))
	}
	if c.nodes == 0 {
		c.nodes = 1
	}
	mode, err1 := shuffle.ParseMode(c.mode)
	codec, err2 := shuffle.ParseCodec(c.codec)
	spillCodec, err3 := shuffle.ParseCodec(c.spillCodec)
	if err := errors.Join(err1, err2, err3); err != nil {
		return err
	}
	cfg := bench.ShuffleConfig{
		Mode: mode, Codec: codec, SpillCodec: spillCodec, Maps: c.maps, Reduces: c.reduces, Records: c.records,
		RecordBytes: c.recordBytes, Nodes: c.nodes, MemoryLimit: c.memoryLimit,
		Parallelism: c.parallelism, RemoteOnly: c.remoteOnly, Dir: c.dir, Seed: 1,
		MaxOpenFiles: c.maxOpenFiles, Insecure: c.insecure,
	}
	if c.verbose {
		cfg.NodeStderr = os.Stderr
	}
	stop, err := startCPUProfile(c.cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	res, err := bench.RunShuffle(ctx, cfg)
	if c.json && res != nil {
		// A failed run still reports what it measured (the sweep reads it).
		if jerr := json.NewEncoder(os.Stdout).Encode(res); err == nil {
			return jerr
		}
	}
	if err != nil {
		return err
	}
	if c.json {
		return nil
	}
	printShuffleResult(os.Stdout, res)
	if res.DigestWritten != res.DigestRead {
		return fmt.Errorf("records read differ from records written (digest %s, want %s)", res.DigestRead, res.DigestWritten)
	}
	return nil
}

// benchSweepConfig holds the flags of `shoal bench shuffle --sweep`.
type benchSweepConfig struct {
	on, quick, resume, report bool
	results                   string
	modes, maps, reduces      string
	data                      string
	runs                      int
	repeatUnder, cellTimeout  time.Duration
	sortRecords               int64
}

func (c *benchSweepConfig) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.on, "sweep", false, "run the shuffle study: every mode over a grid of maps, reduces and data sizes, each cell a child process, results in --results")
	fs.BoolVar(&c.quick, "quick", false, "with --sweep: a grid that takes seconds (4 MiB, 4 maps, 10 and 100 reduces, 1 run, 100,000 sort records); grid flags given override it")
	fs.StringVar(&c.results, "results", bench.DefaultSweepResults, "with --sweep: the results directory (results.json, results.md, machine.md, charts)")
	fs.BoolVar(&c.resume, "resume", false, "with --sweep: keep the cells results.json holds and run the others")
	fs.BoolVar(&c.report, "report", false, "with --sweep: only write results.md, machine.md and the charts again from results.json")
	fs.StringVar(&c.modes, "grid-modes", "sort,bypass,hash", "with --sweep: writer modes")
	fs.StringVar(&c.maps, "grid-maps", "16,64,256", "with --sweep: map task counts")
	fs.StringVar(&c.reduces, "grid-reduces", "10,100,1000,10000", "with --sweep: reduce partition counts")
	fs.StringVar(&c.data, "grid-data", "100MiB,1GiB", "with --sweep: data sizes (records' bytes)")
	fs.IntVar(&c.runs, "runs", 3, "with --sweep: runs per cell; the figures are medians")
	fs.DurationVar(&c.repeatUnder, "repeat-under", bench.DefaultSweepRepeatUnder, "with --sweep: a cell whose first run took this long or longer runs once")
	fs.DurationVar(&c.cellTimeout, "cell-timeout", bench.DefaultCellTimeout, "with --sweep: time limit of each run of a cell (recorded as a failure when reached)")
	fs.Int64Var(&c.sortRecords, "sort-records", 10_000_000, "with --sweep: gensort records of the sort comparison (shoal bench sort) run after the cells; 0 skips it")
}

// sweepOnlyFlags and singleRunFlags are the flags that make sense with
// --sweep and without it.
func sweepOnlyFlags() []string {
	return []string{"quick", "results", "resume", "report", "grid-modes", "grid-maps", "grid-reduces", "grid-data", "runs", "repeat-under", "cell-timeout", "sort-records"}
}

func singleRunFlags() []string {
	return []string{"mode", "maps", "reduces", "records", "memory-limit", "spill-codec", "remote-only", "json", "cpuprofile"}
}

// runBenchSweep runs `shoal bench shuffle --sweep`.
func runBenchSweep(ctx context.Context, fs *flag.FlagSet, c *benchShuffleConfig) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var wrong []string
	for _, name := range singleRunFlags() {
		if set[name] {
			wrong = append(wrong, "--"+name)
		}
	}
	if len(wrong) > 0 {
		return usageErrorf("shoal bench shuffle", "%s apply to one run, not to --sweep (use --grid-modes, --grid-maps, --grid-reduces, --grid-data)", strings.Join(wrong, ", "))
	}
	sw := &c.sweep
	if sw.report {
		res, err := bench.LoadSweepResults(sw.results)
		if err != nil {
			return err
		}
		return bench.WriteSweepReport(sw.results, res)
	}
	if sw.quick {
		quick := map[string]func(){
			"grid-maps":    func() { sw.maps = "4" },
			"grid-reduces": func() { sw.reduces = "10,100" },
			"grid-data":    func() { sw.data = "4MiB" },
			"runs":         func() { sw.runs = 1 },
			"sort-records": func() { sw.sortRecords = 100_000 },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	cfg := bench.SweepConfig{
		RecordBytes: c.recordBytes, Nodes: c.nodes, Parallelism: c.parallelism,
		Runs: sw.runs, RepeatUnder: sw.repeatUnder, CellTimeout: sw.cellTimeout, MaxOpenFiles: c.maxOpenFiles,
		SortRecords: sw.sortRecords, Results: sw.results, Resume: sw.resume, Dir: c.dir,
		Command: "shoal " + strings.Join(os.Args[1:], " "), Progress: os.Stderr,
	}
	var errs []error
	for _, m := range strings.Split(sw.modes, ",") {
		mode, err := shuffle.ParseMode(strings.TrimSpace(m))
		errs = append(errs, err)
		cfg.Modes = append(cfg.Modes, mode)
	}
	var err error
	cfg.Codec, err = shuffle.ParseCodec(c.codec)
	errs = append(errs, err)
	cfg.Maps, err = parseInts("--grid-maps", sw.maps)
	errs = append(errs, err)
	cfg.Reduces, err = parseInts("--grid-reduces", sw.reduces)
	errs = append(errs, err)
	for _, d := range strings.Split(sw.data, ",") {
		n, err := parseBytes(strings.TrimSpace(d))
		errs = append(errs, err)
		cfg.DataBytes = append(cfg.DataBytes, n)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	res, err := bench.RunSweep(ctx, cfg)
	if res != nil {
		failed := 0
		for _, cell := range res.Cells {
			if cell.Status != bench.CellOK {
				failed++
			}
		}
		fmt.Fprintf(os.Stderr, "sweep: %d cells recorded (%d failed) in %s\n", len(res.Cells), failed, cfg.Results)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("interrupted; the cells finished are kept in %s (add --resume to run the rest)", cfg.Results)
	}
	return err
}

func parseInts(flagName, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a number", flagName, f)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseBytes parses "100MiB", "1GiB", "512KiB", "1GB", "500MB" or a
// plain number of bytes.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("--grid-data: %q is not a size such as 100MiB or 1GiB", s)
			}
			return int64(n * float64(u.mult)), nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("--grid-data: %q is not a size such as 100MiB or 1GiB", s)
	}
	return n, nil
}

func printShuffleResult(w io.Writer, r *bench.ShuffleResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, format string, v ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, v...)...)
	}
	row("mode", "%s (codec %s)", r.Mode, r.Codec)
	row("maps × reduces", "%d × %d on %d node(s)", r.Maps, r.Reduces, r.Nodes)
	row("records", "%d written, %d read, %d bytes each", r.RecordsWritten, r.RecordsRead, r.RecordBytes)
	row("data", "%.1f MB", float64(r.DataBytes)/1e6)
	row("on disk", "%.1f MB in %d files (%d spills)", float64(r.BytesWritten)/1e6, r.FilesCreated, r.Spills)
	row("read", "%.1f MB local, %.1f MB fetched in %d requests", float64(r.LocalBytes)/1e6, float64(r.RemoteBytes)/1e6, r.FetchRequests)
	row("time", "write %.2fs + read %.2fs = %.2fs", r.WriteSeconds, r.ReadSeconds, r.TotalSeconds)
	row("throughput", "%.0f MB/s of records", r.MBPerSecond)
	row("disk", "%.1f MB allocated", float64(r.DiskBytes)/1e6)
	row("peak open files", "%d (bench), %d (largest node), %d samples", r.PeakOpenFiles, r.NodePeakOpenFiles, r.OpenFilesSamples)
	row("peak RSS", "%.0f MiB (bench, writers: %.0f MiB), %.0f MiB (largest node)", float64(r.PeakRSSBytes)/(1<<20), float64(r.WritePeakRSSBytes)/(1<<20), float64(r.NodePeakRSSBytes)/(1<<20))
	row("GC pauses", "%.3fs", r.GCPauseSeconds)
	ok := "equal"
	if r.DigestRead != r.DigestWritten {
		ok = "DIFFERENT"
	}
	row("digest", "%s (%s)", r.DigestRead, ok)
	tw.Flush()
}

// runBenchReduce runs `shoal bench reduce`.
func runBenchReduce(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shoal bench reduce", flag.ContinueOnError)
	setUsage(fs, "shoal bench reduce [--records N] [--keys K] [--partitions P] [--json]")
	cfg := bench.ReduceConfig{}
	fs.Int64Var(&cfg.Records, "records", 10_000_000, "records (i, 1)")
	fs.Int64Var(&cfg.Keys, "keys", 1_000_000, "distinct keys")
	fs.IntVar(&cfg.Partitions, "partitions", 8, "partitions of the input and of the shuffle")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	res, err := bench.RunReduce(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("reduceByKey of %d records onto %d keys in %d partitions\n", res.Records, res.Keys, res.Partitions)
	fmt.Printf("  shoal (embedded default)   %.2fs\n", res.EngineSeconds)
	fmt.Printf("  one goroutine, Go map      %.2fs\n", res.MapSeconds)
	fmt.Printf("  ratio                      %.2f×\n", res.Ratio)
	return nil
}

// runBenchCache runs `shoal bench cache`: counting the ecommerce
// purchases from their cached blocks against recomputing them from the
// CSV.
func runBenchCache(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shoal bench cache", flag.ContinueOnError)
	setUsage(fs, "shoal bench cache [--rows N] [--runs N] [--level LEVEL] [--json]")
	cfg := bench.CacheConfig{}
	fs.Int64Var(&cfg.Rows, "rows", 2_000_000, "rows of generated ecommerce CSV")
	fs.IntVar(&cfg.Partitions, "partitions", 8, "partitions of the input")
	fs.IntVar(&cfg.Runs, "runs", 5, "timed counts of each kind")
	fs.Var((*cli.ByteSize)(&cfg.Options.CacheBytes), "cache-bytes", "each node service's memory for blocks, e.g. 1GiB (0: the node's default, 256 MiB)")
	level := fs.String("level", "MemorySer", "storage `LEVEL` of the purchases")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	l, err := client.ParseStorageLevel(*level)
	if err != nil {
		return err
	}
	cfg.Level = l
	res, err := bench.RunCache(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("count of the purchases of %d ecommerce rows (%.0f MB CSV, %d purchases, %d partitions), %d runs each\n",
		res.Rows, float64(res.InputBytes)/1e6, res.Purchases, res.Partitions, len(res.CachedSeconds))
	fmt.Printf("  recomputed from the CSV      median %.3fs  %v\n", res.MedianRecompute, res.RecomputeSeconds)
	fmt.Printf("  read from %-18s median %.3fs  %v\n", res.Level+" blocks", res.MedianCached, res.CachedSeconds)
	fmt.Printf("  speed-up                     %.1f×\n", res.Speedup)
	return nil
}

// runBenchPageRank runs `shoal bench pagerank`: recovery from a node's
// loss against the checkpoint interval.
func runBenchPageRank(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shoal bench pagerank", flag.ContinueOnError)
	setUsage(fs, "shoal bench pagerank [--edges N] [--iterations N] [--kill-at I] [--intervals 0,20,10,5] [--results DIR]")
	cfg := bench.PageRankConfig{Log: os.Stderr}
	fs.Int64Var(&cfg.Edges, "edges", 200_000, "edges of the generated graph")
	fs.IntVar(&cfg.Iterations, "iterations", 40, "iterations")
	fs.IntVar(&cfg.KillAt, "kill-at", 35, "kill node 1 before this iteration")
	fs.IntVar(&cfg.Partitions, "partitions", 8, "partitions")
	intervals := fs.String("intervals", "0,20,10,5", "checkpoint intervals to compare (0: none)")
	asJSON := fs.Bool("json", false, "print one JSON array")
	results := fs.String("results", "", "also write results.json, results.md and the charts (SVG) to this `DIR`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	for _, f := range strings.Split(*intervals, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return fmt.Errorf("--intervals %q: %w", *intervals, err)
		}
		cfg.Intervals = append(cfg.Intervals, k)
	}
	rows, err := bench.RunPageRank(ctx, cfg)
	if err != nil {
		return err
	}
	if *results != "" {
		if err := writePageRankResults(*results, cfg, rows); err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(rows)
	}
	return printPageRankRows(os.Stdout, cfg, rows)
}

// writePageRankResults writes the experiment's JSON, table and charts.
func writePageRankResults(dir string, cfg bench.PageRankConfig, rows []bench.PageRankRow) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# Recovery against the checkpoint interval\n\nWritten by `shoal bench pagerank --results %s`.\n\n```\n", dir)
	printPageRankRows(&md, cfg, rows)
	md.WriteString("```\n\n![tasks run again](tasks.svg)\n\n![reach back](reach-back.svg)\n")
	tasks, reach := bench.PageRankCharts(cfg, rows)
	for name, b := range map[string][]byte{"results.json": js, "results.md": []byte(md.String()), "tasks.svg": tasks, "reach-back.svg": reach} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func printPageRankRows(w io.Writer, cfg bench.PageRankConfig, rows []bench.PageRankRow) error {
	fmt.Fprintf(w, "PageRank, %d edges, %d iterations, node 1 of 2 killed before iteration %d\n", cfg.Edges, cfg.Iterations, cfg.KillAt)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "checkpoint every\tfault-free\toverhead per iteration\twith the node killed\trecovery\trecomputed back to iteration\ttasks after the kill\tright answer")
	for _, r := range rows {
		every := "never"
		if r.Interval > 0 {
			every = strconv.Itoa(r.Interval)
		}
		fmt.Fprintf(tw, "%s\t%.2f s\t%+.0f ms\t%.2f s\t%.2f s\t%d\t%d\t%v\n", every, r.FaultFreeSeconds, r.OverheadMs, r.FaultSeconds, r.RecoverySeconds, r.ReachBack, r.TasksAfterKill, r.RightAnswer)
	}
	return tw.Flush()
}

// runBenchSort runs `shoal bench sort`: the sort job against GNU sort on
// the same file.
func runBenchSort(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shoal bench sort", flag.ContinueOnError)
	setUsage(fs, "shoal bench sort [--records N] [--parts P] [--json]")
	cfg := bench.SortConfig{Seed: 1}
	fs.Int64Var(&cfg.Records, "records", 10_000_000, "gensort records of 100 bytes")
	fs.IntVar(&cfg.Parts, "parts", 0, "output parts (default one per 64 MiB, at least 4)")
	fs.StringVar(&cfg.Dir, "dir", "", "where to make the work directory (default the system's temporary directory)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	res, err := bench.RunSortComparison(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("sort of %d gensort records (%.0f MB), both outputs verified\n", res.Records, float64(res.InputBytes)/1e6)
	fmt.Printf("  shoal sort job (embedded default, %d parts)   %.2fs\n", res.Parts, res.ShoalSeconds)
	fmt.Printf("  LC_ALL=C sort %s   %.2fs\n", strings.Join(res.GNUSortArgs[:3], " "), res.GNUSortSeconds)
	return nil
}

// runBenchCheckpoint runs `shoal bench checkpoint`: a checkpoint written
// to a local MinIO against one PutObject of the same bytes.
func runBenchCheckpoint(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shoal bench checkpoint", flag.ContinueOnError)
	setUsage(fs, "shoal bench checkpoint [--runs N] [--random] [--json] [--minio PATH]")
	cfg := bench.CheckpointConfig{Seed: 1}
	fs.StringVar(&cfg.MinioBinary, "minio", miniotest.FindBinary(), "the MinIO server binary (make test installs it)")
	fs.IntVar(&cfg.Runs, "runs", 5, "runs of each side; medians are reported")
	fs.IntVar(&cfg.Partitions, "partitions", 8, "partitions of the checkpoint")
	fs.IntVar(&cfg.PartitionBytes, "partition-bytes", 32<<20, "bytes per partition")
	fs.IntVar(&cfg.Parallelism, "parallelism", 0, "partitions written at once (default: the embedded default's task slots, 2 workers × 2)")
	fs.BoolVar(&cfg.Random, "random", false, "incompressible random bytes instead of gensort-like records")
	fs.StringVar(&cfg.Dir, "dir", "", "MinIO's working directory (default a temporary directory, removed)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	res, err := bench.RunCheckpointBench(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	mb := func(v float64) string { return fmt.Sprintf("%.0f MB/s", v) }
	runs := func(xs []float64) string {
		s := make([]string, len(xs))
		for i, x := range xs {
			s[i] = fmt.Sprintf("%.0f", x)
		}
		return strings.Join(s, " ")
	}
	fmt.Printf("checkpoint of %d × %.1f MB (%s, %.1f MB stored) to a local MinIO, %d partitions at once, %d runs\n",
		res.Partitions, float64(res.PartitionBytes)/1e6, res.Data, float64(res.StoredBytes)/1e6, res.Parallelism, res.Runs)
	fmt.Printf("  checkpoint write          %s  (runs: %s)\n", mb(res.CheckpointMed), runs(res.CheckpointMBs))
	fmt.Printf("  one PutObject, same bytes %s  (runs: %s)\n", mb(res.BaselineMed), runs(res.BaselineMBs))
	fmt.Printf("  ratio                     %.0f%%\n", 100*res.Ratio)
	return nil
}

// startCPUProfile starts a CPU profile of this process into path (none
// when path is empty); stop ends it and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
