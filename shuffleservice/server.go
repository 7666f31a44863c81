package shuffleservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/dgraph-io/ristretto/v2"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"shoal/blockstore"
	"shoal/internal/catalogdb"
	"shoal/internal/pki"
	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/launcher"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// maxTTL bounds an application's TTL.
const maxTTL = 365 * 24 * time.Hour

// Server is a node service: it owns the map outputs written in its local
// directories, records their commits in its catalogue and serves their
// blocks; and it holds the cached partitions of its applications in its
// block store. See doc.go for the protocol and the lock order.
type Server struct {
	shufflepb.UnimplementedShuffleServer

	opts   Options
	log    *slog.Logger
	layout shuffle.Layout
	cat    *catalog
	cache  *ristretto.Cache[uint64, []uint64]
	blocks *blockstore.Store
	// putSem bounds the bytes of PutBlock calls being received
	// (BlockBytesInFlight).
	putSem *semaphore.Weighted
	prom   *promMetrics // nil without Options.Registry
	adm    *admission
	// tls is the node's identity (Options.TLSDir); nil: plain TCP.
	tls *pki.Identity
	// ckpt holds the checkpoint partitions handed to the node and
	// uploads them (uploader.go).
	ckpt *uploader
	// launch starts and supervises the workers of applications, from
	// its binary cache (workers.go).
	launch *launcher.Launcher
	// dirIndex maps a local directory to its index in Dirs; read-only.
	dirIndex map[string]int

	// catMu orders catalogue mutations against removals and Close:
	// registrations and commits hold it shared, RemoveShuffle, RemoveApp,
	// expiry and Close hold it exclusively. closed is guarded by it.
	catMu  sync.RWMutex
	closed bool
	// stripes serialise commits of the same (app, shuffle, map) and
	// registrations of the same app. A goroutine holds at most one.
	stripes [64]sync.Mutex
	// mu guards the in-memory state below. Never held across I/O.
	mu          sync.RWMutex
	apps        map[string]*appState
	nOutputs    int
	bytesOnDisk int64
	// dirOutputBytes[i] is the bytes of committed outputs in Dirs[i].
	dirOutputBytes []int64

	isClosed   atomic.Bool
	nextSerial atomic.Uint64
	trashSeq   atomic.Uint64
	bufs       sync.Pool // *[]byte read buffers of Fetch
	streams    streamSlots

	janitorStop chan struct{}
	janitorDone chan struct{}
	closeOnce   sync.Once
	closeErr    error

	grpcMu   sync.Mutex
	grpc     *grpc.Server
	stopping bool // Shutdown was called: Serve returns at once
	addr     string

	m counters
}

// appState is an application in memory.
type appState struct {
	ttl        time.Duration
	registered time.Time
	token      tokenSum     // bound at registration (admission.go); guarded by Server.mu
	lastBeat   atomic.Int64 // unix nanoseconds of the last sign of life
	workers    map[string]workerRecord
	outputs    map[outputKey]*output
}

func (a *appState) touch(now time.Time) { a.lastBeat.Store(now.UnixNano()) }

func (a *appState) expired(now time.Time) bool {
	return now.Sub(time.Unix(0, a.lastBeat.Load())) > a.ttl
}

type outputKey struct{ shuffle, mapID uint32 }

// output is a committed map output. Immutable once installed.
type output struct {
	pb *shufflepb.MapOutput
	// serial is unique among every output installed by this process; it
	// keys the index cache, so an entry can never describe another
	// incarnation of the same (app, shuffle, map, attempt).
	serial uint64
	size   int64 // bytes on disk, index file included
}

func (o *output) partitions() int { return len(o.pb.Lengths) }

type counters struct {
	blocksServed, bytesServed, fetchRequests atomic.Uint64
	cacheHits, cacheMisses                   atomic.Uint64
	commits, reused, replaced                atomic.Uint64
	expired, corrupt                         atomic.Uint64
	blockPuts, blockBytesIn, blockBytesOut   atomic.Uint64
}

