package compute

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// tokenMetadata is the gRPC metadata key of the application's token,
// which a worker presents to its driver's endpoint.
const tokenMetadata = "shoal-app-token"

// NewSecret returns 32 random bytes in hex: an application token, or an
// ephemeral cluster secret.
func NewSecret() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// appToken is the per-call credential of a worker's stream
// (WorkerOptions.AppToken).
type appToken string

func (t appToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if t == "" {
		return nil, nil
	}
	return map[string]string{tokenMetadata: string(t)}, nil
}

// RequireTransportSecurity is false: the links are plain TCP until they
// are TLS.
func (appToken) RequireTransportSecurity() bool { return false }

// checkToken refuses a stream that does not carry want. The error never
// quotes either token.
func checkToken(ctx context.Context, want string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	got := md.Get(tokenMetadata)
	switch {
	case len(got) == 0:
		return status.Error(codes.Unauthenticated, "compute: the application token is required (a worker started for this application has it)")
	case subtle.ConstantTimeCompare([]byte(got[0]), []byte(want)) != 1:
		return status.Error(codes.Unauthenticated, "compute: wrong application token (a worker of another application, or of an earlier run?)")
	}
	return nil
}

// peerAddr is the address a call came from, for the log.
func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return "?"
}
