package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"shoal/compute"
	"shoal/internal/nodeproc"
	"shoal/internal/pki"
	"shoal/shuffleservice"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shuffle"
)

// ShuffleConfig is one run of the shuffle benchmark.
type ShuffleConfig struct {
	Mode        shuffle.Mode
	Codec       shuffle.Codec
	SpillCodec  shuffle.Codec // the sort writer's spilled runs
	Maps        int           // map tasks (M)
	Reduces     int           // reduce partitions (R)
	Records     int64         // records in all
	RecordBytes int           // bytes per record, key included (at least KeyBytes)
	Nodes       int           // node-service processes (K), default 1
	// MemoryLimit is each writer's buffer limit; 0 means the default.
	MemoryLimit int
	// Parallelism is the number of map (then reduce) tasks run at once;
	// default GOMAXPROCS, as a worker with that many slots would.
	Parallelism int
	// RemoteOnly fetches every block through the node service, even from
	// the reducer's own node.
	RemoteOnly bool
	// Binary is the shoal binary that runs the node services; default the
	// running executable.
	Binary string
	// Dir holds the node services' directories; default a temporary
	// directory, removed afterwards.
	Dir  string
	Seed uint64
	// NodeStderr receives the node services' logs; default discarded.
	NodeStderr io.Writer
	// SampleInterval is how often the open files of this process and of
	// the node services are counted; default 20 ms (see fdSampler).
	SampleInterval time.Duration
	// MaxOpenFiles, if positive, lowers this process's soft limit of open
	// files (RLIMIT_NOFILE) to it once the node services have started, for
	// the rest of the run: a writer that needs more fails as it would on a
	// machine with that limit.
	MaxOpenFiles int
	// Insecure runs the node services and their clients on plain TCP
	// (loopback). Default: mutual TLS, as everywhere, with an ephemeral
	// CA made for the run (pki.NewEphemeral).
	Insecure bool
}

// ShuffleResult is what one run measured. Field names are the JSON
// contract of `shoal bench shuffle --json`.
type ShuffleResult struct {
	Mode             string  `json:"mode"`
	Codec            string  `json:"codec"`
	Maps             int     `json:"maps"`
	Reduces          int     `json:"reduces"`
	Nodes            int     `json:"nodes"`
	RecordBytes      int     `json:"record_bytes"`
	RecordsWritten   int64   `json:"records_written"`
	RecordsRead      int64   `json:"records_read"`
	DataBytes        int64   `json:"data_bytes"`     // records' bytes, key+value
	BytesWritten     int64   `json:"bytes_written"`  // shuffle files on disk
	FilesCreated     int     `json:"files_created"`  // shuffle files on disk once all maps committed
	Spills           int     `json:"spills"`         // sorted runs spilled by all writers
	FetchRequests    int64   `json:"fetch_requests"` // fetch streams opened by readers
	LocalBytes       int64   `json:"local_bytes"`    // block bytes read from local files
	RemoteBytes      int64   `json:"remote_bytes"`   // block bytes fetched from node services
	WriteSeconds     float64 `json:"write_seconds"`
	ReadSeconds      float64 `json:"read_seconds"`
	TotalSeconds     float64 `json:"total_seconds"` // write + read; for a failed run, the time until it failed
	MBPerSecond      float64 `json:"mb_per_second"` // data_bytes / total_seconds, MB = 1e6 bytes
	PeakRSSBytes     int64   `json:"peak_rss_bytes"`
	NodePeakRSSBytes int64   `json:"node_peak_rss_bytes"` // the largest node service's
	GCPauseSeconds   float64 `json:"gc_pause_seconds"`
	DigestWritten    string  `json:"digest_written"`
	DigestRead       string  `json:"digest_read"`

	// DiskBytes is the space the shuffle files take on disk: their
	// allocated blocks, which for many small files is far more than
	// BytesWritten.
	DiskBytes int64 `json:"disk_bytes"`
	// WritePeakRSSBytes is this process's peak RSS when the last map has
	// committed (VmHWM): the writers' peak, before any reader ran.
	WritePeakRSSBytes int64 `json:"write_peak_rss_bytes"`
	// PeakOpenFiles is the most file descriptors this process (writers
	// and readers of local blocks) held at a sample; NodePeakOpenFiles the
	// largest node service's. OpenFilesSamples is how many samples there
	// were (one more before each commit, when a writer's files are open).
	PeakOpenFiles     int   `json:"peak_open_files"`
	NodePeakOpenFiles int   `json:"node_peak_open_files"`
	OpenFilesSamples  int   `json:"open_files_samples"`
	GCCycles          int64 `json:"gc_cycles"`
	// NodeFetchRequests and BlocksServed are the node services' counts
	// of fetch streams served and blocks sent (their Status).
	NodeFetchRequests int64 `json:"node_fetch_requests"`
	BlocksServed      int64 `json:"blocks_served"`

	// A failed run reports what it measured until it failed: Phase
	// ("start", "write" or "read") is where, Error why, and Failure names
	// the system error behind it when there is one ("too many open files
	// (EMFILE)", ...). All three are empty for a run that succeeded.
	Phase   string `json:"phase,omitempty"`
	Error   string `json:"error,omitempty"`
	Failure string `json:"failure,omitempty"`
}

