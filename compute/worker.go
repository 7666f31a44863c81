package compute

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"shoal/compute/computepb"
	"shoal/internal/pki"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shuffle"
)

// Runner executes one task attempt. compute does not know what a plan
// means; the caller (package client) supplies the Runner.
//
// Run must honour ctx: it is cancelled when the driver kills the task or
// the worker stops. It returns the task's update (state, result, map
// output, metrics, its opaque report...; task_id and duration_ms are
// filled in by the worker, and a nil update or an unset state means
// SUCCEEDED) or an error, which makes the task FAILED: wrap the error in
// UserError when the task's own code failed, return a
// *shuffle.FetchFailedError (possibly wrapped) when an input could
// not be fetched. An update returned with an error keeps its other fields
// (metrics, report, an explicit fetch_failure). A panic in Run is
// recovered and reported as a user error with its stack; whatever the
// task would have reported is lost with it.
type Runner interface {
	Run(ctx context.Context, env *TaskEnv, t *computepb.RunTask) (*computepb.TaskUpdate, error)
}

// Messenger is implemented by a Runner that reads the messages the
// driver sends it outside of tasks (Endpoint.Message): Message gets each
// payload as sent, in order, on the worker's receiving goroutine, so it
// must not block. An error says that the payload could not be read; the
// worker logs it and goes on. A Runner that is not a Messenger has its
// messages dropped.
type Messenger interface {
	Message(payload []byte) error
}

// TaskEnv is what a worker gives every task it runs. It is shared by all
// the worker's tasks and must not be modified.
type TaskEnv struct {
	App      string
	WorkerID string
	// NodeAddr is the address of the node service of this machine.
	NodeAddr string
	// ShuffleAddr is the address of the shuffle server that holds the map
	// outputs this worker writes, which the driver records as their
	// location: NodeAddr, or the worker's own server when it serves its
	// outputs itself (WorkerOptions.ServeShuffle). Blocks on it are
	// local: read from Layout's files directly.
	ShuffleAddr string
	// Node is a client of the shuffle server at ShuffleAddr (commits,
	// local reads).
	Node *nodeclient.Client
	// Layout says where map outputs go in the local directories of the
	// shuffle server at ShuffleAddr.
	Layout shuffle.Layout
	// Clients dials other node services (fetches) and caches the clients;
	// tasks must not close them.
	Clients nodeclient.Source
	// Buffers recycles sort buffers between the worker's map tasks.
	Buffers *shuffle.BufferPool
	Logger  *slog.Logger
}

// Defaults of WorkerOptions.
const (
	DefaultSlots             = 2
	DefaultHeartbeatInterval = time.Second
	// DefaultDriverTimeout is the endpoint's DefaultHeartbeatTimeout:
	// both ends of a silent stream give up after the same time.
	DefaultDriverTimeout = DefaultHeartbeatTimeout
)

const (
	// connectTimeout bounds registering with the node service and the
	// Hello/Welcome handshake with the driver.
	connectTimeout = 30 * time.Second
	// taskGrace is how long a stopping worker waits for its cancelled
	// tasks to return.
	taskGrace = 5 * time.Second
	// goodbyeTimeout bounds waiting for the driver to end the stream after
	// a Shutdown.
	goodbyeTimeout = time.Second
)

