package client

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"shoal/checkpoint"
	"shoal/client/eventlog"
	"shoal/client/ui"
	"shoal/compute"
	"shoal/shuffleservice"
)

// Options configure a Context. The zero value is the embedded default: one
// node service and two workers as child processes on 127.0.0.1.
type Options struct {
	// App names the application; default "shoal-PID-UNIXMILLI".
	App string
	// Nodes, WorkersPerNode and Slots shape the local cluster: Nodes node
	// services (simulated machines), each with WorkersPerNode workers of
	// Slots task slots. Defaults 1, 2, 2.
	Nodes, WorkersPerNode, Slots int
	// Dir holds the node services' directories; default a temporary
	// directory, removed by Close.
	Dir string
	// Binary is re-executed as the workers (and, unless NodeBinary is set,
	// as the node services); default the running executable, which must
	// call Init first thing in main.
	Binary, NodeBinary string
	// EventLog, if set, is the file the event log (DESIGN.md §8) is
	// appended to.
	EventLog string
	// Progress receives a progress line per stage (stderr in the CLI);
	// nil prints nothing.
	Progress io.Writer
	// ShuffleMode and Codec choose the shuffle writer and its compression
	// ("sort", "s2" by default).
	ShuffleMode string
	Codec       string
	// NoShuffleService turns the external shuffle service off (`shoal run
	// --shuffle-service off`): each worker serves the map outputs it
	// writes from a shuffle server embedded in its own process, and they
	// die with it, as in Spark without its external shuffle service.
	// Losing a worker then forces the recomputation of the map outputs it
	// had finished; with the service on (the default, false) it forces
	// none. The node services still run, but hold no shuffle files.
	NoShuffleService bool
	// MaxTaskFailures is how many times a task may fail before the job
	// fails; default 4. A stage is attempted at most MaxStageAttempts
	// (default 4) times after fetch failures.
	MaxTaskFailures, MaxStageAttempts int
	// LocalityWait is how long a task waits for a slot on a node it
	// prefers before taking any; default 100ms.
	LocalityWait time.Duration
	// HeartbeatTimeout declares a silent worker lost; default 10s. It is
	// also the workers' driver timeout: a worker that hears nothing from
	// the driver for this long cancels its tasks and exits. Both sides
	// heartbeat every second, or every fifth of a timeout under 5 s.
	HeartbeatTimeout time.Duration
	// Speculation runs a backup copy of a straggling task on another
	// worker once most of its stage has finished; the first copy to
	// finish wins (see "Scheduling and failures" in the package doc).
	Speculation bool
	// HeapCacheBytes bounds each worker's MemoryDeser blocks, counted as
	// the records' encoded size; default DefaultHeapCacheBytes. The node
	// services' memory for blocks is CacheBytes.
	HeapCacheBytes int64
	// MaxDirectResultBytes is the largest result a task sends on its
	// worker's stream; a larger one is stored in the worker's node
	// service and fetched from there by the driver. Default
	// DefaultMaxDirectResultBytes.
	MaxDirectResultBytes int64
	// MaxResultBytes bounds the total of a job's results (encoded) that
	// the driver holds, e.g. what Collect gathers; a job that would
	// exceed it fails, saying so. Default DefaultMaxResultBytes (1 GiB).
	MaxResultBytes int64
	// CacheBytes is each node service's memory for cached blocks (`shoal
	// node --cache-bytes`); 0 means the node's default.
	CacheBytes int64
	// CheckpointDir is the checkpoint store (DESIGN.md §5) of Checkpoint:
	// s3://bucket/prefix (S3Endpoint or AWS_ENDPOINT_URL, credentials from
	// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), file:///path or a path.
	CheckpointDir string
	// S3Endpoint is the S3-compatible service of an s3:// CheckpointDir,
	// e.g. http://127.0.0.1:9000; default AWS_ENDPOINT_URL.
	S3Endpoint string
	// CheckpointKeep, if positive, deletes the checkpoints of the store
	// older than the newest CheckpointKeep complete ones, after each
	// checkpoint completes.
	CheckpointKeep int
	// AdvertiseDriver and AdvertiseNode, if set, rewrite the addresses by
	// which the local cluster's processes reach the driver and the node
	// services: AdvertiseDriver is given the driver endpoint's listening
	// address and returns the one workers dial; AdvertiseNode is
	// compute.LocalOptions.AdvertiseNode (the address workers, readers and
	// the driver reach node index by). They exist for tests that put a
	// fault-injecting proxy on those links (internal/toxiproxy); nil, the
	// default, leaves the listening addresses.
	AdvertiseDriver func(listen string) (string, error)
	AdvertiseNode   func(index int, listen string) (string, error)
	// UIAddr, if set and not "off", serves the live UI and its REST API
	// (package client/ui, docs/ui.md) at this host:port while the context
	// runs, and the driver's Prometheus metrics at /metrics; a port that
	// is taken is followed by the next free one (Context.UI().Addr() says
	// which). With no EventLog the events then only feed the UI.
	UIAddr string
	// UI bounds what the UI keeps (jobs, tasks per stage); its Registry,
	// if nil, is a new one for this context.
	UI ui.Options
	// NodeMetrics makes each node service of the local cluster serve its
	// Prometheus metrics (`shoal node --metrics-addr`) on a port of its
	// own: Local().Nodes()[i].MetricsAddr.
	NodeMetrics bool
	// UIKeep leaves the UI serving after Close, showing the finished
	// application, until the caller closes it (Context.UI().Close):
	// `shoal run --ui-wait`.
	UIKeep bool
	// WorkerStderr receives the workers' and node services' logs; default
	// discarded.
	WorkerStderr io.Writer
	Logger       *slog.Logger
}

