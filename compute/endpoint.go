package compute

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"shoal/compute/computepb"
	"shoal/internal/pki"
)

// Defaults of EndpointOptions.
const (
	DefaultListen           = "127.0.0.1:0"
	DefaultHeartbeatTimeout = 10 * time.Second
	// eventBuffer is the capacity of the Events channel. The queue behind
	// it is unbounded (see eventQueue).
	eventBuffer = 1024
	// refusedLogEvery bounds how often a connection refused at its TLS
	// handshake is logged.
	refusedLogEvery = 10 * time.Second
)

// EndpointOptions configure the driver's endpoint (NewEndpoint). The zero
// value of every field is replaced by its default in EnsureDefaults.
type EndpointOptions struct {
	// Listen is the address workers connect to. Default "127.0.0.1:0" (a
	// port picked by the OS; Addr tells which). A cluster listens on an
	// address the workers' machines can reach.
	Listen string
	// App is the application's ID. Workers of another application are
	// refused. Empty: accept any.
	App string
	// HeartbeatTimeout: a worker from which no message arrived for this
	// long is declared lost and its stream is cancelled. It must exceed
	// the workers' heartbeat interval (default 1 s) by a good margin.
	// Give the workers the same value as their DriverTimeout
	// (LocalOptions.DriverTimeout), so that both ends of a silent stream
	// give up at about the same time. Default 10 s.
	HeartbeatTimeout time.Duration
	// HeartbeatInterval is how often the endpoint sends every worker a
	// Heartbeat, so that a worker can tell a silent driver (hung, or
	// unreachable without a broken connection) from one with nothing to
	// say: it must be well under the workers' DriverTimeout. Default 1 s
	// (DefaultHeartbeatInterval); it must be under HeartbeatTimeout.
	HeartbeatInterval time.Duration
	// Token is the application's token: a worker must present it
	// (WorkerOptions.AppToken, metadata shoal-app-token) or its stream is
	// refused as Unauthenticated. Default: a new random token (Token
	// tells it), so that an endpoint never takes anyone's workers.
	Token string
	// TLS, if set, is the driver's identity: the endpoint serves only
	// mutual TLS 1.3 with its certificate, requires the workers'
	// (their node's) and verifies them against its CA. Workers verify
	// the endpoint's certificate by its SHA-256 (Fingerprint;
	// WorkerOptions.DriverCertSHA256), not by the address. nil: plain
	// TCP (a driver run with --insecure, on loopback).
	TLS *pki.Identity
	// Logger receives the endpoint's log; it is given component=compute.
	// Default: discard.
	Logger *slog.Logger
}

