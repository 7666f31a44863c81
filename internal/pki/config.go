package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc/credentials"
)

// ServerConfig is the configuration of a server with this identity: TLS
// 1.3, a client certificate required and verified against the CA
// (client usage). remote is the client's address, for errors.
func (id *Identity) ServerConfig(remote string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.pair},
		NextProtos:   []string{"h2"},
		// Requested, and required and verified by VerifyConnection, to
		// say why in one line (a missing one too).
		ClientAuth: tls.RequestClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return checkPeer("client "+remote, cs.PeerCertificates, id.pool, x509.ExtKeyUsageClientAuth, "", "")
		},
	}
}

// ClientConfig is the configuration of a client with this identity
// dialling host: TLS 1.3, its certificate presented, the server's
// verified against the CA. With pin empty, the server must be a node
// (server usage) whose certificate names serverName, or host if
// serverName is empty. With pin set (a driver's endpoint), the server's
// certificate must be the one whose SHA-256 (hex) is pin; no name is
// checked.
func (id *Identity) ClientConfig(host, serverName, pin string) *tls.Config {
	peer, usage, name := "node "+host, x509.ExtKeyUsageServerAuth, serverName
	if name == "" {
		name = host
	}
	if pin != "" {
		peer, usage, name = "driver "+host, x509.ExtKeyUsageAny, ""
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{id.pair},
		NextProtos:   []string{"h2"},
		// Verified by VerifyConnection instead, against the cluster's CA
		// only, to say why in one line.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return checkPeer(peer, cs.PeerCertificates, id.pool, usage, name, pin)
		},
	}
}

// Refused is told about every TLS handshake a server refused because of
// the client's certificate (a *VerifyError, or none given); never about a
// connection closed before its handshake (a TCP probe).
type Refused func(remote string, err error)

// ServerCredentials are gRPC transport credentials for a server with this
// identity (ServerConfig). refused may be nil.
func (id *Identity) ServerCredentials(refused Refused) credentials.TransportCredentials {
	return &creds{id: id, refused: refused}
}

// ClientCredentials are gRPC transport credentials for a client of nodes
// with this identity (ClientConfig with pin empty): each connection
// verifies the node against the host it dials, or serverName if set.
func (id *Identity) ClientCredentials(serverName string) credentials.TransportCredentials {
	return &creds{id: id, serverName: serverName}
}

// PinnedCredentials are gRPC transport credentials for a client of a
// driver's endpoint whose certificate's SHA-256 is pin (ClientConfig).
func (id *Identity) PinnedCredentials(pin string) credentials.TransportCredentials {
	return &creds{id: id, pin: pin}
}

// creds makes a tls.Config per connection, so that its verification
// knows the address dialled (or the client's, on a server).
type creds struct {
	id         *Identity
	serverName string
	pin        string
	refused    Refused
}

func (c *creds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	host := authority
	if h, _, err := net.SplitHostPort(authority); err == nil {
		host = h
	}
	cfg := c.id.ClientConfig(host, c.serverName, c.pin)
	conn, info, err := credentials.NewTLS(cfg).ClientHandshake(ctx, authority, raw)
	return conn, info, unwrapVerify(err)
}

func (c *creds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	remote := raw.RemoteAddr().String()
	conn, info, err := credentials.NewTLS(c.id.ServerConfig(remote)).ServerHandshake(raw)
	if err != nil && c.refused != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			c.refused(remote, ve)
		}
	}
	return conn, info, err
}

func (c *creds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.3"}
}

func (c *creds) Clone() credentials.TransportCredentials {
	cp := *c
	return &cp
}

// OverrideServerName is gRPC's deprecated way to set the name; ServerName
// is given at construction instead.
func (c *creds) OverrideServerName(name string) error {
	c.serverName = name
	return nil
}

// unwrapVerify returns a client handshake's error with the *VerifyError
// it wraps, if any, first: crypto/tls wraps it in a tls.CertificateVerificationError.
func unwrapVerify(err error) error {
	var ve *VerifyError
	if err != nil && errors.As(err, &ve) {
		return fmt.Errorf("%w", ve)
	}
	return err
}