// Metrics is a snapshot of a node's state and counters.
type Metrics struct {
	Apps             int
	MapOutputs       int
	BytesOnDisk      int64 // committed data and index files
	IndexCacheHits   uint64
	IndexCacheMisses uint64
	FetchRequests    uint64
	BlocksServed     uint64
	BytesServed      uint64
	Commits          uint64 // outputs installed (first commits and replacements)
	CommitsReused    uint64 // commits answered with an earlier attempt's output
	CommitsReplaced  uint64 // outputs replaced by a higher epoch
	AppsExpired      uint64
	CorruptReads     uint64 // fetches stopped by corrupt files

	// Blocks is the block store's snapshot: memory and disk use, hits,
	// evictions. Its MemoryBytes never exceeds BlockMemoryLimit.
	Blocks           blockstore.Metrics
	BlockMemoryLimit int64  // Options.CacheBytes
	BlockPuts        uint64 // PutBlock calls that succeeded (a MemorySer block that did not fit, held at None, included)
	BlockBytesIn     uint64 // bytes of blocks received by those puts
	BlockBytesOut    uint64 // bytes of blocks sent by GetBlock

	// Checkpoints is the checkpoint uploader's snapshot.
	Checkpoints UploaderMetrics

	// Cluster mode: the worker processes the node runs, the binaries it
	// caches, the calls refused for want of the cluster secret.
	Workers      int
	Binaries     int
	RefusedCalls uint64
}

