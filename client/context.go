package client

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
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
	"shoal/internal/cli"
	"shoal/shuffleservice/nodeclient"
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
	local    *compute.Local  // local mode
	remote   *compute.Remote // cluster mode (Options.Master)
	procs    processes       // local or remote
	tempDir  string
	tls      *tlsSetup   // nil with Options.Insecure
	sched    *scheduler  // owned by its loop goroutine once started
	ui       *ui.Live    // the live UI, or nil (uiserver.go)
	status   *nodeStatus // node_status events (nodestatus.go)
	slots    int         // task slots of the workers at the start (DefaultPartitions)

	reqs      chan *request // to the loop
	loopDone  chan struct{} // closed when the loop has ended
	closeOnce sync.Once
	closeErr  error

	mu          sync.Mutex // guards the graph's counters, checkpoints and accumulators below
	ids         int
	shuffles    int
	checkpoints []*node // nodes given Checkpoint or LocalCheckpoint
	// jobsRunning counts the user's calls that run jobs: Close waits for
	// the checkpoints handed to the nodes only when none does.
	jobsRunning atomic.Int32
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
	listen := opts.DriverListen
	if listen == "" && opts.Master != "" && !opts.Insecure {
		listen = ":0"
	}
	if c.tls, err1 = newTLSSetup(opts); err1 != nil {
		return nil, err1
	}
	c.endpoint, err1 = compute.NewEndpoint(compute.EndpointOptions{
		Listen: listen, App: c.app, HeartbeatTimeout: opts.HeartbeatTimeout, HeartbeatInterval: hbInterval, Logger: c.log,
		TLS: c.tls.driver(),
	})
	if err1 != nil {
		return nil, err1
	}
	if opts.Master != "" {
		err1 = c.startRemote(ctx, hbInterval)
	} else {
		err1 = c.startLocal(ctx, hbInterval)
	}
	if err1 != nil {
		return nil, err1
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
func (c *Context) start(ctx context.Context, ep taskEndpoint, cl cluster, nodes nodeService, workers int) error {
	for _, n := range cl.Nodes() {
		c.events.Write(&eventlog.NodeAdded{Node: n.Addr, Addr: n.Addr, Pid: n.Pid})
	}
	c.sched = newScheduler(c, ep, cl, nodes)
	if err := c.sched.awaitWorkers(ctx, workers, workersTimeout); err != nil {
		c.sched.endLife()
		return err
	}
	for _, w := range c.sched.workers { // before the loop owns them
		c.slots += w.info.Slots
	}
	c.sched.loopStarted = true
	go c.sched.loop()
	return nil
}

// workersTimeout bounds how long NewContext waits for its workers.
const workersTimeout = 60 * time.Second

// App is the application's name.
func (c *Context) App() string { return c.app }

// AppToken returns the application's token: its workers present it to the
// driver, and every call about the application's data to a node service
// must carry it (nodeclient.WithAppToken; docs/DESIGN.md §1). A tool that
// reads the application's map outputs or blocks beside the driver needs
// it. It is a secret: never log it.
func (c *Context) AppToken() string { return c.endpoint.Token() }

// Local is the local cluster, for experiments that kill its processes;
// nil in cluster mode.
func (c *Context) Local() *compute.Local { return c.local }

// Remote is the cluster of Options.Master; nil in local mode.
func (c *Context) Remote() *compute.Remote { return c.remote }

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
		if c.sched.loopStarted && c.viaNode() && c.jobsRunning.Load() == 0 {
			// Checkpoints handed to the nodes complete before the nodes
			// stop (the wait is a request: a job started meanwhile runs
			// first).
			ctx, cancel := context.WithTimeout(context.Background(), c.opts.CheckpointTimeout)
			errs = append(errs, c.WaitCheckpoints(ctx))
			cancel()
		}
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
	if c.procs != nil {
		errs = append(errs, c.procs.Close())
	}
	if c.tempDir != "" {
		errs = append(errs, os.RemoveAll(c.tempDir))
	}
	errs = append(errs, c.tls.close())
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

// processes is what the Context stops at Close and what the node status
// reports ask: the local cluster or the remote one.
type processes interface {
	Nodes() []compute.NodeInfo
	Credentials() nodeclient.Credentials
	Close() error
}

// startLocal starts the local cluster (local mode) and waits for its
// workers.
func (c *Context) startLocal(ctx context.Context, hbInterval time.Duration) error {
	opts := c.opts
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "shoal-"); err != nil {
			return err
		}
		c.tempDir = dir
	}
	driverAddr := c.endpoint.Addr()
	if opts.AdvertiseDriver != nil {
		var err error
		if driverAddr, err = opts.AdvertiseDriver(driverAddr); err != nil {
			return fmt.Errorf("client: AdvertiseDriver(%s): %w", c.endpoint.Addr(), err)
		}
	}
	local, err := compute.StartLocal(ctx, compute.LocalOptions{
		Binary: opts.Binary, NodeBinary: opts.NodeBinary, Nodes: opts.Nodes, WorkersPerNode: opts.WorkersPerNode,
		Slots: opts.Slots, Dir: dir, DriverAddr: driverAddr, App: c.app, AppToken: c.endpoint.Token(),
		ClusterSecret: opts.ClusterSecret, Stderr: opts.WorkerStderr, Logger: c.log,
		ServeShuffle: opts.NoShuffleService, CacheBytes: opts.CacheBytes,
		HeartbeatInterval: hbInterval, DriverTimeout: opts.HeartbeatTimeout, AdvertiseNode: opts.AdvertiseNode,
		NodeArgs: append(opts.nodeArgs(), opts.ckptNodeArgs()...), NodeEnv: opts.ckptNodeEnv(), WorkerEnv: opts.S3.Environ(),
		TLSDir: c.tls.nodeDir(), TLS: c.tls.driver(), DriverCertSHA256: c.tls.pin(),
	})
	if err != nil {
		return err
	}
	c.local, c.procs = local, local
	return c.start(ctx, c.endpoint, local, newNodeClients(nodeclient.WithCredentials(local.Credentials()), nodeclient.WithAppToken(c.endpoint.Token())), opts.Nodes*opts.WorkersPerNode)
}

