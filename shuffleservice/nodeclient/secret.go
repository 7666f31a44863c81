package nodeclient

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// SecretMetadata is the gRPC metadata key that carries the cluster secret
// on every call to a node service that requires one
// (shuffleservice.Options.ClusterSecret).
const SecretMetadata = "shoal-cluster-secret"

// A DialOption configures Dial.
type DialOption func(*dialConfig)

type dialConfig struct {
	secret string
}

// WithClusterSecret makes every call carry the cluster secret, which a
// node listening beyond loopback requires (shoal node
// --cluster-secret-file). Empty: no secret.
func WithClusterSecret(secret string) DialOption {
	return func(c *dialConfig) { c.secret = secret }
}

func (c dialConfig) secretOption() grpc.DialOption {
	if c.secret == "" {
		return grpc.EmptyDialOption{}
	}
	return grpc.WithPerRPCCredentials(clusterSecret(c.secret))
}

// clusterSecret is the per-call credential of WithClusterSecret.
type clusterSecret string

func (s clusterSecret) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{SecretMetadata: string(s)}, nil
}

// RequireTransportSecurity is false: the links are plain TCP until they
// are TLS (the secret then travels inside it).
func (clusterSecret) RequireTransportSecurity() bool { return false }

var _ credentials.PerRPCCredentials = clusterSecret("")