// Open opens the node service on opts.Dirs: it loads the catalogue, opens
// the block store on it, sweeps what is not committed from the
// directories and starts the TTL janitor. It does not listen; see Serve.
func Open(opts Options) (*Server, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.Dirs = slices.Clone(opts.Dirs)
	log := opts.Logger.With("component", "shuffle")
	var id *pki.Identity
	if opts.TLSDir != "" {
		var err error
		if id, err = pki.LoadDir(opts.TLSDir); err != nil {
			return nil, fmt.Errorf("shuffle: the node's certificate (--tls-dir): %w", err)
		}
		if !id.CanServe() {
			return nil, fmt.Errorf("shuffle: the certificate in --tls-dir %s (%q) is a client's, which no client accepts from a node: give the node one made by shoal certs node", opts.TLSDir, id.Name())
		}
		// The workers, in directories of their own, are given it.
		if opts.TLSDir, err = filepath.Abs(opts.TLSDir); err != nil {
			return nil, fmt.Errorf("shuffle: --tls-dir: %w", err)
		}
	}
	for _, d := range opts.Dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("shuffle: create local directory: %w", err)
		}
	}
	cat, err := openCatalog(opts.CatalogFS, filepath.Join(opts.Dirs[0], catalogDirName), opts.Dirs, log)
	if err != nil {
		return nil, err
	}
	if err := catalogdb.BindName(cat.db, filepath.Join(opts.Dirs[0], catalogDirName), opts.Name, "shuffle"); err != nil {
		cat.close()
		var ne *catalogdb.NameError
		if errors.As(err, &ne) {
			return nil, fmt.Errorf("%w: %w", shuffle.ErrInvalidArgument, err)
		}
		return nil, err
	}
	contents, err := cat.load(log)
	if err != nil {
		cat.close()
		return nil, err
	}
	// The block store keeps its records in the same database; it is opened
	// before the sweep, so that it has checked its catalogued files.
	blocks, err := blockstore.Open(blockstore.Options{
		Dirs:        opts.Dirs,
		MemoryBytes: opts.CacheBytes,
		Logger:      opts.Logger,
		DB:          cat.db,
	})
	if err != nil {
		cat.close()
		return nil, fmt.Errorf("shuffle: open the block store: %w", err)
	}
	counters := opts.IndexCacheBytes / 64
	cache, err := ristretto.NewCache(&ristretto.Config[uint64, []uint64]{
		NumCounters:        max(counters, 1000),
		MaxCost:            max(opts.IndexCacheBytes, 1),
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		blocks.Close()
		cat.close()
		return nil, fmt.Errorf("shuffle: index cache: %w", err)
	}
	s := &Server{
		opts:           opts,
		log:            log,
		layout:         shuffle.Layout{Dirs: opts.Dirs},
		cat:            cat,
		cache:          cache,
		blocks:         blocks,
		putSem:         semaphore.NewWeighted(opts.BlockBytesInFlight),
		adm:            newAdmission(opts.ClusterSecret),
		tls:            id,
		dirIndex:       make(map[string]int, len(opts.Dirs)),
		apps:           map[string]*appState{},
		dirOutputBytes: make([]int64, len(opts.Dirs)),
		addr:           opts.Addr,
		janitorStop:    make(chan struct{}),
		janitorDone:    make(chan struct{}),
	}
	for i, d := range opts.Dirs {
		s.dirIndex[d] = i
	}
	if err := s.recover(contents); err != nil {
		cache.Close()
		blocks.Close()
		cat.close()
		return nil, err
	}
	apps := map[string]bool{}
	for name := range s.apps {
		apps[name] = true
	}
	s.ckpt, err = openUploader(uploaderOptions{
		dir:        filepath.Join(opts.Dirs[0], ckptDirName),
		store:      opts.CheckpointDir,
		open:       opts.openCheckpointStore,
		uploads:    opts.CheckpointUploads,
		queueBytes: opts.CheckpointQueueBytes,
		copyBytes:  opts.CheckpointCopyBytes,
		putTimeout: opts.CheckpointPutTimeout,
		maxBackoff: opts.CheckpointMaxBackoff,
	}, cat.db, log, apps)
	if err != nil {
		cache.Close()
		blocks.Close()
		cat.close()
		return nil, err
	}
	s.launch, err = launcher.Open(launcher.Options{
		Dir:            opts.Dirs[0],
		NodeName:       opts.Name,
		ClusterSecret:  opts.ClusterSecret,
		TLSDir:         opts.TLSDir,
		MaxBinaryBytes: opts.MaxBinaryBytes,
		MaxBinaries:    opts.MaxBinaries,
		Started:        s.workerStarted,
		Logger:         opts.Logger,
	})
	if err != nil {
		s.ckpt.close()
		cache.Close()
		blocks.Close()
		cat.close()
		return nil, err
	}
	if opts.Registry != nil {
		if s.prom, err = newPromMetrics(s, opts.Registry); err != nil {
			s.launch.Close()
			s.ckpt.close()
			cache.Close()
			blocks.Close()
			cat.close()
			return nil, fmt.Errorf("shuffle: metrics: %w", err)
		}
	}
	go s.janitor()
	bm := blocks.Metrics()
	s.log.Info("node service open", "name", opts.Name, "dirs", opts.Dirs, "admission", opts.ClusterSecret != "", "tls", tlsSummary(id), "apps", len(s.apps), "map_outputs", s.nOutputs,
		"disk_blocks", bm.DiskBlocks, "cache_bytes", opts.CacheBytes)
	return s, nil
}

// Layout returns the layout of the node's files.
func (s *Server) Layout() shuffle.Layout { return s.layout }

// Serve serves the Shuffle gRPC service on lis until Shutdown or Close,
// and then returns nil. Call it at most once. Serve called after Shutdown
// or Close (a stop racing the start) closes lis and returns nil at once.
func (s *Server) Serve(lis net.Listener) error {
	var creds []grpc.ServerOption
	if s.tls != nil {
		creds = append(creds, grpc.Creds(s.tls.ServerCredentials(s.refusedTLS)))
	}
	gs := grpc.NewServer(append(creds,
		grpc.MaxRecvMsgSize(nodewire.MaxMessageSize),
		grpc.MaxSendMsgSize(nodewire.MaxMessageSize),
		grpc.ChainUnaryInterceptor(s.metricsUnary, s.authUnary, s.recoverUnary),
		grpc.ChainStreamInterceptor(s.metricsStream, s.authStream, s.recoverStream),
		// The pings the node accepts: its clients' keepalive (nodewire).
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             nodewire.KeepaliveMinTime,
			PermitWithoutStream: true,
		}),
	)...)
	shufflepb.RegisterShuffleServer(gs, s)
	s.grpcMu.Lock()
	switch {
	case s.isClosed.Load() || s.stopping:
		s.grpcMu.Unlock()
		lis.Close()
		return nil
	case s.grpc != nil:
		s.grpcMu.Unlock()
		return fmt.Errorf("shuffle: Serve called twice")
	}
	s.grpc = gs
	if s.addr == "" {
		s.addr = lis.Addr().String()
	}
	s.grpcMu.Unlock()
	return gs.Serve(lis)
}

