package compute

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"shoal/internal/pki"
	"shoal/shuffleservice/launcher"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// Cluster mode: the driver joins node services that already run, one per
// machine (`shoal node`), hands each its own executable, and the nodes
// start and supervise the application's workers (doc.go, "Cluster
// mode").

// Master schemes (RemoteOptions.Master).
const (
	// SchemeShoal lists the nodes: shoal://h1:7077,h2:7077.
	SchemeShoal = "shoal"
	// SchemeDNS names them: dns://name:7077 is every address name
	// resolves to (a Kubernetes headless Service), resolved again while
	// the application runs.
	SchemeDNS = "dns"
)

// DefaultNodePort is a node's port when a master address gives none.
const DefaultNodePort = "7077"

// Master is a parsed RemoteOptions.Master.
type Master struct {
	Scheme string
	// Addrs are the nodes (shoal://), each host:port.
	Addrs []string
	// Host and Port are the name to resolve and the nodes' port (dns://).
	Host, Port string
}

// ParseMaster parses a master URL: shoal://h1:7077,h2:7077 or
// dns://name:7077 (the port defaults to 7077).
func ParseMaster(s string) (Master, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || rest == "" {
		return Master{}, fmt.Errorf("master %q: want shoal://HOST:PORT[,HOST:PORT...] or dns://NAME[:PORT]", s)
	}
	withPort := func(hp string) (host, port string, err error) {
		if hp == "" {
			return "", "", errors.New("an empty address")
		}
		host, port, err = net.SplitHostPort(hp)
		if err != nil { // no port
			host, port = strings.Trim(hp, "[]"), DefaultNodePort
		}
		if host == "" || strings.ContainsAny(host, "/?#@ ") {
			return "", "", fmt.Errorf("bad host in %q", hp)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return "", "", fmt.Errorf("bad port in %q", hp)
		}
		return host, port, nil
	}
	m := Master{Scheme: strings.ToLower(scheme)}
	switch m.Scheme {
	case SchemeShoal:
		for hp := range strings.SplitSeq(rest, ",") {
			host, port, err := withPort(strings.TrimSpace(hp))
			if err != nil {
				return Master{}, fmt.Errorf("master %q: %v", s, err)
			}
			a := net.JoinHostPort(host, port)
			if slices.Contains(m.Addrs, a) {
				return Master{}, fmt.Errorf("master %q: %s is listed twice", s, a)
			}
			m.Addrs = append(m.Addrs, a)
		}
	case SchemeDNS:
		host, port, err := withPort(rest)
		if err != nil {
			return Master{}, fmt.Errorf("master %q: %v", s, err)
		}
		m.Host, m.Port = host, port
	default:
		return Master{}, fmt.Errorf("master %q: unknown scheme %q (want shoal:// or dns://)", s, scheme)
	}
	return m, nil
}

// resolve returns the nodes' addresses, sorted.
func (m Master) resolve(ctx context.Context) ([]string, error) {
	if m.Scheme == SchemeShoal {
		return m.Addrs, nil
	}
	ips, err := net.DefaultResolver.LookupHost(ctx, m.Host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", m.Host, err)
	}
	addrs := make([]string, len(ips))
	for i, ip := range ips {
		addrs[i] = net.JoinHostPort(ip, m.Port)
	}
	slices.Sort(addrs)
	return addrs, nil
}

