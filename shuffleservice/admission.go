package shuffleservice

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"shoal/internal/pki"
	"shoal/shuffleservice/internal/nodewire"
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
	a.refusals.Add(1)
	now := time.Now().UnixNano()
	if last := a.lastLog.Load(); now-last >= int64(refusalLogEvery) && a.lastLog.CompareAndSwap(last, now) {
		from := "unknown"
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			from = p.Addr.String()
		}
		s.log.Warn("refused a call: "+msg, "method", methodName(method), "from", from, "refused_so_far", a.refusals.Load())
	}
	return status.Error(codes.Unauthenticated, "shuffle: "+msg+" (give the node's cluster secret: the node runs with --cluster-secret-file)")
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
	return h(ctx, req)
}

func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := s.admit(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
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