// Shutdown stops serving: it stops accepting calls and waits for the
// running ones, until ctx is done; then it cuts the remaining ones. It
// does not Close the server.
func (s *Server) Shutdown(ctx context.Context) error {
	s.grpcMu.Lock()
	gs := s.grpc
	s.stopping = true
	s.grpcMu.Unlock()
	if gs == nil {
		return nil
	}
	done := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		gs.Stop()
		<-done
		return ctx.Err()
	}
}

// Close stops serving (abruptly; see Shutdown), stops the janitor, stops
// every worker the node started (SIGTERM, SIGKILL 2 s later, waited for),
// closes the block store (dropping its memory tier) and then the
// catalogue. Calls after the first return the first's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.isClosed.Store(true)
		s.grpcMu.Lock()
		gs := s.grpc
		s.grpcMu.Unlock()
		if gs != nil {
			gs.Stop()
		}
		close(s.janitorStop)
		<-s.janitorDone
		lerr := s.launch.Close()
		uerr := s.ckpt.close()
		s.catMu.Lock()
		s.closed = true
		// The store writes the shared catalogue only while it is open:
		// closing it first means nothing writes the database once closed.
		s.closeErr = errors.Join(lerr, uerr, s.blocks.Close(), s.cat.close())
		s.catMu.Unlock()
		s.cache.Close()
		s.log.Info("node service closed")
	})
	return s.closeErr
}

// Metrics returns a snapshot of the node's state and counters.
func (s *Server) Metrics() Metrics {
	s.mu.RLock()
	m := Metrics{Apps: len(s.apps), MapOutputs: s.nOutputs, BytesOnDisk: s.bytesOnDisk}
	s.mu.RUnlock()
	m.IndexCacheHits = s.m.cacheHits.Load()
	m.IndexCacheMisses = s.m.cacheMisses.Load()
	m.FetchRequests = s.m.fetchRequests.Load()
	m.BlocksServed = s.m.blocksServed.Load()
	m.BytesServed = s.m.bytesServed.Load()
	m.Commits = s.m.commits.Load()
	m.CommitsReused = s.m.reused.Load()
	m.CommitsReplaced = s.m.replaced.Load()
	m.AppsExpired = s.m.expired.Load()
	m.CorruptReads = s.m.corrupt.Load()
	m.Blocks = s.blocks.Metrics()
	m.BlockMemoryLimit = s.opts.CacheBytes
	m.BlockPuts = s.m.blockPuts.Load()
	m.BlockBytesIn = s.m.blockBytesIn.Load()
	m.BlockBytesOut = s.m.blockBytesOut.Load()
	m.Workers = s.launch.Live()
	m.Binaries = len(s.launch.Binaries())
	m.RefusedCalls = s.adm.refusals.Load()
	m.Checkpoints = s.ckpt.metrics()
	return m
}

// Committer returns an in-process shuffle.Committer that commits straight into s,
// without gRPC.
func (s *Server) Committer() shuffle.Committer { return serverCommitter{s} }

type serverCommitter struct{ s *Server }

func (c serverCommitter) CommitMapOutput(ctx context.Context, app string, out *shufflepb.MapOutput) (*shufflepb.MapOutput, error) {
	committed, _, err := c.s.commit(ctx, app, out)
	if err != nil {
		return nil, err
	}
	return cloneOutput(committed), nil
}

// recoverUnary and recoverStream turn a panic in a handler into an
// Internal error. The handlers are written not to panic on any input; this
// is defence in depth, so one bug does not take every map output down.
func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
	defer s.recoverPanic(info.FullMethod, &err)
	return h(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) (err error) {
	defer s.recoverPanic(info.FullMethod, &err)
	return h(srv, ss)
}

