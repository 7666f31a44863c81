package compute

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"shoal/internal/nodeproc"
	"shoal/internal/pki"
	"shoal/shuffleservice"
	"shoal/shuffleservice/nodeclient"
)

// Defaults of LocalOptions.
const (
	DefaultLocalNodes     = 1
	DefaultWorkersPerNode = 2
)

const (
	// stopTimeout bounds the graceful stop of Local's processes (SIGTERM)
	// before they are killed.
	stopTimeout = 5 * time.Second
	// appHeartbeatInterval is how often Local keeps the application alive
	// on its nodes; well under the nodes' default application TTL.
	appHeartbeatInterval = shuffleservice.DefaultAppTTL / 8
)

// LocalOptions configure a local cluster (StartLocal): node services and
// workers as child processes on this machine.
type LocalOptions struct {
	// Binary is the worker binary: it must run RunWorker when started with
	// the environment of WorkerFromEnv. Default: this process's own
	// executable.
	Binary string
	// NodeBinary serves `NodeBinary node --listen ... --dir ...`, started
	// with EnvRole=RoleNode (internal/nodeproc). Default Binary: the shoal
	// binary, or a user program that calls client.Init first in main.
	NodeBinary string
	// Nodes is how many node services to start (each a "machine"). Default 1.
	Nodes int
	// WorkersPerNode is how many workers each node gets. Default 2.
	WorkersPerNode int
	// Slots is how many tasks each worker runs at once. Default 2.
	Slots int
	// Dir is the root directory; node i keeps its files in Dir/node-i.
	// Default: a new temporary directory, removed by Close.
	Dir string
	// DriverAddr is the address of the driver's Endpoint. Required.
	DriverAddr string
	// App is the application's ID; it is registered with every node.
	// Required.
	App string
	// CacheBytes is every node's memory for cached partitions (`node
	// --cache-bytes`). 0 leaves the node's default
	// (shuffleservice.DefaultCacheBytes); a node without memory for
	// blocks takes NodeArgs "--cache-bytes=0".
	CacheBytes int64
	// NodeArgs are extra flags for `node`, e.g. "--app-ttl=10s". They
	// come after the flags Local derives from the fields above, so they
	// win.
	NodeArgs []string
	// NodeEnv are environment variables of the node services, besides
	// this process's own: the checkpoint store's S3 credentials (the
	// nodes upload checkpoints; client.Options.CheckpointVia).
	NodeEnv []string
	// WorkerEnv are environment variables of the workers, besides this
	// process's environment (which they inherit) and the worker contract
	// (Environ): the driver's S3 endpoint and credentials
	// (client.Options.S3), say. They may hold secrets: they are never
	// logged.
	WorkerEnv []string
	// WorkerArgs are the workers' command-line arguments. Workers are
	// recognised by their environment, so these only matter to a binary
	// that looks at them before WorkerFromEnv.
	WorkerArgs []string
	// HeartbeatInterval is the workers' heartbeat interval. Default: the
	// workers' default (DefaultHeartbeatInterval).
	HeartbeatInterval time.Duration
	// DriverTimeout is the workers' driver timeout
	// (WorkerOptions.DriverTimeout): give the driver endpoint's
	// HeartbeatTimeout. Default: the workers' default
	// (DefaultDriverTimeout, the endpoint's default HeartbeatTimeout).
	DriverTimeout time.Duration
	// AdvertiseNode, if set, is given each node's index and listening
	// address once it listens (at StartLocal and RestartNode), and
	// returns the address the rest of the cluster reaches it by
	// (NodeInfo.Addr): its workers register and commit there and report
	// it as their node, so map outputs and blocks are located there and
	// readers and the driver dial it. It exists for tests that put a
	// fault-injecting proxy between a node and everything else
	// (internal/toxiproxy). The launcher's own calls to its nodes
	// (registering the application, keeping it alive, removing it) use
	// the listening address. Default: the listening address.
	AdvertiseNode func(index int, listen string) (string, error)
	// ClusterSecret is the secret the nodes require of every call
	// (SHOAL_CLUSTER_SECRET in their environment) and the workers
	// present. Default: a new random secret (ClusterSecret tells it), so
	// that the local cluster takes the same authenticated path as a real
	// one.
	ClusterSecret string
	// AppToken is the application's token the workers present to the
	// driver's endpoint (Endpoint.Token). Required.
	AppToken string
	// TLSDir, if set, is the identity (ca.crt, tls.crt, tls.key) the
	// nodes serve with (`node --tls-dir`) and their workers present;
	// TLS is the one Local presents to its nodes, and DriverCertSHA256
	// the endpoint's certificate the workers accept (Endpoint's
	// EndpointOptions.TLS). client.NewContext makes all three from an
	// ephemeral CA (pki.NewEphemeral), so that local mode takes the
	// mutual-TLS path of a real cluster. Empty: plain TCP on loopback.
	TLSDir           string
	TLS              *pki.Identity
	DriverCertSHA256 string
	// ServeShuffle makes every worker serve the map outputs it writes
	// from its own shuffle server (WorkerOptions.ServeShuffle) instead of
	// the node service: the external shuffle service is off, and a
	// worker's outputs die with it. Local removes a dead worker's files.
	ServeShuffle bool
	// Stderr receives the log (stderr and stdout) of nodes and workers.
	// Default: discarded.
	Stderr io.Writer
	// Logger receives the launcher's log; it is given component=compute.
	// Default: discard.
	Logger *slog.Logger
}