func (c *ShuffleConfig) ensureDefaults() error {
	if c.Nodes <= 0 {
		c.Nodes = 1
	}
	if c.Parallelism <= 0 {
		c.Parallelism = runtime.GOMAXPROCS(0)
	}
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		c.Binary = exe
	}
	if c.NodeStderr == nil {
		c.NodeStderr = io.Discard
	}
	if c.SampleInterval <= 0 {
		c.SampleInterval = 20 * time.Millisecond
	}
	var errs []error
	if c.Maps <= 0 {
		errs = append(errs, fmt.Errorf("maps must be positive, got %d", c.Maps))
	}
	if c.Reduces <= 0 || c.Reduces > shuffle.MaxPartitions {
		errs = append(errs, fmt.Errorf("reduces must be in [1, %d], got %d", shuffle.MaxPartitions, c.Reduces))
	}
	if c.Records < 0 {
		errs = append(errs, fmt.Errorf("records must not be negative, got %d", c.Records))
	}
	if c.RecordBytes < KeyBytes {
		errs = append(errs, fmt.Errorf("record bytes must be at least %d (the key), got %d", KeyBytes, c.RecordBytes))
	}
	return errors.Join(errs...)
}

// cluster is the node services of one run and a client to each.
type cluster struct {
	procs   []*nodeproc.Process
	clients map[string]*nodeclient.Client
	layouts []shuffle.Layout
	dirs    []string
}

func startCluster(ctx context.Context, cfg *ShuffleConfig, app string) (*cluster, error) {
	cl := &cluster{clients: map[string]*nodeclient.Client{}}
	token := compute.NewSecret() // the application's, as a driver makes it
	var creds nodeclient.Credentials
	var args []string
	if !cfg.Insecure {
		tlsDir := filepath.Join(cfg.Dir, "tls")
		eph, err := pki.NewEphemeral("bench", tlsDir)
		if err != nil {
			return nil, err
		}
		creds.TLS, args = eph.Client, []string{"--tls-dir", tlsDir}
	}
	for i := range cfg.Nodes {
		dir := filepath.Join(cfg.Dir, fmt.Sprintf("node-%d", i))
		p, err := nodeproc.Start(ctx, nodeproc.Options{Binary: cfg.Binary, Dirs: []string{dir}, Args: args, Stderr: cfg.NodeStderr})
		if err != nil {
			cl.stop()
			return nil, fmt.Errorf("starting node service %d: %w", i, err)
		}
		cl.procs = append(cl.procs, p)
		cl.dirs = append(cl.dirs, dir)
		c, err := nodeclient.Dial(p.Addr(), nodeclient.WithCredentials(creds), nodeclient.WithAppToken(token))
		if err != nil {
			cl.stop()
			return nil, err
		}
		cl.clients[p.Addr()] = c
		if err := c.RegisterApp(ctx, app, 0); err != nil {
			cl.stop()
			return nil, err
		}
		layout, err := c.RegisterWorker(ctx, app, "bench", os.Getpid())
		if err != nil {
			cl.stop()
			return nil, err
		}
		cl.layouts = append(cl.layouts, layout)
	}
	return cl, nil
}

func (cl *cluster) client(addr string) (*nodeclient.Client, error) {
	c, ok := cl.clients[addr]
	if !ok {
		return nil, fmt.Errorf("no node service at %s", addr)
	}
	return c, nil
}