// EnsureDefaults replaces zero fields by their defaults.
func (o *EndpointOptions) EnsureDefaults() {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.HeartbeatTimeout == 0 {
		o.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Token == "" {
		o.Token = NewSecret()
	}
}

// Validate reports every problem of o at once. Call it after
// EnsureDefaults (NewEndpoint does both).
func (o *EndpointOptions) Validate() error {
	var errs []error
	if o.HeartbeatTimeout < 0 {
		errs = append(errs, fmt.Errorf("compute: endpoint options: HeartbeatTimeout %v is negative", o.HeartbeatTimeout))
	}
	switch {
	case o.HeartbeatInterval < 0:
		errs = append(errs, fmt.Errorf("compute: endpoint options: HeartbeatInterval %v is negative", o.HeartbeatInterval))
	case o.HeartbeatTimeout > 0 && o.HeartbeatInterval >= o.HeartbeatTimeout:
		errs = append(errs, fmt.Errorf("compute: endpoint options: HeartbeatInterval %v is not under HeartbeatTimeout %v (the workers' driver timeout): workers would take a healthy driver for lost",
			o.HeartbeatInterval, o.HeartbeatTimeout))
	}
	if o.App != "" {
		if err := validateID("application", o.App); err != nil {
			errs = append(errs, fmt.Errorf("compute: endpoint options: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Endpoint is the driver's side of the driver-worker protocol: a gRPC
// server that workers connect to, one stream per worker. It turns what
// workers say into Events and sends them tasks. It knows nothing of what
// a task computes.
//
// Lock order: Endpoint.mu, then workerConn.mu, then eventQueue.mu.
type Endpoint struct {
	opts   EndpointOptions
	log    *slog.Logger
	lis    net.Listener
	srv    *grpc.Server
	events chan Event
	queue  *eventQueue

	mu       sync.Mutex
	workers  map[string]*workerConn // connected workers by ID
	draining bool                   // Shutdown began: refuse new workers
	closed   bool

	wg        sync.WaitGroup // stream handlers and their goroutines
	quit      chan struct{}  // closed by Close: stops the pump
	pumpDone  chan struct{}
	serveDone chan struct{}
	closeOnce sync.Once
}

// workerConn is one connected worker.
type workerConn struct {
	info     WorkerInfo
	lastSeen atomic.Int64 // UnixNano of the last message received

	mu     sync.Mutex
	lost   bool
	reason string
	out    []*computepb.DriverMessage // queued for sendLoop
	wake   chan struct{}              // capacity 1: "out may be non-empty"
	done   chan struct{}              // closed when lost
}

// Token is the application's token that workers present
// (EndpointOptions.Token).
func (e *Endpoint) Token() string { return e.opts.Token }

// NewEndpoint listens on opts.Listen and serves workers until Close.
func NewEndpoint(opts EndpointOptions) (*Endpoint, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("compute: listen for workers on %s: %w (pick another address)", opts.Listen, err)
	}
	log := opts.Logger.With("component", "compute")
	sopts := serverOptions()
	if opts.TLS != nil {
		// Logged at most once per refusedLogEvery: a flood of refused
		// connections does not flood the log.
		var lastLog atomic.Int64
		sopts = append(sopts, grpc.Creds(opts.TLS.ServerCredentials(func(remote string, err error) {
			now := time.Now().UnixNano()
			if last := lastLog.Load(); now-last >= int64(refusedLogEvery) && lastLog.CompareAndSwap(last, now) {
				log.Warn("refused a worker's connection: "+err.Error(), "from", remote)
			}
		})))
	}
	e := &Endpoint{
		opts:      opts,
		log:       log,
		lis:       lis,
		srv:       grpc.NewServer(sopts...),
		events:    make(chan Event, eventBuffer),
		queue:     newEventQueue(),
		workers:   make(map[string]*workerConn),
		quit:      make(chan struct{}),
		pumpDone:  make(chan struct{}),
		serveDone: make(chan struct{}),
	}
	computepb.RegisterDriverServer(e.srv, driverService{e: e})
	go e.pump()
	go func() {
		defer close(e.serveDone)
		if err := e.srv.Serve(lis); err != nil {
			e.log.Error("worker endpoint stopped serving", "addr", lis.Addr().String(), "err", err)
		}
	}()
	e.log.Info("worker endpoint listening", "addr", e.Addr())
	return e, nil
}

// Addr is the address workers connect to (host:port).
func (e *Endpoint) Addr() string { return e.lis.Addr().String() }

// Events delivers what happens to workers, in order per worker. The
// channel is closed by Close; events not yet received by then, beyond what
// the channel's buffer holds, are dropped. The endpoint never waits for the
// consumer: events queue in memory until received.
func (e *Endpoint) Events() <-chan Event { return e.events }

// Workers returns the connected workers, sorted by ID.
func (e *Endpoint) Workers() []WorkerInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]WorkerInfo, 0, len(e.workers))
	for _, w := range e.workers {
		out = append(out, w.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Run sends a task to a worker. It does not wait for the worker: the
// message is queued on the worker's stream and the outcome arrives as
// TaskUpdate events. It fails with ErrWorkerGone if the worker is not
// connected. A worker runs at most its Slots tasks at once and queues the
// rest.
func (e *Endpoint) Run(workerID string, t *computepb.RunTask) error {
	if t == nil {
		return errors.New("compute: Run: nil task")
	}
	return e.send(workerID, &computepb.DriverMessage{Msg: &computepb.DriverMessage_RunTask{RunTask: t}})
}

// Kill asks a worker to cancel a task. The worker answers with a
// TaskUpdate: KILLED, or the task's own outcome if it finished first. An
// unknown task is ignored by the worker.
func (e *Endpoint) Kill(workerID string, taskID uint64) error {
	return e.send(workerID, &computepb.DriverMessage{Msg: &computepb.DriverMessage_KillTask{KillTask: &computepb.KillTask{TaskId: taskID}}})
}

// Message sends payload to a worker's Runner (a ClientMessage), which
// reads it if it is a Messenger. compute does not read it: what it means
// is agreed between the caller and its Runner. Like Run, it never blocks;
// messages reach the worker in the order they were sent, among its
// RunTasks and KillTasks.
func (e *Endpoint) Message(workerID string, payload []byte) error {
	return e.send(workerID, &computepb.DriverMessage{Msg: &computepb.DriverMessage_ClientMessage{ClientMessage: &computepb.ClientMessage{Payload: payload}}})
}

func (e *Endpoint) send(workerID string, m *computepb.DriverMessage) error {
	e.mu.Lock()
	closed := e.closed
	w := e.workers[workerID]
	e.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if w == nil {
		return fmt.Errorf("%w: %q", ErrWorkerGone, workerID)
	}
	return w.enqueue(m)
}

// Shutdown asks every worker to stop (they cancel their tasks and exit),
// refuses new workers, and waits until every worker's stream has ended or
// ctx is done. Then it closes the endpoint. It returns ctx's error if
// workers were still connected when ctx ended.
func (e *Endpoint) Shutdown(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.draining = true
	ws := make([]*workerConn, 0, len(e.workers))
	for _, w := range e.workers {
		ws = append(ws, w)
	}
	e.mu.Unlock()
	shutdown := &computepb.DriverMessage{Msg: &computepb.DriverMessage_Shutdown{Shutdown: &computepb.Shutdown{}}}
	for _, w := range ws {
		w.enqueue(shutdown) // fails only if the worker is gone already
	}
	var err error
	for _, w := range ws {
		select {
		case <-w.done:
		case <-ctx.Done():
			err = fmt.Errorf("compute: shutdown: worker %s still connected: %w", w.info.ID, ctx.Err())
		}
		if err != nil {
			break
		}
	}
	return errors.Join(err, e.Close())
}

// Close stops the endpoint at once: every stream is cut (each connected
// worker is reported lost, and exits when it notices), the Events channel
// is closed, and every goroutine of the endpoint has ended when Close
// returns. Close is idempotent.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		e.srv.Stop() // closes the listener and every connection
		<-e.serveDone
		e.wg.Wait()
		close(e.quit)
		<-e.pumpDone
		e.log.Info("worker endpoint closed", "addr", e.Addr())
	})
	return nil
}

// pump moves events from the queue to the Events channel until Close.
func (e *Endpoint) pump() {
	defer close(e.pumpDone)
	defer close(e.events)
	for {
		batch := e.queue.take()
		for i, ev := range batch {
			select {
			case e.events <- ev:
			case <-e.quit:
				e.flush(batch[i:])
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-e.queue.wake:
		case <-e.quit:
			e.flush(nil)
			return
		}
	}
}

// flush delivers what fits in the channel's buffer without waiting.
func (e *Endpoint) flush(rest []Event) {
	for _, ev := range append(rest, e.queue.take()...) {
		select {
		case e.events <- ev:
		default:
			return
		}
	}
}

// track counts a stream handler in e.wg unless the endpoint is closed.
func (e *Endpoint) track() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	return true
}

// driverService implements the Driver gRPC service for an Endpoint.
type driverService struct {
	computepb.UnimplementedDriverServer
	e *Endpoint
}

// Connect serves one worker's stream for the worker's whole life. The
// handler itself only watches: a goroutine receives, another sends, and
// the handler returns (which cuts the stream) when the worker is lost.
func (s driverService) Connect(stream computepb.Driver_ConnectServer) error {
	e := s.e
	if !e.track() {
		return status.Error(codes.Unavailable, "compute: driver endpoint closed")
	}
	defer e.wg.Done()

	if err := checkToken(stream.Context(), e.opts.Token); err != nil {
		e.log.Warn("refused a worker stream", "peer", peerAddr(stream.Context()), "err", err)
		return err
	}
	hello, err := e.awaitHello(stream)
	if err != nil {
		return err
	}
	w, err := e.register(hello)
	if err != nil {
		return err
	}
	e.wg.Add(2)
	go func() {
		defer e.wg.Done()
		e.recvLoop(stream, w)
	}()
	go func() {
		defer e.wg.Done()
		e.sendLoop(stream, w)
	}()

	timeout := e.opts.HeartbeatTimeout
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-w.done:
			return status.Error(codes.Aborted, "compute: driver dropped this worker: "+w.lostReason())
		case <-stream.Context().Done():
			e.lose(w, fmt.Sprintf("stream broken: the connection closed (%v)", context.Cause(stream.Context())))
		case <-timer.C:
			idle := time.Since(time.Unix(0, w.lastSeen.Load()))
			if idle < timeout {
				timer.Reset(timeout - idle)
				continue
			}
			e.lose(w, fmt.Sprintf("missed heartbeats: no message for %v (heartbeat timeout %v); the worker is hung or unreachable",
				idle.Round(time.Millisecond), timeout))
		}
	}
}