// RemoteOptions configure StartRemote.
type RemoteOptions struct {
	// Master says where the nodes are (ParseMaster). Required.
	Master string
	// ClusterSecret is presented to every node. Required unless every
	// node listens on loopback without one.
	ClusterSecret string
	// TLS is the driver's identity, presented to every node (mutual
	// TLS); nil only for nodes on loopback without certificates.
	// TLSServerName is the name every node's certificate carries,
	// checked instead of the host dialled (nodeclient.Credentials), by
	// the driver and the workers. DriverCertSHA256 is the SHA-256 of
	// the certificate the driver's endpoint serves with (TLS's), which
	// the workers accept and no other.
	TLS              *pki.Identity
	TLSServerName    string
	DriverCertSHA256 string
	// Binary is the executable the nodes start the workers from: it must
	// be built for the nodes' machines (GOOS=linux, their GOARCH) and
	// statically (CGO_ENABLED=0). Default: this process's own.
	Binary string
	// WorkersPerNode is how many workers each node runs; 0: each node's
	// own default (`shoal node --workers`).
	WorkersPerNode int
	// Slots, HeartbeatInterval and DriverTimeout are the workers'
	// (WorkerOptions). 0: their defaults.
	Slots             int
	HeartbeatInterval time.Duration
	DriverTimeout     time.Duration
	// DriverAddr is the address the workers reach the driver's endpoint
	// by. Required.
	DriverAddr string
	// App is the application's ID; AppToken its token (Endpoint.Token).
	// Required.
	App, AppToken string
	// AppTTL is how long a node keeps the application, and its workers,
	// after its last heartbeat. Default 30 s: a driver killed leaves no
	// worker running beyond it.
	AppTTL time.Duration
	// Env are more variables for the workers, KEY=VALUE with keys that
	// start with SHOAL_ or are the S3 client's (AWS_ENDPOINT_URL,
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION: the workers
	// read and write s3:// inputs and outputs).
	Env []string
	// WorkerArgs are the workers' command-line arguments.
	WorkerArgs []string
	// Logger receives the log; it is given component=compute. Default:
	// discard.
	Logger *slog.Logger
}

// DefaultRemoteAppTTL is RemoteOptions.AppTTL's default.
const DefaultRemoteAppTTL = 30 * time.Second

// remoteTick is how often a Remote heartbeats the application on every
// node, asks the nodes how its workers fare and, with dns://, resolves
// the nodes again.
const remoteTick = 2 * time.Second