func (o *Options) ensureDefaults() {
	if o.App == "" {
		o.App = fmt.Sprintf("shoal-%d-%d", os.Getpid(), time.Now().UnixMilli())
	}
	if o.Nodes <= 0 {
		o.Nodes = 1
	}
	if o.WorkersPerNode <= 0 {
		o.WorkersPerNode = 2
	}
	if o.Slots <= 0 {
		o.Slots = 2
	}
	if o.ShuffleMode == "" {
		o.ShuffleMode = "sort"
	}
	if o.Codec == "" {
		o.Codec = shuffleservice.DefaultCodec.String()
	}
	if o.MaxTaskFailures <= 0 {
		o.MaxTaskFailures = 4
	}
	if o.MaxStageAttempts <= 0 {
		o.MaxStageAttempts = 4
	}
	if o.LocalityWait <= 0 {
		o.LocalityWait = 100 * time.Millisecond
	}
	if o.HeartbeatTimeout <= 0 {
		o.HeartbeatTimeout = 10 * time.Second
	}
	if o.HeapCacheBytes <= 0 {
		o.HeapCacheBytes = DefaultHeapCacheBytes
	}
	if o.MaxDirectResultBytes <= 0 {
		o.MaxDirectResultBytes = DefaultMaxDirectResultBytes
	}
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = DefaultMaxResultBytes
	}
	if o.WorkerStderr == nil {
		o.WorkerStderr = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Context is a driver: it owns the lineage graph, the scheduler, and the
// local cluster it started. Jobs run one at a time.
type Context struct {
	opts  Options
	app   string
	mode  shuffleservice.Mode
	codec shuffleservice.Codec
	log   *slog.Logger

	endpoint *compute.Endpoint
	local    *compute.Local
	tempDir  string
	events   *eventlog.Writer
	ui       *ui.Live    // the live UI, or nil (uiserver.go)
	status   *nodeStatus // node_status events (nodestatus.go)
	closing  atomic.Bool // Close began: lost workers are not replaced

	mu         sync.Mutex // guards the counters and accumulators below
	ids        int
	shuffles   int
	broadcasts map[int][]byte // by ID, for nodes started later; guarded by jobMu

	checkpoints []*node          // nodes given Checkpoint or LocalCheckpoint
	ckptStore   checkpoint.Store // opened on first use
	accums      []int64

	jobMu sync.Mutex // one job at a time
	sched *scheduler

	idleStop chan struct{} // closed by Close: ends idleEvents
	idleDone chan struct{} // closed when idleEvents has returned
}

// NewContext starts the local cluster and waits for its workers.
func NewContext(ctx context.Context, opts Options) (*Context, error) {
	opts.ensureDefaults()
	mode, err1 := shuffleservice.ParseMode(opts.ShuffleMode)
	codec, err2 := shuffleservice.ParseCodec(opts.Codec)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Context{opts: opts, app: opts.App, mode: mode, codec: codec, log: opts.Logger, broadcasts: map[int][]byte{}}
	if opts.EventLog != "" {
		if c.events, err1 = eventlog.Create(opts.EventLog); err1 != nil {
			return nil, fmt.Errorf("client: %w", err1)
		}
	}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()
	if err := c.startUI(); err != nil {
		return nil, err
	}
	c.events.Write(c.appStart())
	hbInterval := min(compute.DefaultHeartbeatInterval, opts.HeartbeatTimeout/5)
	c.endpoint, err1 = compute.NewEndpoint(compute.EndpointOptions{
		App: c.app, HeartbeatTimeout: opts.HeartbeatTimeout, HeartbeatInterval: hbInterval, Logger: c.log,
	})
	if err1 != nil {
		return nil, err1
	}
	dir := opts.Dir
	if dir == "" {
		if dir, err1 = os.MkdirTemp("", "shoal-"); err1 != nil {
			return nil, err1
		}
		c.tempDir = dir
	}
	driverAddr := c.endpoint.Addr()
	if opts.AdvertiseDriver != nil {
		if driverAddr, err1 = opts.AdvertiseDriver(driverAddr); err1 != nil {
			return nil, fmt.Errorf("client: AdvertiseDriver(%s): %w", c.endpoint.Addr(), err1)
		}
	}
	c.local, err1 = compute.StartLocal(ctx, compute.LocalOptions{
		Binary: opts.Binary, NodeBinary: opts.NodeBinary, Nodes: opts.Nodes, WorkersPerNode: opts.WorkersPerNode,
		Slots: opts.Slots, Dir: dir, DriverAddr: driverAddr, App: c.app, Stderr: opts.WorkerStderr, Logger: c.log,
		ServeShuffle: opts.NoShuffleService, CacheBytes: opts.CacheBytes,
		HeartbeatInterval: hbInterval, DriverTimeout: opts.HeartbeatTimeout, AdvertiseNode: opts.AdvertiseNode,
		NodeArgs: opts.nodeArgs(),
	})
	if err1 != nil {
		return nil, err1
	}
	for _, n := range c.local.Nodes() {
		c.events.Write(&eventlog.NodeAdded{Node: n.Addr, Addr: n.Addr, Pid: n.Pid})
	}
	c.sched = newScheduler(c)
	if err := c.sched.awaitWorkers(ctx, opts.Nodes*opts.WorkersPerNode, 60*time.Second); err != nil {
		return nil, err
	}
	c.idleStop, c.idleDone = make(chan struct{}), make(chan struct{})
	go c.idleEvents()
	c.status = startNodeStatus(c)
	ok = true
	return c, nil
}

// idleEventInterval is how often the driver looks for worker events while
// no job runs.
const idleEventInterval = 100 * time.Millisecond

// idleEvents handles the endpoint's events while no job runs, until Close
// (idleStop): a worker lost between jobs is logged (worker_lost) and
// replaced within idleEventInterval, and its replacement logged when it
// joins, instead of all of it waiting for the next job. It takes jobMu
// only when it is free, so a job that starts meanwhile waits for at most
// one drain, which handles what the job would have handled first anyway
// (scheduler.drain).
func (c *Context) idleEvents() {
	defer close(c.idleDone)
	t := time.NewTicker(idleEventInterval)
	defer t.Stop()
	for {
		select {
		case <-c.idleStop:
			return
		case <-t.C:
		}
		if c.jobMu.TryLock() {
			c.sched.drain()
			c.jobMu.Unlock()
		}
	}
}

// App is the application's name.
func (c *Context) App() string { return c.app }

// Local is the local cluster, for experiments that kill its processes.
func (c *Context) Local() *compute.Local { return c.local }

// Close stops the workers and node services and removes their temporary
// directory. Idempotent.
func (c *Context) Close() error {
	if c.endpoint == nil && c.local == nil && c.events == nil && c.ui == nil {
		return nil
	}
	c.closing.Store(true)
	if c.idleStop != nil {
		// Before the endpoint goes: idleEvents reads its events.
		close(c.idleStop)
		<-c.idleDone
		c.idleStop = nil
	}
	c.status.stop() // before the nodes go: it reports them one last time
	var errs []error
	if c.endpoint != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.endpoint.Shutdown(ctx)
		cancel()
		errs = append(errs, c.endpoint.Close())
		c.endpoint = nil
	}
	if c.sched != nil {
		for _, cl := range c.sched.nodeClients {
			cl.Close()
		}
		c.sched.nodeClients = nil
	}
	if c.local != nil {
		errs = append(errs, c.local.Close())
		c.local = nil
	}
	if c.tempDir != "" {
		errs = append(errs, os.RemoveAll(c.tempDir))
		c.tempDir = ""
	}
	if c.events != nil {
		c.events.Write(&eventlog.AppEnd{App: c.app, Status: eventlog.StatusSucceeded})
		errs = append(errs, c.events.Close())
		c.events = nil
	}
	errs = append(errs, c.closeUI())
	return errors.Join(errs...)
}