// awaitHello receives the stream's first message, which must be a Hello,
// within the heartbeat timeout.
func (e *Endpoint) awaitHello(stream computepb.Driver_ConnectServer) (*computepb.Hello, error) {
	type first struct {
		m   *computepb.WorkerMessage
		err error
	}
	c := make(chan first, 1)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		m, err := stream.Recv()
		c <- first{m, err}
	}()
	timer := time.NewTimer(e.opts.HeartbeatTimeout)
	defer timer.Stop()
	select {
	case f := <-c:
		if errors.Is(f.err, io.EOF) {
			return nil, status.Error(codes.InvalidArgument, "compute: the worker's stream ended before its Hello")
		}
		if f.err != nil {
			return nil, f.err
		}
		h := f.m.GetHello()
		if h == nil {
			return nil, status.Errorf(codes.InvalidArgument, "compute: the first message of a worker must be Hello, got %T", f.m.GetMsg())
		}
		return h, nil
	case <-timer.C:
		return nil, status.Errorf(codes.DeadlineExceeded, "compute: no Hello within %v", e.opts.HeartbeatTimeout)
	case <-stream.Context().Done():
		return nil, status.FromContextError(stream.Context().Err()).Err()
	}
}

// register checks a Hello and makes its worker known: it queues Welcome
// and the WorkerAdded event.
func (e *Endpoint) register(h *computepb.Hello) (*workerConn, error) {
	var errs []error
	if err := validateID("worker", h.GetWorkerId()); err != nil {
		errs = append(errs, err)
	}
	if h.GetSlots() == 0 {
		errs = append(errs, fmt.Errorf("worker %q has 0 slots", h.GetWorkerId()))
	}
	if e.opts.App != "" && h.GetApp() != e.opts.App {
		errs = append(errs, fmt.Errorf("worker %q belongs to application %q, this driver runs %q", h.GetWorkerId(), h.GetApp(), e.opts.App))
	}
	if err := errors.Join(errs...); err != nil {
		e.log.Warn("refused a worker", "worker", h.GetWorkerId(), "err", err)
		return nil, status.Error(codes.InvalidArgument, "compute: "+err.Error())
	}
	w := &workerConn{
		info: WorkerInfo{ID: h.GetWorkerId(), Node: h.GetNodeAddr(), ShuffleAddr: cmp.Or(h.GetShuffleAddr(), h.GetNodeAddr()), Pid: int(h.GetPid()), Slots: int(h.GetSlots())},
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	w.lastSeen.Store(time.Now().UnixNano())

	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.closed || e.draining:
		return nil, status.Error(codes.Unavailable, "compute: the driver is shutting down")
	case e.workers[w.info.ID] != nil:
		return nil, status.Errorf(codes.AlreadyExists, "compute: a worker %q is already connected", w.info.ID)
	}
	e.workers[w.info.ID] = w
	w.enqueue(&computepb.DriverMessage{Msg: &computepb.DriverMessage_Welcome{Welcome: &computepb.Welcome{}}})
	e.queue.push(Event{Kind: WorkerAdded, Worker: w.info})
	e.log.Info("worker added", "worker", w.info.ID, "node", w.info.Node, "pid", w.info.Pid, "slots", w.info.Slots)
	return w, nil
}

