package launcher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Defaults and bounds of Options.
const (
	DefaultMaxBinaryBytes = 512 << 20
	DefaultMaxBinaries    = 8
	// MaxWorkers bounds the workers of one application on one node.
	MaxWorkers = 64
)

// Supervision: see doc.go, "Supervision".
const (
	minBackoff = 200 * time.Millisecond
	maxBackoff = 10 * time.Second
	// stableRun: a process that ran this long resets the backoff.
	stableRun = 30 * time.Second
	// startWindow: a process that exits sooner crashed at start;
	// startFailures of those in a row fail the slot.
	startWindow   = 2 * time.Second
	startFailures = 3
	// stopGrace is how long a worker has between SIGTERM and SIGKILL
	// when its application is removed.
	stopGrace = 2 * time.Second
	// textBusyRetries and textBusyPause: starting a binary that is busy
	// (ETXTBSY) is tried again, this many times, after this pause.
	textBusyRetries = 20
	textBusyPause   = 10 * time.Millisecond
)

// State is a worker slot's state.
type State int

const (
	// Running: the slot's process runs.
	Running State = iota + 1
	// Backoff: it exited; the slot starts another after a pause.
	Backoff
	// Failed: its processes crashed at start too often; the slot is
	// given up.
	Failed
)

func (s State) String() string {
	switch s {
	case Running:
		return "running"
	case Backoff:
		return "backoff"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Options configure a Launcher.
type Options struct {
	// Dir is where the launcher keeps its files: Dir/.binaries (the
	// binary cache) and Dir/.workers (the workers' working directories).
	// The node's first local directory. Required.
	Dir string
	// NodeName names the workers: w-NAME-K. Required.
	NodeName string
	// ClusterSecret, if set, is given to every worker
	// (SHOAL_CLUSTER_SECRET) and removed from their output before it is
	// logged or kept.
	ClusterSecret string
	// TLSDir, if set, is the node's identity directory, given to every
	// worker (SHOAL_TLS_DIR): the workers present the node's certificate.
	TLSDir string
	// MaxBinaryBytes bounds a binary; default DefaultMaxBinaryBytes.
	MaxBinaryBytes int64
	// MaxBinaries bounds the cache; default DefaultMaxBinaries.
	MaxBinaries int
	// Started, if set, is called (without any launcher lock held) after
	// every worker process starts, with the ID of the one it replaces in
	// its slot ("" for the first): the node records the worker and
	// forgets the one it replaces.
	Started func(app, worker string, pid int, replaces string)
	// Logger receives the launcher's log (component=launcher), the
	// workers' output at debug level. Default: discard.
	Logger *slog.Logger
}

// Launcher starts and supervises the workers of applications from the
// binaries of its cache. Its methods are safe for concurrent use; Close
// stops every worker.
type Launcher struct {
	opts Options
	log  *slog.Logger
	bins *binaries
	work string // Dir/.workers

	// startMu serialises Start: one application's processes are all
	// started before another's.
	startMu sync.Mutex
	// mu guards everything below, the slots included. Never held while
	// a process is started or waited for.
	mu     sync.Mutex
	closed bool
	apps   map[string]*appRun
	seq    uint64 // working directories
}

// appRun is an application's workers on this node.
type appRun struct {
	name    string
	dir     string // its working directory, under Launcher.work
	path    string // the binary
	release func() // of the binary, once every process is gone
	env     []string
	args    []string
	node    string
	nextK   int // the next worker's number
	slots   []*slot
	failure string // why a slot was given up (the first)

	stop chan struct{}  // closed when the application is removed
	wg   sync.WaitGroup // its supervisors
}

// slot is one of an application's workers: a process, and the processes
// that replace it. Guarded by Launcher.mu.
type slot struct {
	id         string
	state      State
	proc       *proc // while Running
	restarts   uint32
	lastExit   string
	stderrTail string
	stopAsked  bool // StopWorker killed the current process
}

// Worker describes a worker slot.
type Worker struct {
	ID    string
	Pid   int // 0 unless Running
	State State
	// Restarts counts the processes started in the slot after the first.
	Restarts uint32
	// LastExit says how the previous process ended ("exit status 2",
	// "signal: killed"); StderrTail is the end of its stderr.
	LastExit   string
	StderrTail string
}

// Open opens a launcher: the binary cache in Dir/.binaries (temporary
// files of a crashed upload are deleted) and an empty Dir/.workers (the
// working directories of a previous node process, whose workers died
// with it, are deleted).
func Open(opts Options) (*Launcher, error) {
	if opts.Dir == "" || opts.NodeName == "" {
		return nil, errors.New("launcher: Options.Dir and Options.NodeName are required")
	}
	if opts.MaxBinaryBytes == 0 {
		opts.MaxBinaryBytes = DefaultMaxBinaryBytes
	}
	if opts.MaxBinaries == 0 {
		opts.MaxBinaries = DefaultMaxBinaries
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log := opts.Logger.With("component", "launcher")
	bins, err := openBinaries(filepath.Join(opts.Dir, ".binaries"), opts.MaxBinaries, opts.MaxBinaryBytes, log)
	if err != nil {
		return nil, err
	}
	work := filepath.Join(opts.Dir, ".workers")
	if err := os.RemoveAll(work); err != nil {
		return nil, fmt.Errorf("launcher: clear the workers' directories: %w", err)
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, fmt.Errorf("launcher: create the workers' directories: %w", err)
	}
	return &Launcher{opts: opts, log: log, bins: bins, work: work, apps: map[string]*appRun{}}, nil
}

// HasBinary reports whether the cache holds the binary of that SHA-256.
func (l *Launcher) HasBinary(digest string) (bool, error) { return l.bins.has(digest) }

// PutBinary receives a binary of size bytes whose SHA-256 is digest from
// data into the cache (doc.go, "Binary cache").
func (l *Launcher) PutBinary(ctx context.Context, digest string, size uint64, data io.Reader) error {
	if l.isClosed() {
		return ErrClosed
	}
	return l.bins.put(ctx, digest, size, data)
}

// Binaries lists the digests the cache holds.
func (l *Launcher) Binaries() []string { return l.bins.list() }

func (l *Launcher) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Spec is what StartWorkers asks for.
type Spec struct {
	App    string
	Binary string // SHA-256 of a cached binary
	// Workers is how many to run, in [1, MaxWorkers].
	Workers int
	Env     []string // checked by CheckEnv
	Args    []string
	// Node is the node's advertised address, the workers' SHOAL_NODE.
	Node string
	// FirstK is the number of the first worker ID if the application
	// has none on this launcher yet: past those the node already
	// recorded for it, so that no ID is reused across node restarts.
	FirstK int
}

// Start starts spec.Workers workers of spec.App and supervises them
// until the application is stopped (Detach) or the launcher closed. If
// the application's workers run already, it returns them as they are
// and starts nothing.
func (l *Launcher) Start(spec Spec) ([]Worker, error) {
	if spec.Workers < 1 || spec.Workers > MaxWorkers {
		return nil, fmt.Errorf("%w: %d workers (give 1 to %d, or 0 for the node's default)", ErrInvalidArgument, spec.Workers, MaxWorkers)
	}
	if err := CheckEnv(spec.Env, spec.Args); err != nil {
		return nil, err
	}
	l.startMu.Lock()
	defer l.startMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, ErrClosed
	}
	if a := l.apps[spec.App]; a != nil {
		ws, _ := l.snapshotLocked(a)
		l.mu.Unlock()
		return ws, nil
	}
	l.seq++
	dir := filepath.Join(l.work, fmt.Sprintf("%d-%s", l.seq, spec.App))
	l.mu.Unlock()

	path, release, err := l.bins.acquire(spec.Binary)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		release()
		return nil, fmt.Errorf("launcher: create the working directory of %s: %w", spec.App, err)
	}
	a := &appRun{
		name: spec.App, dir: dir, path: path, release: release,
		env: slices.Clone(spec.Env), args: slices.Clone(spec.Args), node: spec.Node,
		nextK: max(spec.FirstK, 1), stop: make(chan struct{}),
	}
	a.slots = make([]*slot, spec.Workers)
	procs := make([]*proc, spec.Workers) // nil where the start failed: the slot records why
	for i := range a.slots {
		a.slots[i] = &slot{}
		procs[i], _ = l.spawn(a, a.slots[i])
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		for _, p := range procs {
			if p != nil {
				p.terminate(stopGrace)
			}
		}
		l.cleanup(a)
		return nil, ErrClosed
	}
	l.apps[spec.App] = a
	for i, s := range a.slots {
		a.wg.Add(1)
		go l.supervise(a, s, procs[i])
	}
	ws, _ := l.snapshotLocked(a)
	l.mu.Unlock()
	l.log.Info("workers started", "app", spec.App, "workers", spec.Workers, "sha256", spec.Binary)
	return ws, nil
}

// spawn starts a process in slot s with a new ID. Without l.mu.
func (l *Launcher) spawn(a *appRun, s *slot) (*proc, error) {
	l.mu.Lock()
	id := fmt.Sprintf("w-%s-%d", l.opts.NodeName, a.nextK)
	a.nextK++
	replaces := s.id
	l.mu.Unlock()
	env := workerEnv(a.env, a.name, a.node, id, l.opts.ClusterSecret, l.opts.TLSDir, a.dir, filepath.Join(a.dir, "tmp"))
	spec := procSpec{path: a.path, args: a.args, env: env, dir: a.dir, line: l.outputLine(id), redact: l.redact}
	p, err := startProc(spec)
	// ETXTBSY: a process forked at the moment an upload had its file
	// open for writing holds that descriptor until it execs; it lets go
	// within microseconds.
	for try := 0; errors.Is(err, syscall.ETXTBSY) && try < textBusyRetries; try++ {
		time.Sleep(textBusyPause)
		p, err = startProc(spec)
	}
	l.mu.Lock()
	s.id = id
	s.stopAsked = false
	if err != nil {
		s.state, s.proc = Backoff, nil
		s.lastExit, s.stderrTail = "start: "+err.Error(), ""
	} else {
		s.state, s.proc = Running, p
	}
	l.mu.Unlock()
	if err != nil {
		l.log.Warn("cannot start worker", "app", a.name, "worker", id, "err", err)
		return nil, err
	}
	l.log.Info("worker started", "app", a.name, "worker", id, "pid", p.pid)
	if l.opts.Started != nil {
		l.opts.Started(a.name, id, p.pid, replaces)
	}
	return p, nil
}

// outputLine copies a line of worker id's output to the log.
func (l *Launcher) outputLine(id string) func(stream string, line []byte) {
	return func(stream string, line []byte) {
		if l.log.Enabled(context.Background(), slog.LevelDebug) {
			l.log.Debug(id+": "+string(line), "stream", stream)
		}
	}
}

// redact removes the cluster secret from a line of a worker's output.
func (l *Launcher) redact(line []byte) []byte {
	if l.opts.ClusterSecret == "" {
		return line
	}
	return bytes.ReplaceAll(line, []byte(l.opts.ClusterSecret), []byte("[cluster secret]"))
}

// supervise runs slot s: it waits for its process p (nil if it could not
// be started), then starts another after a backoff, until the
// application stops or the slot fails.
func (l *Launcher) supervise(a *appRun, s *slot, p *proc) {
	defer a.wg.Done()
	backoff := minBackoff
	fastExits := 0
	for {
		var ran time.Duration
		asked := false
		if p != nil {
			select {
			case <-p.done:
			case <-a.stop:
				p.terminate(stopGrace)
				l.exited(a, s, p)
				return
			}
			ran = time.Since(p.start)
			asked = l.exited(a, s, p)
		}
		if !asked {
			if ran < startWindow {
				fastExits++
			} else {
				fastExits = 0
			}
			if fastExits >= startFailures {
				l.fail(a, s)
				return
			}
			if ran >= stableRun {
				backoff = minBackoff
			}
			t := time.NewTimer(backoff)
			select {
			case <-a.stop:
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, maxBackoff)
		}
		select {
		case <-a.stop:
			return
		default:
		}
		l.mu.Lock()
		s.restarts++
		l.mu.Unlock()
		p, _ = l.spawn(a, s) // an error is recorded in the slot
	}
}

// exited records the end of slot s's process p and reports whether
// StopWorker asked for it.
func (l *Launcher) exited(a *appRun, s *slot, p *proc) (asked bool) {
	status := p.exitStatus()
	tail := p.tail.String()
	l.mu.Lock()
	asked = s.stopAsked
	s.stopAsked = false
	s.proc = nil
	s.state = Backoff
	s.lastExit, s.stderrTail = status, tail
	id := s.id
	l.mu.Unlock()
	l.log.Info("worker exited", "app", a.name, "worker", id, "pid", p.pid, "status", status, "ran", time.Since(p.start).Round(time.Millisecond), "stopped", asked)
	return asked
}

// fail gives slot s up.
func (l *Launcher) fail(a *appRun, s *slot) {
	l.mu.Lock()
	s.state = Failed
	msg := fmt.Sprintf("worker %s exited at start %d times: %s; stderr: %s", s.id, startFailures, s.lastExit, s.stderrTail)
	if a.failure == "" {
		a.failure = msg
	}
	l.mu.Unlock()
	l.log.Warn("worker keeps crashing at start; not restarting it", "app", a.name, "worker", s.id, "last_exit", s.lastExit)
}

// Workers returns an application's workers and why the launcher gave up
// on some of them ("" if it did not). An application without workers
// on this node has none.
func (l *Launcher) Workers(app string) ([]Worker, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.apps[app]
	if a == nil {
		return nil, ""
	}
	return l.snapshotLocked(a)
}

func (l *Launcher) snapshotLocked(a *appRun) ([]Worker, string) {
	ws := make([]Worker, len(a.slots))
	for i, s := range a.slots {
		ws[i] = Worker{ID: s.id, State: s.state, Restarts: s.restarts, LastExit: s.lastExit, StderrTail: s.stderrTail}
		if s.proc != nil {
			ws[i].Pid = s.proc.pid
		}
	}
	return ws, a.failure
}

// StopWorker kills worker id of app (SIGKILL, its process group); its
// slot starts a replacement, with a new ID, at once. A worker that has
// exited already is not an error.
func (l *Launcher) StopWorker(app, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.apps[app]; a != nil {
		for _, s := range a.slots {
			if s.id != id {
				continue
			}
			if s.proc != nil {
				s.stopAsked = true
				s.proc.signal(syscall.SIGKILL)
				l.log.Info("stopping worker on request", "app", app, "worker", id, "pid", s.proc.pid)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: %q is not a worker of application %q on this node", ErrUnknownWorker, id, app)
}

// Started reports whether id is a worker the launcher started for app
// and runs (or is about to replace).
func (l *Launcher) Started(app, id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a := l.apps[app]; a != nil {
		for _, s := range a.slots {
			if s.id == id {
				return true
			}
		}
	}
	return false
}

// Live is the number of worker processes running, all applications
// together.
func (l *Launcher) Live() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.apps {
		for _, s := range a.slots {
			if s.proc != nil {
				n++
			}
		}
	}
	return n
}

// Stopping is an application detached from the launcher whose workers
// are being stopped.
type Stopping struct {
	l *Launcher
	a *appRun
}

// Detach takes app's workers from the launcher and starts stopping them
// (SIGTERM, then SIGKILL after 2 s); Wait waits until they are gone. It
// does not block: the node calls it under its catalogue lock, so that a
// StartWorkers after the application's removal starts workers anew. A
// launcher without workers of app returns a Stopping whose Wait returns
// at once.
func (l *Launcher) Detach(app string) Stopping {
	l.mu.Lock()
	a := l.apps[app]
	delete(l.apps, app)
	l.mu.Unlock()
	if a != nil {
		close(a.stop)
	}
	return Stopping{l, a}
}

// Wait waits until the detached application's workers have exited, then
// releases its binary and deletes its working directory.
func (s Stopping) Wait() {
	if s.a == nil {
		return
	}
	s.a.wg.Wait()
	s.l.cleanup(s.a)
	s.l.log.Info("workers stopped", "app", s.a.name)
}

// cleanup releases an application's binary and working directory, once
// its processes are gone.
func (l *Launcher) cleanup(a *appRun) {
	a.release()
	if err := os.RemoveAll(a.dir); err != nil {
		l.log.Warn("cannot delete a working directory", "dir", a.dir, "err", err)
	}
}

// Close stops every worker (as Detach and Wait) and refuses new ones.
// Safe to call at any moment, more than once.
func (l *Launcher) Close() error {
	l.mu.Lock()
	l.closed = true
	apps := make([]*appRun, 0, len(l.apps))
	for _, a := range l.apps {
		apps = append(apps, a)
	}
	clear(l.apps)
	l.mu.Unlock()
	for _, a := range apps {
		close(a.stop)
	}
	for _, a := range apps {
		Stopping{l, a}.Wait()
	}
	return nil
}