func (s *Server) recoverPanic(method string, err *error) {
	if p := recover(); p != nil {
		s.log.Error("panic in handler", "method", method, "panic", p, "stack", string(debug.Stack()))
		*err = status.Errorf(codes.Internal, "shuffle: internal error in %s: panic: %v (a bug in the node service; please report it with the node's log)", method, p)
	}
}

// stripe returns the lock serialising commits of (app, shuffle, mapID).
func (s *Server) stripe(app string, shuffle, mapID uint32) *sync.Mutex {
	h := xxhash.Sum64String(app) ^ (uint64(shuffle)<<32|uint64(mapID))*0x9e3779b97f4a7c15
	return &s.stripes[h%uint64(len(s.stripes))]
}

// app returns the application's state or shuffle.ErrUnknownApp.
func (s *Server) app(name string) (*appState, error) {
	s.mu.RLock()
	a := s.apps[name]
	s.mu.RUnlock()
	if a == nil {
		return nil, fmt.Errorf("%w: %q is not registered on this node (register it first; it may have expired after missing heartbeats for its TTL)", shuffle.ErrUnknownApp, name)
	}
	return a, nil
}

// lockCatalog takes catMu shared and fails if the server is closed.
func (s *Server) lockCatalog() error {
	s.catMu.RLock()
	if s.closed {
		s.catMu.RUnlock()
		return shuffle.ErrClosed
	}
	return nil
}

// RegisterApp makes an application known, bound to the application
// token the call carries, or refreshes its TTL.
func (s *Server) RegisterApp(ctx context.Context, req *shufflepb.RegisterAppRequest) (*shufflepb.RegisterAppResponse, error) {
	token, ok := tokenFrom(ctx)
	err := s.registerApp(req.GetApp(), req.GetTtlMs(), token, ok)
	if errors.Is(err, shuffle.ErrUnauthenticated) || errors.Is(err, shuffle.ErrPermissionDenied) {
		msg := "application token required"
		if errors.Is(err, shuffle.ErrPermissionDenied) {
			msg = "application registered with another token"
		}
		s.logRefusal(ctx, shufflepb.Shuffle_RegisterApp_FullMethodName, msg)
	}
	return &shufflepb.RegisterAppResponse{}, nodewire.ToStatus(err)
}

// registerApp registers name bound to token (hasToken: the call carried
// one), or refreshes it if it is bound to that token. An application
// registered before tokens (a version-1 catalogue record) is bound now.
func (s *Server) registerApp(name string, ttlMs uint64, token tokenSum, hasToken bool) error {
	if err := shuffle.ValidateID("application", name); err != nil {
		return err
	}
	if !hasToken {
		return errNoToken(name)
	}
	ttl := s.opts.AppTTL
	if ttlMs != 0 {
		if ttlMs > uint64(maxTTL/time.Millisecond) {
			return fmt.Errorf("%w: application %q TTL of %d ms exceeds %v", shuffle.ErrInvalidArgument, name, ttlMs, maxTTL)
		}
		ttl = time.Duration(ttlMs) * time.Millisecond
	}
	if err := s.lockCatalog(); err != nil {
		return err
	}
	defer s.catMu.RUnlock()
	l := s.stripe(name, 0, 0)
	l.Lock()
	defer l.Unlock()
	now := time.Now()
	s.mu.RLock()
	a := s.apps[name]
	var bound tokenSum
	if a != nil {
		bound = a.token
	}
	s.mu.RUnlock()
	if bound.bound() && !bound.matches(token) {
		return errNotYours(name)
	}
	if a != nil && a.ttl == ttl && bound.bound() {
		a.touch(now)
		return nil
	}
	rec := appRecord{ttl: ttl, registered: now, token: token}
	if a != nil {
		rec.registered = a.registered
	}
	for _, d := range s.layout.AppDirs(name) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("shuffle: register application %q: %w", name, err)
		}
	}
	if err := s.cat.putApp(name, rec); err != nil {
		return err
	}
	s.mu.Lock()
	if a = s.apps[name]; a == nil {
		a = &appState{registered: now, workers: map[string]workerRecord{}, outputs: map[outputKey]*output{}}
		s.apps[name] = a
		s.log.Info("application registered", "app", name, "ttl", ttl)
	}
	a.ttl = ttl
	a.token = token
	a.touch(now)
	s.mu.Unlock()
	return nil
}