// recvLoop receives the worker's messages until its stream ends.
func (e *Endpoint) recvLoop(stream computepb.Driver_ConnectServer, w *workerConn) {
	for {
		m, err := stream.Recv()
		if err != nil {
			e.lose(w, e.recvErrReason(err))
			return
		}
		w.lastSeen.Store(time.Now().UnixNano())
		switch msg := m.GetMsg().(type) {
		case *computepb.WorkerMessage_TaskUpdate:
			e.deliver(w, msg.TaskUpdate)
		case *computepb.WorkerMessage_Heartbeat:
		default:
			e.lose(w, fmt.Sprintf("protocol error: unexpected %T after Hello", msg))
			return
		}
	}
}

func (e *Endpoint) recvErrReason(err error) string {
	if errors.Is(err, io.EOF) {
		e.mu.Lock()
		draining := e.draining
		e.mu.Unlock()
		if draining {
			return "shut down by the driver"
		}
		return "the worker closed its stream"
	}
	if s, ok := status.FromError(err); ok {
		if s.Code() == codes.Canceled {
			return "stream broken: the connection closed (the worker process died, or its machine is unreachable)"
		}
		return fmt.Sprintf("stream broken: %s", s.Message())
	}
	return fmt.Sprintf("stream broken: %v", err)
}