// Remote is a cluster of node services that already run (cluster mode).
// It implements what the scheduler asks of a cluster: the nodes, a
// worker killed, and (instead of starting a replacement itself) leaves
// replacing workers to their nodes, which supervise them.
type Remote struct {
	opts   RemoteOptions
	master Master
	log    *slog.Logger
	binary binaryRef
	env    []string // the workers' environment from the driver

	retry map[string]retryAt // by the tick only: addresses that failed to join

	mu       sync.Mutex
	nodes    []*remoteNode
	closed   bool
	failures chan error // capacity 1 per node at most: see report

	stop      chan struct{}
	tickDone  chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// retryAt is when an address that failed to join is tried again.
type retryAt struct {
	at    time.Time
	delay time.Duration
}

type remoteNode struct {
	info    NodeInfo
	dial    string // the address the driver reached it at
	client  *nodeclient.Client
	workers int // as the node started them
	failed  bool
}

// binaryRef is the executable the nodes start workers from.
type binaryRef struct {
	path   string
	sha256 string
	size   int64
}

// StartRemote joins the nodes Master names: on each it registers the
// application, uploads the binary unless the node has it, and starts the
// workers. It returns once every node has started them, not once they
// have connected (the driver sees them as WorkerAdded events). A node
// that cannot be reached or refuses is an error naming it; ctx bounds the
// start only.
func StartRemote(ctx context.Context, opts RemoteOptions) (*Remote, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.AppTTL == 0 {
		opts.AppTTL = DefaultRemoteAppTTL
	}
	master, err := ParseMaster(opts.Master)
	if err != nil {
		return nil, fmt.Errorf("compute: %w", err)
	}
	var errs []error
	if opts.DriverAddr == "" {
		errs = append(errs, errors.New("DriverAddr is empty"))
	}
	if err := validateID("application", opts.App); err != nil {
		errs = append(errs, err)
	}
	if opts.AppToken == "" {
		errs = append(errs, errors.New("AppToken is empty"))
	}
	// The node's own rule (launcher.CheckEnv), checked here so that a bad
	// variable fails the start before anything is uploaded.
	if err := launcher.CheckEnv(opts.Env, opts.WorkerArgs); err != nil {
		errs = append(errs, fmt.Errorf("Env, WorkerArgs: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("compute: remote options: %w", err)
	}
	if opts.Binary == "" {
		if opts.Binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("compute: find this program's executable to ship to the nodes (set Binary): %w", err)
		}
	}
	bin, err := hashBinary(opts.Binary)
	if err != nil {
		return nil, err
	}
	wo := WorkerOptions{DriverAddr: opts.DriverAddr, Slots: opts.Slots, HeartbeatInterval: opts.HeartbeatInterval,
		DriverTimeout: opts.DriverTimeout, AppToken: opts.AppToken,
		TLSServerName: opts.TLSServerName, DriverCertSHA256: opts.DriverCertSHA256}
	env := slices.DeleteFunc(wo.Environ(), func(kv string) bool {
		// The node sets these itself.
		for _, k := range []string{EnvRole, EnvNode, EnvApp, EnvWorkerID, EnvTLSDir} {
			if strings.HasPrefix(kv, k+"=") {
				return true
			}
		}
		return false
	})
	r := &Remote{
		opts:     opts,
		master:   master,
		log:      opts.Logger.With("component", "compute"),
		binary:   bin,
		env:      append(env, opts.Env...),
		failures: make(chan error, 64),
		retry:    map[string]retryAt{},
		stop:     make(chan struct{}),
		tickDone: make(chan struct{}),
	}
	addrs, err := master.resolve(ctx)
	if err == nil && len(addrs) == 0 {
		err = errors.New("no address")
	}
	if err != nil {
		return nil, fmt.Errorf("compute: master %s: %w", opts.Master, err)
	}
	n, err := r.join(ctx, addrs)
	if n == 0 {
		close(r.tickDone)
		return nil, errors.Join(fmt.Errorf("compute: no node of %s could be joined: %w", opts.Master, err), r.Close())
	}
	if err != nil {
		r.log.Warn("some nodes could not be joined; they are tried again every few seconds", "err", err)
	}
	go r.tick()
	return r, nil
}

// hashBinary reads the executable at path once for its SHA-256.
func hashBinary(path string) (binaryRef, error) {
	f, err := os.Open(path)
	if err != nil {
		return binaryRef{}, fmt.Errorf("compute: the binary to ship to the nodes: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return binaryRef{}, fmt.Errorf("compute: read the binary to ship to the nodes: %w", err)
	}
	return binaryRef{path: path, sha256: hex.EncodeToString(h.Sum(nil)), size: n}, nil
}

// join sets up the application on each new address, at once. A node
// that cannot be reached, or refuses, is left out, and tried again at the
// next tick; join returns how many joined and why the others did not.
func (r *Remote) join(ctx context.Context, addrs []string) (int, error) {
	joined := make([]*remoteNode, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			joined[i], errs[i] = r.joinNode(ctx, addr)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("node %s: %w", addr, errs[i])
			}
		})
	}
	wg.Wait()
	var undo []*remoteNode
	n := 0
	r.mu.Lock()
	for i, node := range joined {
		switch {
		case node == nil:
		case r.closed || errs[i] != nil:
			undo = append(undo, node)
		default:
			node.info.Index = len(r.nodes)
			r.nodes = append(r.nodes, node)
			n++
			r.log.Info("node joined", "node", node.info.Name, "addr", node.info.Addr, "workers", node.workers)
		}
	}
	r.mu.Unlock()
	for _, node := range undo {
		r.leave(node) // what it may have been given
	}
	return n, errors.Join(errs...)
}

// joinTimeout bounds asking a node whether it answers, before the
// application is given to it: a host that is down must not hold the
// start for the call's own deadline.
const joinTimeout = 10 * time.Second