// WorkerOptions configure a worker (RunWorker). The zero value of Slots,
// HeartbeatInterval, DriverTimeout and Logger is replaced by the default
// in EnsureDefaults; the other fields are required.
type WorkerOptions struct {
	// DriverAddr is the driver endpoint's address.
	DriverAddr string
	// NodeAddr is the address of this machine's node service.
	NodeAddr string
	// App is the application's ID.
	App string
	// WorkerID is the worker's ID, unique within the application.
	WorkerID string
	// Slots is how many tasks run at once. Default 2.
	Slots int
	// HeartbeatInterval is how often the worker tells the driver it is
	// alive. Default 1 s; keep it well under the driver's heartbeat
	// timeout.
	HeartbeatInterval time.Duration
	// DriverTimeout: a worker that received nothing from its driver for
	// this long (the driver sends a Heartbeat every second by default:
	// EndpointOptions.HeartbeatInterval) takes it for lost, hung or
	// unreachable: it cancels its tasks and RunWorker returns an error
	// wrapping ErrDriverLost. Give it the driver's HeartbeatTimeout.
	// Default 10 s (DefaultDriverTimeout).
	DriverTimeout time.Duration
	// ServeShuffle makes the worker serve the map outputs it writes from
	// a shuffle server of its own, embedded in its process, instead of
	// committing them to the node service: they die with the worker (the
	// external shuffle service is off; see doc.go).
	ServeShuffle bool
	// ClusterSecret is presented to every node service
	// (nodeclient.WithClusterSecret). Empty: none.
	ClusterSecret string
	// AppToken is presented to the driver's endpoint and to every node
	// service (nodeclient.WithAppToken); the driver's endpoint refuses a
	// worker without its application's token (EndpointOptions.Token).
	AppToken string
	// TLSDir, if set, is the worker's identity (ca.crt, tls.crt,
	// tls.key; its node's): every link is then mutual TLS 1.3 (package
	// internal/pki). Empty: plain TCP (a driver run with --insecure, on
	// loopback).
	TLSDir string
	// TLSServerName is the name every node's certificate carries,
	// checked instead of the host dialled (nodeclient.Credentials).
	// Empty: the host dialled.
	TLSServerName string
	// DriverCertSHA256 is the SHA-256 (hex) of the certificate the
	// driver's endpoint serves with: the worker accepts that one only.
	// Required with TLSDir.
	DriverCertSHA256 string
	// Logger receives the worker's log; it is given component=compute.
	// Default: discard.
	Logger *slog.Logger

	envErrs []error // malformed environment variables (WorkerFromEnv)
}

