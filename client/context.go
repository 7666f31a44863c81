package client

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"shoal/checkpoint"
	"shoal/client/eventlog"
	"shoal/client/ui"
	"shoal/compute"
	"shoal/internal/cli"
	"shoal/shuffleservice/shuffle"
)

// Context is a driver: the lineage graph its RDDs form, the scheduler
// that runs their jobs, and the local cluster it started. The scheduler's
// state belongs to one goroutine (loop.go); every method of Context is
// safe for concurrent use, jobs run one at a time, and Close is safe at
// any moment.
type Context struct {
	opts   Options
	app    string
	mode   shuffle.Mode
	codec  shuffle.Codec
	log    *slog.Logger
	events *eventlog.Writer

	// Set by NewContext, then only read; Close stops them.
	endpoint *compute.Endpoint
	local    *compute.Local
	tempDir  string
	sched    *scheduler  // owned by its loop goroutine once started
	ui       *ui.Live    // the live UI, or nil (uiserver.go)
	status   *nodeStatus // node_status events (nodestatus.go)

	reqs      chan *request // to the loop
	loopDone  chan struct{} // closed when the loop has ended
	closeOnce sync.Once
	closeErr  error

	mu          sync.Mutex // guards the graph's counters, checkpoints and accumulators below
	ids         int
	shuffles    int
	checkpoints []*node          // nodes given Checkpoint or LocalCheckpoint
	ckptStore   checkpoint.Store // opened on first use
	ckptRun     *ckptRun         // this run in the checkpoint store, made on first use (ckptrun.go)
	accums      []int64

	s3 *s3Clients // of s3:// inputs and outputs (Options.S3); Close closes them
}

// NewContext starts the local cluster and waits for its workers.
func NewContext(ctx context.Context, opts Options) (*Context, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.EnsureDefaults()
	mode, err1 := shuffle.ParseMode(opts.ShuffleMode)
	codec, err2 := shuffle.ParseCodec(opts.Codec)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := newContext(opts, mode, codec)
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
		NodeArgs: opts.nodeArgs(), WorkerEnv: opts.S3.Environ(),
	})
	if err1 != nil {
		return nil, err1
	}
	if err := c.start(ctx, c.endpoint, c.local, newNodeClients()); err != nil {
		return nil, err
	}
	c.status = startNodeStatus(c)
	ok = true
	return c, nil
}

// newContext makes a Context with no scheduler yet (start makes it).
func newContext(opts Options, mode shuffle.Mode, codec shuffle.Codec) *Context {
	return &Context{opts: opts, app: opts.App, mode: mode, codec: codec, log: opts.Logger,
		reqs: make(chan *request), loopDone: make(chan struct{}), s3: newS3Clients(opts.S3)}
}

// start makes the scheduler over its endpoint, cluster and node services,
// waits for the cluster's workers and starts the loop.
func (c *Context) start(ctx context.Context, ep taskEndpoint, cl cluster, nodes nodeService) error {
	for _, n := range cl.Nodes() {
		c.events.Write(&eventlog.NodeAdded{Node: n.Addr, Addr: n.Addr, Pid: n.Pid})
	}
	c.sched = newScheduler(c, ep, cl, nodes)
	if err := c.sched.awaitWorkers(ctx, c.opts.Nodes*c.opts.WorkersPerNode, workersTimeout); err != nil {
		c.sched.endLife()
		return err
	}
	c.sched.loopStarted = true
	go c.sched.loop()
	return nil
}

// workersTimeout bounds how long NewContext waits for its workers.
const workersTimeout = 60 * time.Second

// App is the application's name.
func (c *Context) App() string { return c.app }

// Local is the local cluster, for experiments that kill its processes.
func (c *Context) Local() *compute.Local { return c.local }

// Close ends the context at any moment: a job running fails with an
// error that names the close, the scheduler's loop ends, the workers and
// node services are stopped and their temporary directory removed.
// Idempotent; safe for concurrent use.
func (c *Context) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Context) close() error {
	var errs []error
	if c.sched != nil {
		if c.sched.loopStarted {
			select {
			case c.reqs <- &request{close: true, errc: make(chan error, 1)}:
			case <-c.loopDone:
			}
			<-c.loopDone
		}
		errs = append(errs, c.sched.nodes.Close())
	}
	c.status.stop() // before the nodes go: it reports them one last time
	if c.endpoint != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c.endpoint.Shutdown(ctx)
		cancel()
		errs = append(errs, c.endpoint.Close())
	}
	if c.local != nil {
		errs = append(errs, c.local.Close())
	}
	if c.tempDir != "" {
		errs = append(errs, os.RemoveAll(c.tempDir))
	}
	errs = append(errs, c.endCheckpointRun())
	errs = append(errs, c.s3.close())
	c.events.Write(&eventlog.AppEnd{App: c.app, Status: eventlog.StatusSucceeded})
	errs = append(errs, c.events.Close())
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
//     cli.RunNode (internal/cli) on the arguments after "node" until
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
		err := cli.RunNode(ctx, os.Args[2:], os.Stdout, os.Stderr)
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
	err := RunWorker(context.Background(), wo)
	if err != nil {
		fmt.Fprintf(os.Stderr, "shoal worker %s: %v\n", wo.WorkerID, err)
		os.Exit(1)
	}
	os.Exit(0)
}