// RegisterWorker records a worker of a registered application and returns
// the node's directories.
func (s *Server) RegisterWorker(ctx context.Context, req *shufflepb.RegisterWorkerRequest) (*shufflepb.RegisterWorkerResponse, error) {
	// A worker the node started itself is no sign of its application's
	// life: restarted forever, it would keep an application whose driver
	// is gone (doc.go, "Workers started by the node").
	touch := !s.launch.Started(req.GetApp(), req.GetWorker())
	if err := s.recordWorker(req.GetApp(), req.GetWorker(), req.GetPid(), touch); err != nil {
		return nil, nodewire.ToStatus(err)
	}
	return &shufflepb.RegisterWorkerResponse{Dirs: s.layout.Dirs}, nil
}

// recordWorker records a worker of app in the catalogue; with touch, as
// a sign of the application's life.
func (s *Server) recordWorker(app, worker string, pid int64, touch bool) error {
	if err := errors.Join(shuffle.ValidateID("application", app), shuffle.ValidateID("worker", worker)); err != nil {
		return err
	}
	if err := s.lockCatalog(); err != nil {
		return err
	}
	defer s.catMu.RUnlock()
	a, err := s.app(app)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, d := range s.layout.AppDirs(app) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("shuffle: register worker %q of %q: %w", worker, app, err)
		}
	}
	rec := workerRecord{pid: pid, registered: now}
	if err := s.cat.putWorker(app, worker, rec); err != nil {
		return err
	}
	s.mu.Lock()
	a.workers[worker] = rec
	s.mu.Unlock()
	if touch {
		a.touch(now)
	}
	s.log.Debug("worker registered", "app", app, "worker", worker, "pid", pid)
	return nil
}

// Heartbeat keeps an application alive.
func (s *Server) Heartbeat(ctx context.Context, req *shufflepb.HeartbeatRequest) (*shufflepb.HeartbeatResponse, error) {
	if err := shuffle.ValidateID("application", req.GetApp()); err != nil {
		return nil, nodewire.ToStatus(err)
	}
	a, err := s.app(req.GetApp())
	if err != nil {
		return nil, nodewire.ToStatus(err)
	}
	a.touch(time.Now())
	return &shufflepb.HeartbeatResponse{}, nil
}

// RemoveShuffle deletes a shuffle's catalogue entries and files.
func (s *Server) RemoveShuffle(ctx context.Context, req *shufflepb.RemoveShuffleRequest) (*shufflepb.RemoveShuffleResponse, error) {
	if err := s.removeShuffle(req.GetApp(), req.GetShuffle()); err != nil {
		return nil, nodewire.ToStatus(err)
	}
	return &shufflepb.RemoveShuffleResponse{}, nil
}

func (s *Server) removeShuffle(app string, shuffleID uint32) error {
	if err := shuffle.ValidateID("application", app); err != nil {
		return err
	}
	s.catMu.Lock()
	if s.closed {
		s.catMu.Unlock()
		return shuffle.ErrClosed
	}
	a, err := s.app(app)
	if err != nil {
		s.catMu.Unlock()
		return err
	}
	var serials []uint64
	s.mu.Lock()
	for k, o := range a.outputs {
		if k.shuffle == shuffleID {
			delete(a.outputs, k)
			s.countOutputLocked(app, k, o, -1)
			serials = append(serials, o.serial)
		}
	}
	s.mu.Unlock()
	err = s.cat.deleteShuffle(app, shuffleID)
	trash := s.trash(s.layout.ShuffleDirs(app, shuffleID))
	s.catMu.Unlock()

	s.emptyTrash(trash)
	for _, k := range serials {
		s.cache.Del(k)
	}
	s.log.Info("shuffle removed", "app", app, "shuffle", shuffleID, "map_outputs", len(serials))
	return err
}