func (c *Context) nextID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ids++
	return c.ids
}

func (c *Context) nextShuffleID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.shuffles++
	return c.shuffles
}

// Init must be the first call in the main function of a program that uses
// shoal, before it parses flags: the program's own binary serves every role
// of a local cluster (DESIGN.md §1), and Init is where a copy learns its
// role from the environment.
//
//   - A worker (SHOAL_ROLE=worker, set by the launcher) runs its tasks
//     until the driver lets it go; then Init exits.
//   - A node service (SHOAL_ROLE=node, set by internal/nodeproc, which
//     starts `BINARY node --listen ... --dir ...`) runs
//     shuffleservice.RunNodeCommand on the arguments after "node" until
//     SIGINT or SIGTERM; then Init exits, with status 1 and the error on
//     stderr if it failed.
//   - In the driver (no role) Init returns at once.
func Init() {
	if os.Getenv(compute.EnvRole) == compute.RoleNode {
		if len(os.Args) < 2 || os.Args[1] != "node" {
			fmt.Fprintf(os.Stderr, "shoal node: %s=%s but the command line %q does not start with \"node\" (unset %s to run the program itself)\n",
				compute.EnvRole, compute.RoleNode, os.Args, compute.EnvRole)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := shuffleservice.RunNodeCommand(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		switch {
		case err == nil:
			os.Exit(0)
		case errors.Is(err, flag.ErrHelp): // the usage is printed already
			os.Exit(2)
		default:
			fmt.Fprintf(os.Stderr, "shoal node: %v\n", err)
			os.Exit(1)
		}
	}
	wo, ok := compute.WorkerFromEnv()
	if !ok {
		return
	}
	err := compute.RunWorker(context.Background(), wo, Runner())
	if err != nil {
		fmt.Fprintf(os.Stderr, "shoal worker %s: %v\n", wo.WorkerID, err)
		os.Exit(1)
	}
	os.Exit(0)
}
