package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"shoal/checkpoint"
	"shoal/client"
	"shoal/client/ui"
	"shoal/compute"
	"shoal/internal/cli"
	"shoal/jobs"
)

// runConfig holds the flags of `shoal run JOB`.
type runConfig struct {
	input, output  string
	nodes, workers int
	slots          int
	partitions     int
	eventLog       string
	iterations     int
	top            int
	strict         bool
	shuffleMode    string
	shuffleService string
	codec          string
	dir            string
	verbose        bool
	speculation    bool
	killAfter      time.Duration
	cache          string
	cacheBytes     int64
	ckptDir        string
	ckptEvery      int
	ckptKeep       int
	ckptVia        string
	ckptTimeout    time.Duration
	s3Endpoint     string
	resume         bool
	uiAddr         string
	uiWait         bool
	master         string
	secretFile     string
	driverHost     string
	driverListen   string
	tlsDir         string
	tlsServerName  string
	insecure       bool
}

func (c *runConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.input, "input", "", "input `PATH`: a file, or a directory whose files are read recursively (hidden and _ names skipped); or s3://bucket/key, one object or every object under the prefix")
	fs.StringVar(&c.output, "output", "", "output `DIR` for the part files (must not exist, or be an empty directory; never inside the input); or s3://bucket/prefix, under which no object may exist (committed with a _SUCCESS marker)")
	fs.IntVar(&c.nodes, "nodes", 1, "node services to start, each a simulated machine with its own directory and port")
	fs.IntVar(&c.workers, "workers-per-node", 2, "worker processes per node")
	fs.IntVar(&c.slots, "slots", 2, "task slots per worker")
	fs.IntVar(&c.partitions, "partitions", 0, "partitions of the input and of every shuffle (0: the fewest full waves of the cluster's task slots with at most 128 MiB of input each)")
	fs.StringVar(&c.eventLog, "event-log", "", "append the event log (JSON Lines) to this `FILE`")
	fs.IntVar(&c.iterations, "iterations", 20, "pagerank: iterations")
	fs.IntVar(&c.top, "top", 10, "pagerank: print this many top pages")
	fs.BoolVar(&c.strict, "strict", false, "ecommerce: fail on the first malformed row instead of counting it")
	fs.StringVar(&c.shuffleMode, "shuffle-mode", "sort", "shuffle writer: sort, bypass or hash")
	fs.StringVar(&c.codec, "codec", "s2", "shuffle compression: zstd, s2 or none")
	fs.StringVar(&c.shuffleService, "shuffle-service", "on", "on: map outputs are served by the node services and survive their workers; off: by the worker that wrote them, and die with it")
	fs.StringVar(&c.dir, "dir", "", "directory for the node services (default a temporary directory, removed)")
	fs.BoolVar(&c.verbose, "v", false, "show the workers' and node services' logs, and a failure's whole error with any Go stack")
	fs.DurationVar(&c.killAfter, "kill-worker-after", 0, "demo: SIGKILL a busy worker after this long, then report what was redone")
	fs.StringVar(&c.cache, "cache", "", "ecommerce: persist the purchases at this `LEVEL` (MemoryDeser, MemorySer, MemoryAndDisk, DiskOnly, or a _2 variant), count them, then group them from the cache")
	fs.Var((*cli.ByteSize)(&c.cacheBytes), "cache-bytes", "memory `BYTES` of each node service for cached blocks, e.g. 512MiB (0: the node's default, 256 MiB)")
	fs.StringVar(&c.ckptDir, "checkpoint-dir", "", "checkpoint store: s3://bucket/prefix (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), file:///path or a path")
	fs.IntVar(&c.ckptEvery, "checkpoint-every", 0, "pagerank: checkpoint the ranks every `K` iterations (needs --checkpoint-dir)")
	fs.IntVar(&c.ckptKeep, "checkpoint-keep", 2, "delete this run's checkpoints older than its newest `N` (0 keeps all); other runs' are never touched (shoal checkpoints prune)")
	fs.StringVar(&c.ckptVia, "checkpoint-via", "", "who writes checkpoints to the store: node (tasks hand partitions to their node service, which uploads them in the background and keeps a copy; the default locally, and with --master when the nodes were started with the same --checkpoint-dir) or task (each task uploads its own; the default with --master)")
	fs.DurationVar(&c.ckptTimeout, "checkpoint-timeout", client.DefaultCheckpointTimeout, "fail the job when a checkpoint handed to the nodes is not durable in the store within this long")
	fs.StringVar(&c.s3Endpoint, "s3-endpoint", "", "`URL` of the S3-compatible service of s3:// --input, --output and --checkpoint-dir, e.g. http://127.0.0.1:9000 (default $AWS_ENDPOINT_URL; credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	fs.BoolVar(&c.resume, "resume", false, "pagerank: start from the newest complete checkpoint of this job and input in --checkpoint-dir, of any run")
	fs.BoolVar(&c.speculation, "speculation", false, "run a backup copy of a straggling task on another worker; the first to finish wins")
	fs.StringVar(&c.uiAddr, "ui-addr", "127.0.0.1:4040", "serve the live UI, its REST API and /metrics at `ADDR` (the next free port if taken); off disables it")
	fs.BoolVar(&c.uiWait, "ui-wait", false, "keep the UI up after the job, until interrupted (Ctrl-C)")
	fs.StringVar(&c.master, "master", os.Getenv("SHOAL_MASTER"), "run on a cluster of node services: shoal://HOST:PORT[,HOST:PORT...] or dns://NAME[:PORT] (default $SHOAL_MASTER; empty: the embedded local cluster)")
	fs.StringVar(&c.secretFile, "cluster-secret-file", os.Getenv("SHOAL_CLUSTER_SECRET_FILE"), "with --master: `FILE` holding the cluster's secret (default $SHOAL_CLUSTER_SECRET_FILE)")
	fs.StringVar(&c.tlsDir, "tls-dir", os.Getenv("SHOAL_DRIVER_TLS_DIR"), "with --master: `DIR` of the driver's certificate (ca.crt, tls.crt, tls.key: shoal certs client; default $SHOAL_DRIVER_TLS_DIR). Local mode makes its own at every start")
	fs.StringVar(&c.tlsServerName, "tls-server-name", os.Getenv("SHOAL_TLS_SERVER_NAME"), "with --master: the `NAME` every node's certificate carries, checked instead of the address dialled (Kubernetes: the nodes' Service; default $SHOAL_TLS_SERVER_NAME)")
	fs.BoolVar(&c.insecure, "insecure", false, "turn TLS off on every link, for benchmarks; refused unless every address is loopback")
	fs.StringVar(&c.driverHost, "driver-host", "", "with --master: the host or IP the workers reach this driver by (default: this machine's address on its route to the first node)")
	fs.StringVar(&c.driverListen, "driver-listen", "", "the `ADDR` the driver listens on for its workers (default 127.0.0.1:0; with --master :0)")
}

