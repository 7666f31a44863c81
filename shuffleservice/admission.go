package shuffleservice

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"shoal/internal/pki"
	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/launcher"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// Admission: with Options.ClusterSecret set, every call must carry the
// secret in its metadata (nodewire.SecretMetadataKey; nodeclient's
// WithClusterSecret sends it). A call without it, or with another value,
// is refused with Unauthenticated before its handler runs. The secret and
// the value presented are never logged: a refusal is logged with the
// method and the caller's address, at most once per refusalLogEvery.

// refusalLogEvery bounds how often refusals are logged.
const refusalLogEvery = 10 * time.Second

// admission holds the node's secret (its SHA-256: compared in constant
// time whatever the length presented) and when a refusal was last logged.
type admission struct {
	sum      [sha256.Size]byte
	on       bool
	lastLog  atomic.Int64 // unix nanoseconds
	refusals atomic.Uint64
}

func newAdmission(secret string) *admission {
	if secret == "" {
		return &admission{}
	}
	return &admission{sum: sha256.Sum256([]byte(secret)), on: true}
}

// check admits a call whose incoming metadata is in ctx.
func (s *Server) admit(ctx context.Context, method string) error {
	a := s.adm
	if !a.on {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(nodewire.SecretMetadataKey)
	var msg string
	switch {
	case len(vals) == 0:
		msg = "cluster secret required"
	default:
		got := sha256.Sum256([]byte(vals[0]))
		if subtle.ConstantTimeCompare(got[:], a.sum[:]) == 1 && len(vals) == 1 {
			return nil
		}
		msg = "wrong cluster secret"
	}
	s.logRefusal(ctx, method, msg)
	return status.Error(codes.Unauthenticated, "shuffle: "+msg+" (give the node's cluster secret: the node runs with --cluster-secret-file)")
}

// logRefusal logs a refused call, at most once per refusalLogEvery, with
// the method and the caller's address: never what the caller presented.
func (s *Server) logRefusal(ctx context.Context, method, msg string) {
	a := s.adm
	a.refusals.Add(1)
	now := time.Now().UnixNano()
	if last := a.lastLog.Load(); now-last >= int64(refusalLogEvery) && a.lastLog.CompareAndSwap(last, now) {
		from := "unknown"
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			from = p.Addr.String()
		}
		s.log.Warn("refused a call: "+msg, "method", methodName(method), "from", from, "refused_so_far", a.refusals.Load())
	}
}

// Per-application isolation: an application is bound at its first
// RegisterApp to the token that call carries (gRPC metadata
// nodewire.AppTokenMetadataKey; nodeclient's WithAppToken sends it), and
// the node keeps the token's SHA-256 in its catalogue, so the binding
// survives a node restart. Every later call naming the application (in
// its request, a block ID, a PutBlock or PutCheckpoint header) must carry the same
// token: without one it is refused with Unauthenticated, with another
// with PermissionDenied, before its handler runs. A call naming an
// application the node does not know gets the handler's own answer
// (unknownApp) without reaching the handler: a call checked before an
// application is registered must not act on it after. RegisterApp itself
// checks the binding under the application's lock (registerApp). An
// application of a version-1 record (written before tokens) is bound by
// its next RegisterApp and refused every other call until then. Calls
// that name no
// application (Status, HasBinary, PutBinary) are node-wide: they reveal
// no application's name or data.

// tokenSum is the SHA-256 of an application token; zero when unbound.
type tokenSum [sha256.Size]byte

func (t tokenSum) bound() bool { return t != tokenSum{} }

// matches compares in constant time.
func (t tokenSum) matches(u tokenSum) bool { return subtle.ConstantTimeCompare(t[:], u[:]) == 1 }

// tokenFrom returns the SHA-256 of the application token ctx's incoming
// metadata carries: exactly one non-empty value, or none.
func tokenFrom(ctx context.Context) (tokenSum, bool) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get(nodewire.AppTokenMetadataKey)
	if len(vals) != 1 || vals[0] == "" {
		return tokenSum{}, false
	}
	return sha256.Sum256([]byte(vals[0])), true
}

// errNoToken and errNotYours are the refusals of an application's calls.
func errNoToken(app string) error {
	return fmt.Errorf("%w: calls about application %q need its application token (a driver and the workers it starts have it)", shuffle.ErrUnauthenticated, app)
}

func errNotYours(app string) error {
	return fmt.Errorf("%w: application %q is registered with another application token", shuffle.ErrPermissionDenied, app)
}

// appNamed returns the application a request names, if it names one.
func appNamed(m any) (string, bool) {
	switch m := m.(type) {
	case *shufflepb.GetBlockRequest:
		return m.GetId().GetApp(), true
	case *shufflepb.PutBlockChunk:
		if h := m.GetHeader(); h != nil {
			return h.GetId().GetApp(), true
		}
		return "", false
	case *shufflepb.PutCheckpointChunk:
		if h := m.GetHeader(); h != nil {
			return h.GetApp(), true
		}
		return "", false
	case interface{ GetApp() string }:
		return m.GetApp(), true
	}
	return "", false
}