// sendLoop sends what Run, Kill and Shutdown queued, in order, and a
// Heartbeat every HeartbeatInterval. Heartbeats start once the first
// batch, which holds the Welcome, is sent: the worker expects the Welcome
// first.
func (e *Endpoint) sendLoop(stream computepb.Driver_ConnectServer, w *workerConn) {
	heartbeat := []*computepb.DriverMessage{{Msg: &computepb.DriverMessage_Heartbeat{Heartbeat: &computepb.Heartbeat{}}}}
	var ticks <-chan time.Time // nil until the Welcome is sent
	for {
		var out []*computepb.DriverMessage
		select {
		case <-w.done:
			return
		case <-w.wake:
			out = w.takeOut()
			if ticks == nil {
				ticker := time.NewTicker(e.opts.HeartbeatInterval)
				defer ticker.Stop()
				ticks = ticker.C
			}
		case <-ticks:
			out = heartbeat
		}
		for _, m := range out {
			if err := stream.Send(m); err != nil {
				e.lose(w, fmt.Sprintf("send failed: %v", err))
				return
			}
		}
	}
}

// deliver queues a task update, unless the worker is lost already.
func (e *Endpoint) deliver(w *workerConn, u *computepb.TaskUpdate) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.lost {
		e.queue.push(Event{Kind: TaskUpdate, Worker: w.info, Update: u})
	}
}

// lose declares a worker lost, once: it is forgotten, WorkerLost is
// queued, and its handler returns, which cuts its stream.
func (e *Endpoint) lose(w *workerConn, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lost {
		return
	}
	w.lost, w.reason, w.out = true, reason, nil
	close(w.done)
	if e.workers[w.info.ID] == w {
		delete(e.workers, w.info.ID)
	}
	e.queue.push(Event{Kind: WorkerLost, Worker: w.info, Reason: reason})
	e.log.Info("worker lost", "worker", w.info.ID, "node", w.info.Node, "pid", w.info.Pid, "reason", reason)
}

func (w *workerConn) enqueue(m *computepb.DriverMessage) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.lost {
		return fmt.Errorf("%w: %q was lost: %s", ErrWorkerGone, w.info.ID, w.reason)
	}
	w.out = append(w.out, m)
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

func (w *workerConn) takeOut() []*computepb.DriverMessage {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.out
	w.out = nil
	return out
}

func (w *workerConn) lostReason() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reason
}