// RemoveApp deletes everything the node holds for an application, and
// stops the workers the node started for it.
func (s *Server) RemoveApp(ctx context.Context, req *shufflepb.RemoveAppRequest) (*shufflepb.RemoveAppResponse, error) {
	if err := shuffle.ValidateID("application", req.GetApp()); err != nil {
		return nil, nodewire.ToStatus(err)
	}
	if _, err := s.removeApp(req.GetApp(), time.Time{}); err != nil {
		return nil, nodewire.ToStatus(err)
	}
	return &shufflepb.RemoveAppResponse{}, nil
}

// removeApp removes an application, or, if expiredAt is not zero, only if
// it has expired at that time. It reports whether it removed it.
func (s *Server) removeApp(name string, expiredAt time.Time) (bool, error) {
	s.catMu.Lock()
	if s.closed {
		s.catMu.Unlock()
		return false, shuffle.ErrClosed
	}
	s.mu.Lock()
	a := s.apps[name]
	if a == nil {
		s.mu.Unlock()
		s.catMu.Unlock()
		if !expiredAt.IsZero() {
			return false, nil
		}
		return false, fmt.Errorf("%w: %q is not registered on this node (nothing to remove)", shuffle.ErrUnknownApp, name)
	}
	if !expiredAt.IsZero() && !a.expired(expiredAt) {
		s.mu.Unlock()
		s.catMu.Unlock()
		return false, nil
	}
	delete(s.apps, name)
	if !expiredAt.IsZero() {
		s.m.expired.Add(1)
	}
	serials := make([]uint64, 0, len(a.outputs))
	for k, o := range a.outputs {
		s.countOutputLocked(name, k, o, -1)
		serials = append(serials, o.serial)
	}
	// A fetch that looked the app up before now finds no outputs.
	clear(a.outputs)
	s.mu.Unlock()
	// The block store forgets the app's blocks (memory freed, records
	// deleted, unsynced) before its files move with DIR/APP to the trash,
	// so that a GetBlock reading one of them then misses instead of
	// finding a catalogued file gone (which it would report as corrupt);
	// and before the app's own deletion, whose sync makes both durable.
	nBlocks, berr := s.blocks.DropApp(name)
	nCkpt, cerr := s.ckpt.dropApp(name)
	berr = errors.Join(berr, cerr)
	err := s.cat.deleteApp(name)
	trash := s.trash(s.layout.AppDirs(name))
	// Its workers are detached under catMu, so that a StartWorkers after
	// the removal starts them anew, and stopped (waited for) without it.
	workers := s.launch.Detach(name)
	s.catMu.Unlock()

	workers.Wait()
	s.emptyTrash(trash)
	for _, k := range serials {
		s.cache.Del(k)
	}
	s.log.Info("application removed", "app", name, "map_outputs", len(serials), "blocks", nBlocks, "checkpoint_partitions", nCkpt, "expired", !expiredAt.IsZero())
	return true, errors.Join(err, berr)
}

// trash moves directories out of the way, to DIR/.trash, so that they
// vanish atomically under catMu and can be deleted without holding it.
// A directory that cannot be moved is deleted in place.
func (s *Server) trash(dirs []string) []string {
	var out []string
	for i, d := range dirs {
		root := filepath.Join(s.layout.Dirs[i], ".trash")
		if err := os.MkdirAll(root, 0o755); err != nil {
			s.removeAll(d)
			continue
		}
		to := filepath.Join(root, fmt.Sprintf("%d-%d", os.Getpid(), s.trashSeq.Add(1)))
		switch err := os.Rename(d, to); {
		case err == nil:
			out = append(out, to)
		case errors.Is(err, os.ErrNotExist):
		default:
			s.log.Warn("cannot move directory to trash; deleting in place", "dir", d, "err", err)
			s.removeAll(d)
		}
	}
	return out
}