// authorize admits a call naming app: see "Per-application isolation".
// A call about an application the node does not know is answered here,
// as its handler would answer it (unknownApp), with answered set.
func (s *Server) authorize(ctx context.Context, method, app string) (resp any, answered bool, err error) {
	if method == shufflepb.Shuffle_RegisterApp_FullMethodName {
		return nil, false, nil // registerApp binds or checks, under the application's lock
	}
	s.mu.RLock()
	a := s.apps[app]
	var want tokenSum
	if a != nil {
		want = a.token
	}
	s.mu.RUnlock()
	if a == nil {
		if shuffle.ValidateID("application", app) != nil {
			// Never registered, never will be: the handler says what is
			// wrong with the ID, in its own terms.
			return nil, false, nil
		}
		resp, err := unknownApp(method, app)
		return resp, true, err
	}
	got, ok := tokenFrom(ctx)
	switch {
	case !ok:
		s.logRefusal(ctx, method, "application token required")
		return nil, true, errNoToken(app)
	case !want.bound() || !want.matches(got):
		s.logRefusal(ctx, method, "another application's token")
		return nil, true, errNotYours(app)
	}
	return nil, false, nil
}

// unknownApp is what a call about an application the node does not know
// gets: what its handler would return.
func unknownApp(method, app string) (any, error) {
	switch method {
	case shufflepb.Shuffle_Workers_FullMethodName:
		return &shufflepb.WorkersResponse{}, nil
	case shufflepb.Shuffle_StartWorkers_FullMethodName:
		return nil, fmt.Errorf("%w: application %q is not registered on this node (RegisterApp first; it may have expired after missing heartbeats for its TTL)", launcher.ErrAppNotRegistered, app)
	case shufflepb.Shuffle_StopWorker_FullMethodName:
		return nil, fmt.Errorf("%w: application %q has no workers on this node", launcher.ErrUnknownWorker, app)
	}
	return nil, fmt.Errorf("%w: %q is not registered on this node (register it first; it may have expired after missing heartbeats for its TTL)", shuffle.ErrUnknownApp, app)
}

// refusedTLS is told about every connection refused at its TLS handshake
// for its certificate (pki.Refused): counted with the refused calls, and
// logged like them, at most once per refusalLogEvery, with the reason
// (which names no secret).
func (s *Server) refusedTLS(remote string, err error) {
	a := s.adm
	a.refusals.Add(1)
	now := time.Now().UnixNano()
	if last := a.lastLog.Load(); now-last >= int64(refusalLogEvery) && a.lastLog.CompareAndSwap(last, now) {
		s.log.Warn("refused a connection: "+err.Error(), "from", remote, "refused_so_far", a.refusals.Load())
	}
}

// tlsSummary describes the node's identity for its log.
func tlsSummary(id *pki.Identity) string {
	if id == nil {
		return "off"
	}
	return fmt.Sprintf("%s until %s", id.Name(), id.Leaf.NotAfter.UTC().Format(time.DateOnly))
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := s.admit(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	if app, ok := appNamed(req); ok {
		if resp, answered, err := s.authorize(ctx, info.FullMethod, app); answered {
			return resp, nodewire.ToStatus(err)
		}
	}
	return h(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.admit(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	as := &authorizedStream{ServerStream: ss, s: s, method: info.FullMethod}
	err := h(srv, as)
	if as.slotOf != "" {
		s.streams.release(as.slotOf)
	}
	return err
}

// streamSlots counts each application's open streams
// (Options.MaxStreamsPerApp). Safe for concurrent use.
type streamSlots struct {
	mu   sync.Mutex
	open map[string]int
}

// acquire takes one of app's limit slots, if one is free.
func (t *streamSlots) acquire(app string, limit int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.open[app] >= limit {
		return false
	}
	if t.open == nil {
		t.open = map[string]int{}
	}
	t.open[app]++
	return true
}

func (t *streamSlots) release(app string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.open[app]--; t.open[app] <= 0 {
		delete(t.open, app)
	}
}

// authorizedStream authorizes every message it receives that names an
// application (a Fetch or GetBlock request, a PutBlock header) before
// the handler sees it, and counts the stream against the first such
// application's Options.MaxStreamsPerApp until the handler returns.
type authorizedStream struct {
	grpc.ServerStream
	s      *Server
	method string
	slotOf string // the application whose stream slot this holds
}

func (w *authorizedStream) RecvMsg(m any) error {
	if err := w.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if app, ok := appNamed(m); ok {
		// Every streaming call answers an unknown application with an
		// error: no response is ever made up here.
		if _, answered, err := w.s.authorize(w.Context(), w.method, app); answered {
			return nodewire.ToStatus(err)
		}
		if w.slotOf == "" && shuffle.ValidateID("application", app) == nil {
			if !w.s.streams.acquire(app, w.s.opts.MaxStreamsPerApp) {
				w.s.logRefusal(w.Context(), w.method, "too many streams of one application")
				return status.Errorf(codes.ResourceExhausted, "shuffle: application %q has %d streams open on this node, its limit (the node's MaxStreamsPerApp): finish some first", app, w.s.opts.MaxStreamsPerApp)
			}
			w.slotOf = app
		}
	}
	return nil
}

// IsLoopback reports whether addr (host:port, as a listener gives it)
// is a loopback address: one only this machine reaches.
func IsLoopback(addr net.Addr) bool {
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