// startRemote joins the cluster of Options.Master (cluster mode) and
// waits for the workers its nodes start.
func (c *Context) startRemote(ctx context.Context, hbInterval time.Duration) error {
	opts := c.opts
	driverAddr, err := c.driverAddr(ctx)
	if err != nil {
		return err
	}
	// The workers do not inherit this process's environment, as local
	// ones do: they get the S3 settings it reads (the AWS variables)
	// spelled out.
	s3 := opts.S3
	s3.EnsureDefaults()
	remote, err := compute.StartRemote(ctx, compute.RemoteOptions{
		Master: opts.Master, ClusterSecret: opts.ClusterSecret, Binary: opts.Binary,
		WorkersPerNode: opts.WorkersPerNode, Slots: opts.Slots, HeartbeatInterval: hbInterval,
		DriverTimeout: opts.HeartbeatTimeout, DriverAddr: driverAddr, App: c.app, AppToken: c.endpoint.Token(),
		Env: s3.Environ(), Logger: c.log,
		TLS: c.tls.driver(), TLSServerName: opts.TLSServerName, DriverCertSHA256: c.tls.pin(),
	})
	if err != nil {
		return err
	}
	c.remote, c.procs = remote, remote
	return c.start(ctx, c.endpoint, remote, newNodeClients(nodeclient.WithCredentials(remote.Credentials()), nodeclient.WithAppToken(c.endpoint.Token())), remote.Workers())
}

// driverAddr is the address the cluster's workers reach the driver's
// endpoint by: Options.DriverHost, or the address this machine uses on
// its route to the first node, with the endpoint's port.
func (c *Context) driverAddr(ctx context.Context) (string, error) {
	_, port, err := net.SplitHostPort(c.endpoint.Addr())
	if err != nil {
		return "", err
	}
	if c.opts.DriverHost != "" {
		return net.JoinHostPort(c.opts.DriverHost, port), nil
	}
	m, err := compute.ParseMaster(c.opts.Master)
	if err != nil {
		return "", err
	}
	first := net.JoinHostPort(m.Host, m.Port)
	if len(m.Addrs) > 0 {
		first = m.Addrs[0]
	}
	// A UDP "connection" sends nothing: it only asks the kernel for the
	// route, and so for the local address on it.
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", first)
	if err != nil {
		return "", fmt.Errorf("client: find the address the nodes reach this driver by (route to %s): %w (set Options.DriverHost, shoal run --driver-host)", first, err)
	}
	defer conn.Close()
	host := conn.LocalAddr().(*net.UDPAddr).IP.String()
	return net.JoinHostPort(host, port), nil
}