func (cl *cluster) stop() {
	for _, c := range cl.clients {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, p := range cl.procs {
		p.Stop(ctx)
	}
}

// RunShuffle starts cfg.Nodes node services, writes cfg.Records records
// through cfg.Maps map writers (map m on node m mod K), reads them back
// through cfg.Reduces readers (reduce r on node r mod K) and reports what
// it measured. A run that fails after its configuration was accepted
// returns, with its error, what it measured until then (see
// ShuffleResult.Phase).
func RunShuffle(ctx context.Context, cfg ShuffleConfig) (*ShuffleResult, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	res := &ShuffleResult{
		Mode: cfg.Mode.String(), Codec: cfg.Codec.String(), Maps: cfg.Maps, Reduces: cfg.Reduces,
		Nodes: cfg.Nodes, RecordBytes: cfg.RecordBytes,
	}
	if err := runShuffle(ctx, &cfg, res); err != nil {
		res.Error, res.Failure = err.Error(), errnoName(err)
		return res, err
	}
	res.Phase = ""
	return res, nil
}

func runShuffle(ctx context.Context, cfg *ShuffleConfig, res *ShuffleResult) error {
	res.Phase = "start"
	dir, done, err := workDir(cfg.Dir, "bench")
	if err != nil {
		return err
	}
	defer done()
	cfg.Dir = dir
	app := fmt.Sprintf("bench-%d-%d", os.Getpid(), time.Now().UnixNano())
	cl, err := startCluster(ctx, cfg, app)
	if err != nil {
		return err
	}
	defer cl.stop()
	defer cl.heartbeat(ctx, app)()
	if cfg.MaxOpenFiles > 0 {
		restore, err := lowerOpenFiles(cfg.MaxOpenFiles)
		if err != nil {
			return err
		}
		defer restore()
	}

	pids := []int{os.Getpid()}
	for _, p := range cl.procs {
		pids = append(pids, p.Pid())
	}
	fds := startFDSampler(cfg.SampleInterval, pids...)
	var gc0 runtime.MemStats
	runtime.ReadMemStats(&gc0)
	start := time.Now()
	var walk time.Duration // counting the files on disk, not part of the shuffle
	defer func() {
		if res.TotalSeconds == 0 { // failed before the read ended: the time until it failed
			res.TotalSeconds = (time.Since(start) - walk).Seconds()
		}
		peaks, samples := fds.Stop()
		res.PeakOpenFiles, res.NodePeakOpenFiles, res.OpenFilesSamples = peaks[0], slices.Max(peaks[1:]), samples
		var gc1 runtime.MemStats
		runtime.ReadMemStats(&gc1)
		res.GCPauseSeconds = float64(gc1.PauseTotalNs-gc0.PauseTotalNs) / 1e9
		res.GCCycles = int64(gc1.NumGC - gc0.NumGC)
		// The kernel's RSS counters are per-CPU and summed approximately, so
		// rusage can read a few pages below the VmHWM read earlier: the
		// run's peak is the larger of the two.
		res.PeakRSSBytes = max(selfPeakRSS(), res.WritePeakRSSBytes)
		for _, p := range cl.procs {
			res.NodePeakRSSBytes = max(res.NodePeakRSSBytes, p.PeakRSS())
		}
	}()

	res.Phase = "write"
	locs, written, err := writeMaps(ctx, cfg, cl, app, res, fds)
	res.WriteSeconds = time.Since(start).Seconds()
	res.WritePeakRSSBytes, _ = statusBytes(os.Getpid(), "VmHWM")
	if err != nil {
		return err
	}
	res.RecordsWritten, res.DigestWritten = int64(written.Count), written.String()
	res.DataBytes = res.RecordsWritten * int64(cfg.RecordBytes)
	walkStart := time.Now()
	res.FilesCreated, res.BytesWritten, res.DiskBytes, err = countShuffleFiles(cl.dirs, app)
	walk = time.Since(walkStart)
	if err != nil {
		return err
	}

	res.Phase = "read"
	readStart := time.Now()
	read, err := readReduces(ctx, cfg, cl, app, locs, res)
	res.ReadSeconds = time.Since(readStart).Seconds()
	if err != nil {
		return err
	}
	res.TotalSeconds = res.WriteSeconds + res.ReadSeconds
	res.RecordsRead, res.DigestRead = int64(read.Count), read.String()
	res.MBPerSecond = float64(res.DataBytes) / 1e6 / res.TotalSeconds

	res.Phase = "clean-up"
	for _, c := range cl.clients {
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		res.NodeFetchRequests += int64(st.FetchRequests)
		res.BlocksServed += int64(st.BlocksServed)
	}
	for _, c := range cl.clients {
		if err := c.RemoveApp(ctx, app); err != nil {
			return err
		}
	}
	return nil
}

// heartbeat keeps app alive on every node service, as a driver does, so
// that a run longer than the nodes' application TTL is not expired in
// the middle. The returned function stops it.
func (cl *cluster) heartbeat(ctx context.Context, app string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(shuffleservice.DefaultAppTTL / 4)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, c := range cl.clients {
				c.Heartbeat(ctx, app) // a missed beat is made up by the next
			}
		}
	}()
	return func() { cancel(); <-done }
}