// EnsureDefaults replaces zero fields by their defaults.
func (o *WorkerOptions) EnsureDefaults() {
	if o.Slots == 0 {
		o.Slots = DefaultSlots
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.DriverTimeout == 0 {
		o.DriverTimeout = DefaultDriverTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem of o at once. Call it after
// EnsureDefaults (RunWorker does both).
func (o *WorkerOptions) Validate() error {
	errs := append([]error(nil), o.envErrs...)
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if o.DriverAddr == "" {
		bad("DriverAddr is empty (%s)", EnvDriver)
	}
	if o.NodeAddr == "" {
		bad("NodeAddr is empty (%s)", EnvNode)
	}
	if err := validateID("application", o.App); err != nil {
		errs = append(errs, err)
	}
	if err := validateID("worker", o.WorkerID); err != nil {
		errs = append(errs, err)
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
	if o.TLSDir != "" && o.DriverCertSHA256 == "" {
		bad("DriverCertSHA256 is empty (%s): with TLS the worker must know its driver's certificate", EnvDriverCert)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("compute: worker options: %w", err)
	}
	return nil
}

// RunWorker runs a worker until the driver tells it to shut down, ctx is
// cancelled (both return nil) or the driver is lost (an error wrapping
// ErrDriverLost): its stream broke, or nothing came from it for
// opts.DriverTimeout. It registers with the node service at opts.NodeAddr,
// opens its own shuffle server if opts.ServeShuffle, connects to the
// driver at opts.DriverAddr, and runs the tasks the driver sends with
// runner, at most opts.Slots at once. When it returns, its tasks have been
// cancelled and (within a grace period) have returned, and its own
// shuffle server, if any, is closed and its files removed.
func RunWorker(ctx context.Context, opts WorkerOptions, runner Runner) error {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return err
	}
	if runner == nil {
		return errors.New("compute: RunWorker: nil Runner")
	}
	log := opts.Logger.With("component", "compute", "worker", opts.WorkerID)

	creds := nodeclient.Credentials{Secret: opts.ClusterSecret, ServerName: opts.TLSServerName}
	driverCreds := insecure.NewCredentials()
	if opts.TLSDir != "" {
		var err error
		if creds.TLS, err = pki.LoadDir(opts.TLSDir); err != nil {
			return fmt.Errorf("compute: worker %s: its certificate (%s): %w", opts.WorkerID, EnvTLSDir, err)
		}
		driverCreds = creds.TLS.PinnedCredentials(opts.DriverCertSHA256)
	}
	node, err := nodeclient.Dial(opts.NodeAddr, nodeclient.WithCredentials(creds), nodeclient.WithAppToken(opts.AppToken))
	if err != nil {
		return fmt.Errorf("compute: worker %s: %w", opts.WorkerID, err)
	}
	defer node.Close()
	rctx, cancel := context.WithTimeout(ctx, connectTimeout)
	layout, err := node.RegisterWorker(rctx, opts.App, opts.WorkerID, os.Getpid())
	cancel()
	if err != nil {
		return fmt.Errorf("compute: worker %s: register with node service %s: %w", opts.WorkerID, opts.NodeAddr, err)
	}
	shuffleAddr, shuffleNode := opts.NodeAddr, node
	if opts.ServeShuffle {
		octx, cancel := context.WithTimeout(ctx, connectTimeout)
		own, err := openShuffleServer(octx, opts, creds, layout.Dirs, opts.Logger.With("worker", opts.WorkerID))
		cancel()
		if err != nil {
			return fmt.Errorf("compute: worker %s: open its own shuffle server: %w", opts.WorkerID, err)
		}
		defer own.close()
		shuffleAddr, shuffleNode, layout = own.addr, own.client, own.layout()
		log.Info("serving its own map outputs", "shuffle_addr", shuffleAddr, "dirs", layout.Dirs)
	}
	clients := newClientCache(shuffleNode, nodeclient.WithCredentials(creds), nodeclient.WithAppToken(opts.AppToken))
	defer clients.close()

	conn, err := grpc.NewClient(opts.DriverAddr,
		append(dialOptions(), grpc.WithTransportCredentials(driverCreds),
			grpc.WithPerRPCCredentials(appToken(opts.AppToken)))...)
	if err != nil {
		return fmt.Errorf("compute: worker %s: dial driver %s: %w", opts.WorkerID, opts.DriverAddr, err)
	}
	defer conn.Close()

	w := &worker{
		opts:   opts,
		log:    log,
		runner: runner,
		env: &TaskEnv{
			App:         opts.App,
			WorkerID:    opts.WorkerID,
			NodeAddr:    opts.NodeAddr,
			ShuffleAddr: shuffleAddr,
			Node:        shuffleNode,
			Layout:      layout,
			Clients:     clients.get,
			Buffers:     shuffle.NewBufferPool(opts.Slots),
			Logger:      log,
		},
		out:   make(chan *computepb.WorkerMessage, 2*opts.Slots+16),
		tasks: make(map[uint64]*task),
	}
	return w.serve(ctx, computepb.NewDriverClient(conn))
}

// worker is the state of RunWorker.
type worker struct {
	opts   WorkerOptions
	log    *slog.Logger
	runner Runner
	env    *TaskEnv
	out    chan *computepb.WorkerMessage // to sendLoop

	sendCtx   context.Context // done when sendLoop stops: drop messages
	lastHeard atomic.Int64    // UnixNano of the last message from the driver

	mu      sync.Mutex
	tasks   map[uint64]*task // running or queued, not yet reported done
	pending []*task          // queued, in arrival order
	running int              // tasks holding a slot
	wg      sync.WaitGroup   // task goroutines
}

// serve holds the driver stream: handshake, then the receive loop.
func (w *worker) serve(ctx context.Context, driver computepb.DriverClient) error {
	streamCtx, cancelStream := context.WithCancelCause(ctx)
	defer cancelStream(nil)
	// A driver that cannot be reached yet (its machine's route is down
	// for a moment) is waited for, up to DriverTimeout, as a silent one
	// would be: a worker that gave up at once would look to its node like
	// a binary that crashes at start.
	unreachable := time.AfterFunc(w.opts.DriverTimeout, func() {
		cancelStream(fmt.Errorf("the driver at %s could not be reached for %v", w.opts.DriverAddr, w.opts.DriverTimeout))
	})
	stream, err := driver.Connect(streamCtx, grpc.WaitForReady(true))
	unreachable.Stop()
	if err != nil {
		if cause := context.Cause(streamCtx); cause != nil && cause != context.Canceled {
			err = cause
		}
		return w.driverLost(err)
	}
	if err := w.handshake(stream, func() { cancelStream(nil) }); err != nil {
		return err
	}
	w.lastHeard.Store(time.Now().UnixNano())
	w.log.Info("connected to the driver", "driver", w.opts.DriverAddr, "node", w.opts.NodeAddr, "slots", w.opts.Slots,
		"driver_timeout", w.opts.DriverTimeout)

	sendCtx, stopSend := context.WithCancel(context.Background())
	w.sendCtx = sendCtx
	stopWatch := make(chan struct{})
	var loops sync.WaitGroup
	loops.Add(3)
	go func() {
		defer loops.Done()
		w.sendLoop(stream, stopSend)
	}()
	go func() {
		defer loops.Done()
		w.heartbeatLoop()
	}()
	go func() {
		defer loops.Done()
		w.watchDriver(stopWatch, cancelStream)
	}()
	tasksCtx, cancelTasks := context.WithCancel(ctx)
	shutdown, recvErr := w.recvLoop(tasksCtx, stream)
	close(stopWatch)
	if ctx.Err() == nil && streamCtx.Err() != nil {
		recvErr = context.Cause(streamCtx) // the driver fell silent
	}

	cancelTasks()
	w.awaitTasks()
	stopSend()
	loops.Wait()
	if shutdown {
		// Half-close and let the driver end the stream, so that it sees a
		// clean goodbye rather than a cancelled stream.
		stream.CloseSend()
		t := time.AfterFunc(goodbyeTimeout, func() { cancelStream(nil) })
		for {
			if _, err := stream.Recv(); err != nil {
				break
			}
		}
		t.Stop()
		w.log.Info("shut down by the driver")
		return nil
	}
	if ctx.Err() != nil {
		w.log.Info("stopped", "cause", context.Cause(ctx))
		return nil
	}
	return w.driverLost(recvErr)
}

func (w *worker) driverLost(err error) error {
	return fmt.Errorf("%w: worker %s, driver %s: %w", ErrDriverLost, w.opts.WorkerID, w.opts.DriverAddr, err)
}

// handshake sends Hello and waits for Welcome.
func (w *worker) handshake(stream computepb.Driver_ConnectClient, cancel func()) error {
	t := time.AfterFunc(connectTimeout, cancel)
	defer t.Stop()
	hello := &computepb.Hello{
		WorkerId:    w.opts.WorkerID,
		NodeAddr:    w.opts.NodeAddr,
		Pid:         int64(os.Getpid()),
		Slots:       uint32(w.opts.Slots),
		App:         w.opts.App,
		ShuffleAddr: w.env.ShuffleAddr,
	}
	if err := stream.Send(&computepb.WorkerMessage{Msg: &computepb.WorkerMessage_Hello{Hello: hello}}); err != nil {
		if errors.Is(err, io.EOF) {
			_, err = stream.Recv() // the real error
		}
		return w.driverLost(err)
	}
	m, err := stream.Recv()
	if err != nil {
		return w.driverLost(err)
	}
	if m.GetWelcome() == nil {
		return w.driverLost(fmt.Errorf("protocol error: expected Welcome, got %T", m.GetMsg()))
	}
	return nil
}

// recvLoop handles the driver's messages until Shutdown (shutdown true)
// or the stream ends (err).
func (w *worker) recvLoop(tasksCtx context.Context, stream computepb.Driver_ConnectClient) (shutdown bool, err error) {
	for {
		m, err := stream.Recv()
		if err != nil {
			return false, err
		}
		w.lastHeard.Store(time.Now().UnixNano())
		switch msg := m.GetMsg().(type) {
		case *computepb.DriverMessage_RunTask:
			w.start(tasksCtx, msg.RunTask)
		case *computepb.DriverMessage_KillTask:
			w.kill(msg.KillTask.GetTaskId())
		case *computepb.DriverMessage_Shutdown:
			return true, nil
		case *computepb.DriverMessage_ClientMessage:
			w.message(msg.ClientMessage.GetPayload())
		case *computepb.DriverMessage_Heartbeat:
			// Only proves that the driver is alive: lastHeard, above.
		default:
			w.log.Warn("ignored an unexpected message from the driver", "type", fmt.Sprintf("%T", msg))
		}
	}
}

// message hands a ClientMessage's payload to the Runner.
func (w *worker) message(payload []byte) {
	m, ok := w.runner.(Messenger)
	if !ok {
		w.log.Warn("dropped a message from the driver: the Runner takes no messages", "bytes", len(payload))
		return
	}
	if err := m.Message(payload); err != nil {
		w.log.Warn("the Runner could not read a message from the driver; ignored", "err", err)
	}
}

// sendLoop is the only sender on the stream (gRPC allows one).
func (w *worker) sendLoop(stream computepb.Driver_ConnectClient, stop context.CancelFunc) {
	defer stop()
	for {
		select {
		case m := <-w.out:
			if err := stream.Send(m); err != nil {
				// The stream is broken; recvLoop sees why.
				return
			}
		case <-w.sendCtx.Done():
			return
		}
	}
}

func (w *worker) heartbeatLoop() {
	t := time.NewTicker(w.opts.HeartbeatInterval)
	defer t.Stop()
	hb := &computepb.WorkerMessage{Msg: &computepb.WorkerMessage_Heartbeat{Heartbeat: &computepb.Heartbeat{}}}
	for {
		select {
		case <-t.C:
			w.post(hb)
		case <-w.sendCtx.Done():
			return
		}
	}
}

// watchDriver cancels the stream, with the reason as its cause, once
// nothing has arrived from the driver for DriverTimeout: the driver
// sends a Heartbeat every interval, so its silence means it is hung, or
// unreachable without a broken connection (a black-holed route). The
// receive loop then ends, and the worker stops as when the stream breaks.
// Without it, only the transport keepalive (wire.go) would notice, later.
func (w *worker) watchDriver(stop <-chan struct{}, cancel context.CancelCauseFunc) {
	timeout := w.opts.DriverTimeout
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		idle := time.Since(time.Unix(0, w.lastHeard.Load()))
		if idle < timeout {
			t.Reset(timeout - idle)
			continue
		}
		w.log.Warn("no message from the driver within the driver timeout; stopping", "idle", idle.Round(time.Millisecond), "driver_timeout", timeout)
		cancel(fmt.Errorf("no message from the driver for %v (driver timeout %v): the driver is hung or unreachable",
			idle.Round(time.Millisecond), timeout))
		return
	}
}

// post queues a message for the driver; it is dropped once the worker
// stops sending.
func (w *worker) post(m *computepb.WorkerMessage) {
	select {
	case w.out <- m:
	case <-w.sendCtx.Done():
	}
}

func (w *worker) postUpdate(u *computepb.TaskUpdate) {
	w.post(&computepb.WorkerMessage{Msg: &computepb.WorkerMessage_TaskUpdate{TaskUpdate: u}})
}

// awaitTasks waits for the (cancelled) tasks to return, for at most
// taskGrace: a Runner that ignores its context must not keep the worker
// process alive.
func (w *worker) awaitTasks() {
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(taskGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		w.mu.Lock()
		n := len(w.tasks)
		w.mu.Unlock()
		w.log.Warn("tasks did not return after cancellation; leaving them", "tasks", n, "grace", taskGrace)
	}
}