// EnsureDefaults replaces zero fields by their defaults, except Binary and
// Dir, which StartLocal resolves.
func (o *LocalOptions) EnsureDefaults() {
	if o.Nodes == 0 {
		o.Nodes = DefaultLocalNodes
	}
	if o.WorkersPerNode == 0 {
		o.WorkersPerNode = DefaultWorkersPerNode
	}
	if o.Slots == 0 {
		o.Slots = DefaultSlots
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ClusterSecret == "" {
		o.ClusterSecret = NewSecret()
	}
}

// Validate reports every problem of o at once. Call it after
// EnsureDefaults (StartLocal does both).
func (o *LocalOptions) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.DriverAddr == "" {
		bad("DriverAddr is empty (give the driver endpoint's Addr)")
	}
	if o.AppToken == "" {
		bad("AppToken is empty (give the driver endpoint's Token)")
	}
	if err := validateID("application", o.App); err != nil {
		errs = append(errs, err)
	}
	if o.Nodes < 0 {
		bad("Nodes %d is negative", o.Nodes)
	}
	if o.WorkersPerNode < 0 {
		bad("WorkersPerNode %d is negative", o.WorkersPerNode)
	}
	if o.Slots < 0 {
		bad("Slots %d is negative", o.Slots)
	}
	if o.HeartbeatInterval < 0 {
		bad("HeartbeatInterval %v is negative", o.HeartbeatInterval)
	}
	if o.DriverTimeout < 0 {
		bad("DriverTimeout %v is negative", o.DriverTimeout)
	}
	if o.CacheBytes < 0 {
		bad("CacheBytes %d is negative", o.CacheBytes)
	}
	if (o.TLSDir != "") != (o.TLS != nil) || (o.TLSDir != "") != (o.DriverCertSHA256 != "") {
		bad("TLSDir, TLS and DriverCertSHA256 go together (all set, or none)")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("compute: local options: %w", err)
	}
	return nil
}

// NodeInfo describes a node service of a Local cluster.
type NodeInfo struct {
	Index int
	// Name is the node's name (`shoal node --name`) in cluster mode;
	// empty in local mode.
	Name string
	// Addr is the address the cluster reaches the node by: Listen, unless
	// LocalOptions.AdvertiseNode says otherwise.
	Addr string
	// Listen is the address the node listens on.
	Listen string
	Pid    int
	Dir    string
	// MetricsAddr is where the node serves its Prometheus metrics, if
	// NodeArgs gave it --metrics-addr.
	MetricsAddr string
}

// LocalWorker describes a worker process of a Local cluster.
type LocalWorker struct {
	ID     string
	Node   int // index of its node
	Pid    int
	Exited bool // the process has exited and been reaped
}