// joinNode registers the application with the node at addr, gives it the
// binary and starts the workers. The node is returned once dialled, also
// on error, so that the caller can remove the application from it.
func (r *Remote) joinNode(ctx context.Context, addr string) (*remoteNode, error) {
	cl, err := nodeclient.Dial(addr, nodeclient.WithCredentials(r.Credentials()), nodeclient.WithAppToken(r.opts.AppToken))
	if err != nil {
		return nil, err
	}
	n := &remoteNode{dial: addr, client: cl}
	sctx, cancel := context.WithTimeout(ctx, joinTimeout)
	st, err := cl.Status(sctx)
	cancel()
	if err != nil {
		return n, err
	}
	n.info = NodeInfo{Addr: st.GetAddr(), Listen: addr, Pid: int(st.GetPid()), Name: st.GetName()}
	if n.info.Addr == "" {
		n.info.Addr = addr
	}
	if err := cl.RegisterApp(ctx, r.opts.App, r.opts.AppTTL); err != nil {
		return n, fmt.Errorf("register application %s: %w", r.opts.App, err)
	}
	has, err := cl.HasBinary(ctx, r.binary.sha256)
	if err != nil {
		return n, err
	}
	if !has {
		start := time.Now()
		f, err := os.Open(r.binary.path)
		if err != nil {
			return n, err
		}
		err = cl.PutBinary(ctx, r.binary.sha256, r.binary.size, f)
		f.Close()
		if err != nil {
			return n, fmt.Errorf("upload %s: %w", r.binary.path, err)
		}
		r.log.Info("binary uploaded", "node", n.info.Name, "sha256", r.binary.sha256[:12], "bytes", r.binary.size, "took", time.Since(start).Round(time.Millisecond))
	}
	ws, err := cl.StartWorkers(ctx, &shufflepb.StartWorkersRequest{
		App: r.opts.App, BinarySha256: r.binary.sha256, Workers: uint32(r.opts.WorkersPerNode),
		Env: r.env, Args: r.opts.WorkerArgs,
	})
	if err != nil {
		return n, fmt.Errorf("start workers: %w", err)
	}
	n.workers = len(ws)
	return n, nil
}

// leave removes the application from a node, which stops its workers.
func (r *Remote) leave(n *remoteNode) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := n.client.RemoveApp(ctx, r.opts.App)
	n.client.Close()
	if err != nil {
		return fmt.Errorf("compute: remove application %s from node %s: %w", r.opts.App, n.info.Addr, err)
	}
	return nil
}

// Nodes returns the nodes joined so far.
func (r *Remote) Nodes() []NodeInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]NodeInfo, len(r.nodes))
	for i, n := range r.nodes {
		out[i] = n.info
	}
	return out
}

// Workers is the number of workers the nodes started.
func (r *Remote) Workers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	for _, n := range r.nodes {
		total += n.workers
	}
	return total
}

// ClusterSecret is the secret the nodes require.
func (r *Remote) ClusterSecret() string { return r.opts.ClusterSecret }

// Credentials are what the driver presents to the nodes: the cluster
// secret and RemoteOptions.TLS.
func (r *Remote) Credentials() nodeclient.Credentials {
	return nodeclient.Credentials{Secret: r.opts.ClusterSecret, TLS: r.opts.TLS, ServerName: r.opts.TLSServerName}
}

// Failures delivers what the nodes report about the application's
// workers that the scheduler should know: a node that gave up restarting
// them because they crash at start.
func (r *Remote) Failures() <-chan error { return r.failures }

// AddWorker is what the scheduler asks after a worker is lost: in cluster
// mode the worker's node starts its replacement by itself, so AddWorker
// starts nothing and returns a LocalWorker with no ID.
func (r *Remote) AddWorker(i int) (LocalWorker, error) {
	return LocalWorker{Node: i}, nil
}

// KillWorker asks the worker's node to kill it (a hung worker; or an
// experiment); the node starts a replacement. Worker IDs are
// w-<node name>-<k>.
func (r *Remote) KillWorker(id string) error {
	r.mu.Lock()
	var node *remoteNode
	for _, n := range r.nodes {
		if k, ok := strings.CutPrefix(id, "w-"+n.info.Name+"-"); ok && isDigits(k) {
			node = n
		}
	}
	r.mu.Unlock()
	if node == nil {
		return fmt.Errorf("compute: no node runs worker %s", id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return node.client.StopWorker(ctx, r.opts.App, id)
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// RestartNode is local mode's: a node of a cluster is restarted on its
// machine, where it joins again when the application next resolves it.
func (r *Remote) RestartNode(context.Context, int) (NodeInfo, error) {
	return NodeInfo{}, errors.New("compute: in cluster mode a node is restarted on its own machine (shoal node), not by the driver")
}

// tick keeps the application alive on every node, reports nodes that
// gave up on its workers, and with dns:// joins nodes that appeared.
func (r *Remote) tick() {
	defer close(r.tickDone)
	t := time.NewTicker(remoteTick)
	defer t.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.stop
		cancel()
	}()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		r.mu.Lock()
		nodes := slices.Clone(r.nodes)
		r.mu.Unlock()
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() { r.check(ctx, n) })
		}
		wg.Wait()
		r.rejoin(ctx, nodes)
	}
}