func (s *Server) emptyTrash(dirs []string) {
	for _, d := range dirs {
		s.removeAll(d)
	}
}

func (s *Server) removeAll(d string) {
	if err := os.RemoveAll(d); err != nil {
		s.log.Warn("cannot delete directory", "dir", d, "err", err)
	}
}

// Status reports what the node holds and has served.
func (s *Server) Status(ctx context.Context, req *shufflepb.StatusRequest) (*shufflepb.StatusResponse, error) {
	m := s.Metrics()
	return &shufflepb.StatusResponse{
		Addr:             s.advertised(),
		Name:             s.opts.Name,
		DirsUsage:        s.dirsUsage(m),
		Workers:          uint64(m.Workers),
		Checkpoints:      m.Checkpoints.pb(),
		Pid:              int64(os.Getpid()),
		Dirs:             s.layout.Dirs,
		Apps:             uint64(m.Apps),
		MapOutputs:       uint64(m.MapOutputs),
		BytesOnDisk:      uint64(max(m.BytesOnDisk, 0)),
		IndexCacheHits:   m.IndexCacheHits,
		IndexCacheMisses: m.IndexCacheMisses,
		PeakRssBytes:     peakRSS(),
		BlocksServed:     m.BlocksServed,
		BytesServed:      m.BytesServed,
		FetchRequests:    m.FetchRequests,
		Blocks: &shufflepb.BlockStoreStatus{
			MemoryBytes:   uint64(max(m.Blocks.MemoryBytes, 0)),
			MemoryLimit:   uint64(m.BlockMemoryLimit),
			MemoryBlocks:  uint64(m.Blocks.MemoryBlocks),
			DiskBytes:     uint64(max(m.Blocks.DiskBytes, 0)),
			DiskBlocks:    uint64(m.Blocks.DiskBlocks),
			MaxBlockBytes: uint64(s.opts.MaxBlockBytes),
			Puts:          m.BlockPuts,
			BytesReceived: m.BlockBytesIn,
			BytesServed:   m.BlockBytesOut,
			Hits:          uint64(m.Blocks.Hits),
			Misses:        uint64(m.Blocks.Misses),
			Evictions:     uint64(m.Blocks.Evictions),
			EvictedToDisk: uint64(m.Blocks.EvictedToDisk),
			NotStored:     uint64(m.Blocks.NotStored),
			SpilledPuts:   uint64(m.Blocks.SpilledPuts),
			Corrupt:       uint64(m.Blocks.Corrupt),
		},
	}, nil
}

// advertised is the node's address as it tells it: Options.Addr, or the
// listener's.
func (s *Server) advertised() string {
	s.grpcMu.Lock()
	defer s.grpcMu.Unlock()
	return s.addr
}

// dirsUsage is what each local directory holds, from counters (m, and the
// block store's in it): no directory is walked.
func (s *Server) dirsUsage(m Metrics) []*shufflepb.DirUsage {
	out := make([]*shufflepb.DirUsage, len(s.layout.Dirs))
	s.mu.RLock()
	for i, d := range s.layout.Dirs {
		out[i] = &shufflepb.DirUsage{Dir: d, MapOutputBytes: uint64(max(s.dirOutputBytes[i], 0))}
	}
	s.mu.RUnlock()
	for i, b := range m.Blocks.DiskBytesByDir {
		if i < len(out) {
			out[i].BlockBytes = uint64(max(b, 0))
		}
	}
	return out
}

// countOutputLocked adds (sign 1) or removes (-1) output o of app, key k,
// from the node's counters. s.mu is held.
func (s *Server) countOutputLocked(app string, k outputKey, o *output, sign int64) {
	s.nOutputs += int(sign)
	s.bytesOnDisk += sign * o.size
	s.dirOutputBytes[s.dirIndex[s.layout.Dir(app, k.shuffle, k.mapID)]] += sign * o.size
}

// peakRSS is the process's peak resident set size in bytes (Linux reports
// ru_maxrss in KiB).
func peakRSS() uint64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return uint64(ru.Maxrss) * 1024
}