// Local is a cluster on this machine: node services and worker processes,
// children of this process. They are started with a parent-death signal
// (Linux), so they do not outlive it even when it is killed; every child
// that exits is waited for, so none is left a zombie.
//
// Local does not wait for the workers to connect: the driver sees them
// arrive as WorkerAdded events on its Endpoint.
type Local struct {
	opts   LocalOptions
	log    *slog.Logger
	ownDir bool

	mu      sync.Mutex
	nodes   []*localNode
	workers []*localProc // in start order
	closed  bool

	stopHB    chan struct{}
	hbDone    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

type localNode struct {
	info   NodeInfo
	proc   *nodeproc.Process
	client *nodeclient.Client
	next   int  // index of its next worker
	killed bool // KillNode
}

type localProc struct {
	id      string
	node    int
	cmd     *exec.Cmd
	done    chan struct{} // closed once reaped
	waitErr error         // valid after done
}

// ClusterSecret is the secret the cluster's nodes require
// (LocalOptions.ClusterSecret): give it to every client of them
// (nodeclient.WithClusterSecret).
func (l *Local) ClusterSecret() string { return l.opts.ClusterSecret }

// Credentials are what a client of the cluster's nodes presents: the
// cluster secret and LocalOptions.TLS.
func (l *Local) Credentials() nodeclient.Credentials {
	return nodeclient.Credentials{Secret: l.opts.ClusterSecret, TLS: l.opts.TLS}
}

// StartLocal starts opts.Nodes node services, registers opts.App with
// each, and starts opts.WorkersPerNode workers per node pointed at the
// driver. ctx bounds the start only. On error, whatever was started is
// stopped.
func StartLocal(ctx context.Context, opts LocalOptions) (*Local, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("compute: local: find this program's executable to start workers with (set LocalOptions.Binary): %w", err)
		}
		opts.Binary = exe
	}
	if opts.NodeBinary == "" {
		opts.NodeBinary = opts.Binary
	}
	l := &Local{
		opts:   opts,
		log:    opts.Logger.With("component", "compute"),
		stopHB: make(chan struct{}),
		hbDone: make(chan struct{}),
	}
	if l.opts.Dir == "" {
		dir, err := os.MkdirTemp("", "shoal-local-")
		if err != nil {
			return nil, fmt.Errorf("compute: local: %w", err)
		}
		l.opts.Dir, l.ownDir = dir, true
	}
	if err := l.start(ctx); err != nil {
		close(l.hbDone)
		return nil, errors.Join(err, l.Close())
	}
	go l.heartbeatApp()
	return l, nil
}