// lowerOpenFiles lowers this process's soft limit of open files to n
// (never above the hard limit) and returns what restores it.
func lowerOpenFiles(n int) (restore func(), err error) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		return nil, fmt.Errorf("bench: open-file limit: %w", err)
	}
	lim := old
	lim.Cur = min(uint64(n), old.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil, fmt.Errorf("bench: lower the open-file limit to %d: %w", n, err)
	}
	return func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) }, nil
}

// writeMaps runs the map tasks and returns where their outputs live and
// the digest of every record written.
func writeMaps(ctx context.Context, cfg *ShuffleConfig, cl *cluster, app string, res *ShuffleResult, fds *fdSampler) ([]shuffle.MapLocation, *Digest, error) {
	locs := make([]shuffle.MapLocation, cfg.Maps)
	var mu sync.Mutex
	total := &Digest{}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Parallelism)
	// One pool, as a worker with Parallelism slots would have.
	buffers := shuffle.NewBufferPool(cfg.Parallelism)
	per, extra := cfg.Records/int64(cfg.Maps), cfg.Records%int64(cfg.Maps)
	var first int64
	for m := range cfg.Maps {
		n := per
		if int64(m) < extra {
			n++
		}
		row := first
		first += n
		g.Go(func() error {
			node := m % cfg.Nodes
			w, err := shuffle.NewWriter(shuffle.WriterOptions{
				Layout: cl.layouts[node], App: app, Shuffle: 0, Map: uint32(m),
				Partitions: cfg.Reduces, Mode: cfg.Mode, Codec: cfg.Codec, MemoryLimit: cfg.MemoryLimit,
				SpillCodec: cfg.SpillCodec, Buffers: buffers,
			})
			if err != nil {
				return err
			}
			defer w.Discard()
			gen := newRecordGen(cfg.Seed, uint64(m), uint64(row), cfg.RecordBytes)
			var d Digest
			for i := range n {
				if i%4096 == 0 && ctx.Err() != nil {
					return ctx.Err()
				}
				k, v := gen.next()
				d.Add(k, v)
				if err := w.Write(partitionOf(k, cfg.Reduces), k, v); err != nil {
					fds.Sample() // the files held when it failed
					return fmt.Errorf("map %d: %w", m, err)
				}
			}
			// A writer holds the most files just before it commits.
			fds.Sample()
			addr := cl.procs[node].Addr()
			c, _ := cl.client(addr)
			out, err := w.Commit(ctx, c)
			if err != nil {
				return fmt.Errorf("map %d: %w", m, err)
			}
			locs[m] = shuffle.MapLocation{Node: addr, Output: out}
			mu.Lock()
			total.Merge(&d)
			res.Spills += w.Stats().Spills
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return locs, total, nil
}

// readReduces runs the reduce tasks and returns the digest of every record
// read.
func readReduces(ctx context.Context, cfg *ShuffleConfig, cl *cluster, app string, locs []shuffle.MapLocation, res *ShuffleResult) (*Digest, error) {
	var mu sync.Mutex
	total := &Digest{}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Parallelism)
	for r := range cfg.Reduces {
		g.Go(func() error {
			node := r % cfg.Nodes
			opts := shuffle.ReaderOptions{
				App: app, Shuffle: 0, ReduceStart: r, ReduceEnd: r + 1, Maps: locs,
				Clients: nodeclient.Source(cl.client).Fetchers(),
			}
			if !cfg.RemoteOnly {
				opts.LocalNode, opts.LocalLayout = cl.procs[node].Addr(), cl.layouts[node]
			}
			rd, err := shuffle.NewReader(ctx, opts)
			if err != nil {
				return err
			}
			defer rd.Close()
			var d Digest
			for rd.Next() {
				d.Add(rd.Key(), rd.Value())
			}
			if err := rd.Err(); err != nil {
				return fmt.Errorf("reduce %d: %w", r, err)
			}
			st := rd.Stats()
			mu.Lock()
			total.Merge(&d)
			res.FetchRequests += st.FetchRequests
			res.LocalBytes += st.LocalBytes
			res.RemoteBytes += st.RemoteBytes
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return total, nil
}

// countShuffleFiles counts the files the node services hold for app's
// shuffles, their bytes and the bytes of the blocks allocated to them.
func countShuffleFiles(dirs []string, app string) (files int, bytes, allocated int64, err error) {
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(d, app), func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.Type().IsRegular() && strings.Contains(path, string(filepath.Separator)+"shuffle-") {
				info, err := e.Info()
				if err != nil {
					return err
				}
				files++
				bytes += info.Size()
				if st, ok := info.Sys().(*syscall.Stat_t); ok {
					allocated += st.Blocks * 512
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, 0, 0, err
		}
	}
	return files, bytes, allocated, nil
}

// selfPeakRSS is this process's peak resident set size.
func selfPeakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss * 1024
}