// check heartbeats the application on n, makes sure n runs its workers
// (a node restarted since runs none: it is given the application, the
// binary and the workers again) and reports, once, that n gave up on
// them.
func (r *Remote) check(ctx context.Context, n *remoteNode) {
	cctx, cancel := context.WithTimeout(ctx, remoteTick)
	defer cancel()
	if err := n.client.Heartbeat(cctx, r.opts.App); err != nil {
		if !errors.Is(err, shuffle.ErrUnknownApp) {
			r.log.Debug("heartbeat to node failed", "node", n.info.Name, "err", err)
			return
		}
	}
	workers, failure, err := n.client.Workers(cctx, r.opts.App)
	if err != nil {
		r.log.Debug("ask node for its workers", "node", n.info.Name, "err", err)
		return
	}
	if failure != "" {
		r.mu.Lock()
		first := !n.failed
		n.failed = true
		r.mu.Unlock()
		if first {
			err := fmt.Errorf("compute: node %s (%s) gave up starting workers: %s", n.info.Name, n.info.Addr, failure)
			r.log.Error("node gave up starting workers", "node", n.info.Name, "failure", failure)
			select {
			case r.failures <- err:
			default:
			}
		}
		return
	}
	if len(workers) == 0 {
		// Restarted (or it removed the application): join it again.
		jctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if again, err := r.joinNode(jctx, n.dial); err != nil {
			r.log.Warn("node runs no worker of the application and could not be given them", "node", n.info.Name, "err", err)
			if again != nil {
				again.client.Close()
			}
		} else {
			again.client.Close()
			r.log.Info("node runs no worker of the application: started them again", "node", n.info.Name, "workers", again.workers)
		}
	}
}

// rejoin joins the master's addresses that have not joined: with dns://
// the name is resolved again (nodes come and go); with shoal:// they are
// those that could not be joined before. A node that went away stays
// known: its loss is the scheduler's to find (its workers are lost, its
// fetches fail).
func (r *Remote) rejoin(ctx context.Context, known []*remoteNode) {
	rctx, cancel := context.WithTimeout(ctx, remoteTick)
	defer cancel()
	addrs, err := r.master.resolve(rctx)
	if err != nil {
		r.log.Debug("resolve the nodes again", "err", err)
		return
	}
	var fresh []string
	now := time.Now()
	for _, a := range addrs {
		if !slices.ContainsFunc(known, func(n *remoteNode) bool { return n.dial == a }) && !now.Before(r.retry[a].at) {
			fresh = append(fresh, a)
		}
	}
	if len(fresh) == 0 {
		return
	}
	// One that fails is tried again after a pause that doubles up to a
	// minute: it may refuse the binary, which is not sent every tick.
	for _, a := range fresh {
		d := min(2*max(r.retry[a].delay, remoteTick), time.Minute)
		r.retry[a] = retryAt{at: now.Add(d), delay: d}
	}
	jctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := r.join(jctx, fresh); err != nil {
		r.log.Debug("a node could not join", "addrs", fresh, "err", err)
	}
}

// Close removes the application from every node, which stops its
// workers and deletes its files. Idempotent.
func (r *Remote) Close() error {
	r.closeOnce.Do(func() {
		close(r.stop)
		<-r.tickDone
		r.mu.Lock()
		r.closed = true
		nodes := r.nodes
		r.nodes = nil
		r.mu.Unlock()
		var errs []error
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Go(func() {
				if err := r.leave(n); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}