func (l *Local) start(ctx context.Context) error {
	for i := range l.opts.Nodes {
		dir := filepath.Join(l.opts.Dir, fmt.Sprintf("node-%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("compute: local: node %d: %w", i, err)
		}
		p, err := l.startNode(ctx, dir)
		if err != nil {
			return fmt.Errorf("compute: local: node %d: %w", i, err)
		}
		addr, advErr := l.advertise(i, p.Addr())
		n := &localNode{info: NodeInfo{Index: i, Addr: cmp.Or(addr, p.Addr()), Listen: p.Addr(), Pid: p.Pid(), Dir: dir, MetricsAddr: p.MetricsAddr()}, proc: p}
		l.mu.Lock()
		l.nodes = append(l.nodes, n) // Close stops it, on error too
		l.mu.Unlock()
		if advErr != nil {
			return advErr
		}
		if n.client, err = nodeclient.Dial(p.Addr(), nodeclient.WithCredentials(l.Credentials()), nodeclient.WithAppToken(l.opts.AppToken)); err != nil {
			return fmt.Errorf("compute: local: node %d: %w", i, err)
		}
		if err := n.client.RegisterApp(ctx, l.opts.App, 0); err != nil {
			return fmt.Errorf("compute: local: register application %q with node %d at %s: %w", l.opts.App, i, p.Addr(), err)
		}
		l.log.Info("node started", "node", i, "addr", n.info.Addr, "listen", p.Addr(), "pid", p.Pid(), "dir", dir)
	}
	for i := range l.opts.Nodes {
		for range l.opts.WorkersPerNode {
			if _, err := l.AddWorker(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// advertise returns the address node i, listening on listen, is reached
// by (LocalOptions.AdvertiseNode).
func (l *Local) advertise(i int, listen string) (string, error) {
	if l.opts.AdvertiseNode == nil {
		return listen, nil
	}
	addr, err := l.opts.AdvertiseNode(i, listen)
	if err == nil && addr == "" {
		err = errors.New("an empty address")
	}
	if err != nil {
		return "", fmt.Errorf("compute: local: node %d listening on %s: AdvertiseNode: %w", i, listen, err)
	}
	return addr, nil
}

// startNode starts a node service on dir with the cluster's node flags
// (the same at the first start and at RestartNode).
func (l *Local) startNode(ctx context.Context, dir string) (*nodeproc.Process, error) {
	var args []string
	if l.opts.CacheBytes > 0 {
		args = append(args, fmt.Sprintf("--cache-bytes=%d", l.opts.CacheBytes))
	}
	if l.opts.TLSDir != "" {
		args = append(args, "--tls-dir", l.opts.TLSDir)
	}
	args = append(args, l.opts.NodeArgs...)
	return nodeproc.Start(ctx, nodeproc.Options{Binary: l.opts.NodeBinary, Dirs: []string{dir}, Args: args, Stderr: l.opts.Stderr,
		Env: append(slices.Clone(l.opts.NodeEnv), EnvClusterSecret+"="+l.opts.ClusterSecret)})
}

// AddWorker starts one more worker on node i (a replacement for a lost
// one, say), named "w-<i>-<k>" with k counting from 0 per node.
func (l *Local) AddWorker(i int) (LocalWorker, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return LocalWorker{}, errors.New("compute: local: AddWorker after Close")
	case i < 0 || i >= len(l.nodes):
		return LocalWorker{}, fmt.Errorf("compute: local: no node %d (there are %d)", i, len(l.nodes))
	case l.nodes[i].killed:
		return LocalWorker{}, fmt.Errorf("compute: local: node %d was killed", i)
	}
	n := l.nodes[i]
	wo := WorkerOptions{
		DriverAddr:        l.opts.DriverAddr,
		NodeAddr:          n.info.Addr,
		App:               l.opts.App,
		WorkerID:          fmt.Sprintf("w-%d-%d", i, n.next),
		Slots:             l.opts.Slots,
		HeartbeatInterval: l.opts.HeartbeatInterval,
		DriverTimeout:     l.opts.DriverTimeout,
		ServeShuffle:      l.opts.ServeShuffle,
		ClusterSecret:     l.opts.ClusterSecret,
		AppToken:          l.opts.AppToken,
		TLSDir:            l.opts.TLSDir,
		DriverCertSHA256:  l.opts.DriverCertSHA256,
	}
	n.next++
	cmd := exec.Command(l.opts.Binary, l.opts.WorkerArgs...)
	cmd.Env = append(append(withoutShoalEnv(os.Environ()), withoutShoalEnv(l.opts.WorkerEnv)...), wo.Environ()...)
	cmd.SysProcAttr = sysProcAttr()
	cmd.Stdout, cmd.Stderr = l.opts.Stderr, l.opts.Stderr
	if err := cmd.Start(); err != nil {
		return LocalWorker{}, fmt.Errorf("compute: local: start worker %s (%s): %w", wo.WorkerID, l.opts.Binary, err)
	}
	p := &localProc{id: wo.WorkerID, node: i, cmd: cmd, done: make(chan struct{})}
	l.workers = append(l.workers, p)
	nodeDir := n.info.Dir
	go func() {
		p.waitErr = cmd.Wait()
		if wo.ServeShuffle {
			// A killed worker could not remove the map outputs it served;
			// nobody can read them now.
			os.RemoveAll(workerShuffleDir(nodeDir, wo.App, wo.WorkerID))
		}
		close(p.done)
		l.log.Info("worker exited", "worker", p.id, "pid", cmd.Process.Pid, "status", cmd.ProcessState.String())
	}()
	l.log.Info("worker started", "worker", p.id, "node", i, "pid", cmd.Process.Pid)
	return p.info(), nil
}

func (p *localProc) info() LocalWorker {
	w := LocalWorker{ID: p.id, Node: p.node, Pid: p.cmd.Process.Pid}
	select {
	case <-p.done:
		w.Exited = true
	default:
	}
	return w
}

// Failures is nil: the local launcher reports nothing on its own (the
// scheduler replaces lost workers itself).
func (l *Local) Failures() <-chan error { return nil }

// Nodes returns the nodes, in index order.
func (l *Local) Nodes() []NodeInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]NodeInfo, len(l.nodes))
	for i, n := range l.nodes {
		out[i] = n.info
	}
	return out
}

// Workers returns every worker started, in start order, exited or not.
func (l *Local) Workers() []LocalWorker {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LocalWorker, len(l.workers))
	for i, p := range l.workers {
		out[i] = p.info()
	}
	return out
}