func jobNames() []string { return []string{"wordcount", "ecommerce", "pagerank", "sort"} }

// runRun runs a built-in job on the embedded default cluster.
func runRun(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shoal run", flag.ContinueOnError)
	var c runConfig
	c.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: shoal run JOB --input PATH --output DIR [flags]\n\njobs: %s\n\nflags:\n", strings.Join(jobNames(), ", "))
		fs.PrintDefaults()
	}
	job, rest, err := parseWordAndFlags(fs, args)
	if err != nil {
		return err
	}
	var errs []error
	switch {
	case job == "":
		errs = append(errs, fmt.Errorf("missing the job (one of %s)", strings.Join(jobNames(), ", ")))
	case !slices.Contains(jobNames(), job):
		errs = append(errs, fmt.Errorf("unknown job %q (want one of %s)", job, strings.Join(jobNames(), ", ")))
	}
	if len(rest) > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q (flags only after the job)", rest))
	}
	if c.input == "" {
		errs = append(errs, errors.New("--input is required"))
	}
	if c.output == "" {
		errs = append(errs, errors.New("--output is required"))
	}
	if c.shuffleService != "on" && c.shuffleService != "off" {
		errs = append(errs, fmt.Errorf("--shuffle-service %q: want on or off", c.shuffleService))
	}
	var level client.StorageLevel
	if c.cache != "" {
		var err error
		if level, err = client.ParseStorageLevel(c.cache); err != nil {
			errs = append(errs, fmt.Errorf("--cache: %w", err))
		}
		if job != "ecommerce" {
			errs = append(errs, fmt.Errorf("--cache applies to the ecommerce job, not %s", job))
		}
	}
	if (c.ckptEvery > 0 || c.resume) && job != "pagerank" {
		errs = append(errs, fmt.Errorf("--checkpoint-every and --resume apply to the pagerank job, not %s", job))
	}
	if (c.ckptEvery > 0 || c.resume) && c.ckptDir == "" {
		errs = append(errs, errors.New("--checkpoint-every and --resume need --checkpoint-dir"))
	}
	if c.ckptEvery < 0 || c.ckptKeep < 0 {
		errs = append(errs, errors.New("--checkpoint-every and --checkpoint-keep must not be negative"))
	}
	if c.s3Endpoint != "" && !strings.HasPrefix(c.ckptDir, "s3://") && !strings.HasPrefix(c.input, "s3://") && !strings.HasPrefix(c.output, "s3://") {
		errs = append(errs, errors.New("--s3-endpoint applies to an s3:// --input, --output or --checkpoint-dir"))
	}
	if c.master != "" {
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "nodes", "dir", "cache-bytes", "shuffle-service":
				errs = append(errs, fmt.Errorf("--%s is the embedded cluster's: with --master the nodes are the cluster's (set it on shoal node)", f.Name))
			}
		})
		if _, err := compute.ParseMaster(c.master); err != nil {
			errs = append(errs, fmt.Errorf("--master: %w", err))
		}
	} else if c.driverHost != "" {
		errs = append(errs, errors.New("--driver-host applies with --master"))
	}
	if err := errors.Join(errs...); err != nil {
		return &usageError{err: err, help: "shoal run"}
	}
	// Before any process starts: the job would fail the same way. (An
	// s3:// input is listed when the job starts.)
	if _, err := os.Stat(c.input); err != nil && !strings.HasPrefix(c.input, "s3://") {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("input %s does not exist", c.input)
		}
		return fmt.Errorf("input %s: %w", c.input, err)
	}
	if c.killAfter > 0 && c.eventLog == "" {
		// The recovery report reads the event log.
		f, err := os.CreateTemp("", "shoal-events-*.jsonl")
		if err != nil {
			return err
		}
		f.Close()
		defer os.Remove(f.Name())
		c.eventLog = f.Name()
	}
	opts := client.Options{
		Nodes: c.nodes, WorkersPerNode: c.workers, Slots: c.slots, Dir: c.dir, EventLog: c.eventLog,
		Progress: os.Stderr, ShuffleMode: c.shuffleMode, Codec: c.codec, NoShuffleService: c.shuffleService == "off", Speculation: c.speculation,
		CacheBytes: c.cacheBytes, CheckpointDir: c.ckptDir, S3Endpoint: c.s3Endpoint, CheckpointVia: c.ckptVia, CheckpointTimeout: c.ckptTimeout,
		UIAddr: c.uiAddr, UIKeep: c.uiWait,
	}
	if c.ckptDir != "" {
		opts.CheckpointKeep = c.ckptKeep // its default, 2, means nothing without a store
	}
	opts.DriverListen = c.driverListen
	opts.Insecure = c.insecure
	if c.master != "" {
		opts.Master, opts.DriverHost, opts.Nodes = c.master, c.driverHost, 0
		if !c.insecure {
			opts.TLSDir, opts.TLSServerName = c.tlsDir, c.tlsServerName
		}
		opts.WorkersPerNode = 0 // each node's --workers, unless given
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "workers-per-node" {
				opts.WorkersPerNode = c.workers
			}
		})
		if c.secretFile != "" {
			if opts.ClusterSecret, err = cli.ReadSecretFile(c.secretFile); err != nil {
				return err
			}
		}
	}
	if c.verbose {
		opts.WorkerStderr = os.Stderr
	}
	start := time.Now()
	sc, err := client.NewContext(ctx, opts)
	if err != nil {
		return err
	}
	defer sc.Close()
	if live := sc.UI(); live != nil {
		fmt.Fprintf(os.Stderr, "web UI at %s\n", live.URL())
		if c.uiWait {
			defer waitUI(ctx, sc, live)
		}
	}
	if c.killAfter > 0 {
		killCtx, stopKill := context.WithCancel(ctx)
		defer stopKill()
		go killWorkerAfter(killCtx, sc, c.eventLog, c.killAfter, os.Stderr)
		defer printRecovery(c.eventLog, os.Stderr)
	}
	if c.partitions <= 0 {
		if c.partitions, err = sc.DefaultPartitions(c.input); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "%s: %d partitions (from the input's size and the cluster's task slots)\n", job, c.partitions)
	}
	switch job {
	case "wordcount":
		err = jobs.WordCount(ctx, sc, c.input, c.output, c.partitions)
	case "ecommerce":
		var st jobs.EcommerceStats
		if c.cache != "" {
			st, err = jobs.EcommerceCached(ctx, sc, c.input, c.output, c.partitions, c.strict, level)
		} else {
			st, err = jobs.Ecommerce(ctx, sc, c.input, c.output, c.partitions, c.strict)
		}
		if err == nil {
			if c.cache != "" {
				fmt.Fprintf(os.Stderr, "ecommerce: %d purchases, persisted at %v\n", st.Purchases, level)
			}
			fmt.Fprintf(os.Stderr, "ecommerce: %d malformed rows skipped\n", st.BadRows)
		}
	case "pagerank":
		if c.ckptEvery > 0 {
			if run, err := sc.CheckpointRun(); err == nil {
				fmt.Fprintf(os.Stderr, "pagerank: checkpoints of this run go to %s/%s\n", strings.TrimSuffix(c.ckptDir, "/"), run)
			}
		}
		var res *jobs.PageRankResult
		res, err = jobs.PageRankWith(ctx, sc, c.input, c.output, jobs.PageRankOptions{
			Iterations: c.iterations, Partitions: c.partitions, Top: c.top, CheckpointEvery: c.ckptEvery, Resume: c.resume,
			Resumed: func(m checkpoint.Manifest) {
				if m.Name == "" {
					fmt.Fprintf(os.Stderr, "pagerank: no checkpoint of this job and input in %s: starting from the input\n", c.ckptDir)
					return
				}
				fmt.Printf("resuming from the checkpoint of iteration %s of run %s (%s, created %s)\n",
					m.Meta["iteration"], m.Ref().RunID, m.Name, m.Created.Format(time.RFC3339))
			},
		})
		if err == nil && res.ResumedFrom > 0 {
			fmt.Printf("resumed from the checkpoint of iteration %d of run %s\n", res.ResumedFrom, res.ResumedRun)
		}
		if err == nil && len(res.Planning) > 0 {
			p := res.Planning
			fmt.Fprintf(os.Stderr, "pagerank: planning per iteration: first %v, median %v, last %v\n",
				p[0].Round(time.Microsecond), medianDuration(p).Round(time.Microsecond), p[len(p)-1].Round(time.Microsecond))
		}
		if err == nil {
			fmt.Printf("%d pages, %d iterations; top %d:\n", res.Pages, c.iterations, len(res.Top))
			for i, kv := range res.Top {
				fmt.Printf("%3d  %-12s %.6g\n", i+1, kv.Key, kv.Value)
			}
		}
	case "sort":
		err = runSortJob(ctx, sc, c)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", job, err)
	}
	fmt.Fprintf(os.Stderr, "%s: done in %.2fs, output in %s\n", job, time.Since(start).Seconds(), c.output)
	return nil
}

func medianDuration(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// waitUI closes the context and keeps its UI serving the finished
// application until ctx ends (SIGINT, SIGTERM): `shoal run --ui-wait`.
func waitUI(ctx context.Context, sc *client.Context, live *ui.Live) {
	sc.Close()
	fmt.Fprintf(os.Stderr, "the UI stays up at %s until interrupted (--ui-wait)\n", live.URL())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	live.Close(sctx)
}