// KillWorker kills a worker with SIGKILL, as a crash would, and waits for
// it to be reaped. Killing a worker that has exited already is no error.
func (l *Local) KillWorker(id string) error {
	l.mu.Lock()
	var p *localProc
	for _, w := range l.workers {
		if w.id == id {
			p = w
		}
	}
	l.mu.Unlock()
	if p == nil {
		return fmt.Errorf("compute: local: no worker %q", id)
	}
	p.signal(syscall.SIGKILL)
	<-p.done
	return nil
}

// KillNode kills node i's service and all its workers with SIGKILL, as a
// machine failure would, and waits for them.
func (l *Local) KillNode(i int) error {
	l.mu.Lock()
	if i < 0 || i >= len(l.nodes) {
		l.mu.Unlock()
		return fmt.Errorf("compute: local: no node %d (there are %d)", i, len(l.nodes))
	}
	n := l.nodes[i]
	n.killed = true
	var ws []*localProc
	for _, p := range l.workers {
		if p.node == i {
			ws = append(ws, p)
		}
	}
	l.mu.Unlock()
	for _, p := range ws {
		p.signal(syscall.SIGKILL)
	}
	n.proc.Kill()
	for _, p := range ws {
		<-p.done
	}
	l.log.Info("node killed", "node", i, "addr", n.info.Addr, "workers", len(ws))
	return nil
}

// Close stops the workers (SIGTERM, then SIGKILL after a grace period),
// then the node services, waits for all of them, and removes Dir if
// StartLocal created it. Close is idempotent.
func (l *Local) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		ws := append([]*localProc(nil), l.workers...)
		ns := append([]*localNode(nil), l.nodes...)
		killed := make([]bool, len(ns))
		for i, n := range ns {
			killed[i] = n.killed
		}
		l.mu.Unlock()
		close(l.stopHB)
		<-l.hbDone

		var errs []error
		for _, p := range ws {
			p.signal(syscall.SIGTERM)
		}
		deadline := time.NewTimer(stopTimeout)
		for _, p := range ws {
			select {
			case <-p.done:
			case <-deadline.C:
				deadline.Reset(0)
				l.log.Warn("worker did not stop after SIGTERM; killing it", "worker", p.id, "pid", p.cmd.Process.Pid)
				p.signal(syscall.SIGKILL)
				<-p.done
			}
		}
		deadline.Stop()

		for i, n := range ns {
			ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			if n.client != nil {
				if !killed[i] {
					// The application is finished: its shuffle files and
					// cached blocks go now, not at the node's TTL.
					if err := n.client.RemoveApp(ctx, l.opts.App); err != nil {
						l.log.Warn("could not remove the application from a node", "node", n.info.Addr, "err", err)
					}
				}
				n.client.Close()
			}
			if killed[i] {
				cancel()
				continue
			}
			if err := n.proc.Stop(ctx); err != nil {
				errs = append(errs, fmt.Errorf("compute: local: stop node %d: %w", n.info.Index, err))
			}
			cancel()
		}
		if l.ownDir {
			if err := os.RemoveAll(l.opts.Dir); err != nil {
				errs = append(errs, fmt.Errorf("compute: local: %w", err))
			}
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

func (p *localProc) signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return // reaped: the pid may belong to another process now
	default:
	}
	p.cmd.Process.Signal(sig) // fails only if it has exited already
}

// heartbeatApp keeps the application alive on the nodes until Close, so
// that a long job's shuffle files are not expired by the nodes' TTL.
func (l *Local) heartbeatApp() {
	defer close(l.hbDone)
	t := time.NewTicker(appHeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stopHB:
			return
		case <-t.C:
		}
		l.mu.Lock()
		var ns []*localNode
		for _, n := range l.nodes {
			if !n.killed {
				ns = append(ns, n)
			}
		}
		l.mu.Unlock()
		for _, n := range ns {
			ctx, cancel := context.WithTimeout(context.Background(), appHeartbeatInterval/2)
			if err := n.client.Heartbeat(ctx, l.opts.App); err != nil {
				l.log.Warn("application heartbeat to a node failed", "node", n.info.Index, "addr", n.info.Addr, "err", err)
			}
			cancel()
		}
	}
}
