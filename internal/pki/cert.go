package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"

	"shoal/internal/ident"
)

// Role is what a certificate may do.
type Role int

const (
	// RoleNode serves (a node service) and is a client (the workers a
	// node starts present their node's certificate).
	RoleNode Role = iota + 1
	// RoleClient is a client only: a driver or an administrator.
	RoleClient
)

func (r Role) String() string {
	switch r {
	case RoleNode:
		return "node"
	case RoleClient:
		return "client"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Defaults and bounds of validities.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
	// EphemeralValidity is the validity of local mode's CA and
	// certificates, made at every start.
	EphemeralValidity = 7 * 24 * time.Hour
	// backdate makes a new certificate valid a little before it is
	// made, for clocks a little behind.
	backdate = 5 * time.Minute
)

// CA is a cluster's certificate authority: its certificate and key.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	certPEM []byte
}

// NewCA makes a CA named name (its common name), valid for validFor from
// now.
func NewCA(name string, validFor time.Duration, now time.Time) (*CA, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if validFor <= 0 {
		return nil, fmt.Errorf("pki: validity %v of CA %q is not positive", validFor, name)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate the CA's key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"shoal"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: make the CA's certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return &CA{Cert: cert, Key: key, certPEM: pemCert(der)}, nil
}

// Request describes a certificate to issue.
type Request struct {
	// Name is the subject's common name: the node's or the client's
	// name. Required (letters, digits, '.', '_', '-').
	Name string
	// Role says what the certificate may do. Required.
	Role Role
	// Hosts are the DNS names and IP addresses a node is dialled by
	// (RoleNode only; at least one).
	Hosts []string
	// ValidFor is the validity from now. Default DefaultCertValidity;
	// never beyond the CA's own.
	ValidFor time.Duration
}

// Issue makes a certificate and its key for req, signed by ca, valid
// from now.
func (ca *CA) Issue(req Request, now time.Time) (*Identity, error) {
	if err := checkName(req.Name); err != nil {
		return nil, err
	}
	if req.ValidFor == 0 {
		req.ValidFor = DefaultCertValidity
	}
	if req.ValidFor < 0 {
		return nil, fmt.Errorf("pki: validity %v of %q is negative", req.ValidFor, req.Name)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: req.Name, Organization: []string{"shoal"}, OrganizationalUnit: []string{req.Role.String()}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(req.ValidFor),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		IsCA:                  false,
		BasicConstraintsValid: true,
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("pki: %q would be valid until %s, after its CA %q expires (%s): give a shorter --valid-for, or make a new CA",
			req.Name, day(tmpl.NotAfter), ca.Cert.Subject.CommonName, day(ca.Cert.NotAfter))
	}
	switch req.Role {
	case RoleNode:
		if len(req.Hosts) == 0 {
			return nil, fmt.Errorf("pki: node %q needs at least one host name or address (--host)", req.Name)
		}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		for _, h := range req.Hosts {
			h = strings.TrimSpace(h)
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
				continue
			}
			if !validDNSName(h) {
				return nil, fmt.Errorf("pki: node %q: host %q is neither an IP address nor a DNS name", req.Name, h)
			}
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	case RoleClient:
		if len(req.Hosts) != 0 {
			return nil, fmt.Errorf("pki: client %q: a client certificate names no host", req.Name)
		}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	default:
		return nil, fmt.Errorf("pki: %q: unknown role %v", req.Name, req.Role)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate a key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign the certificate of %q: %w", req.Name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return newIdentity(ca.certPEM, pemCert(der), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// CertPEM is the CA's certificate, PEM-encoded.
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// Fingerprint is the SHA-256 of a certificate's DER, in hex.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

func checkName(name string) error {
	if err := ident.Check("certificate name", name); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// validDNSName accepts a DNS name: labels of letters, digits and '-',
// a leading "*." for a wildcard.
func validDNSName(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for l := range strings.SplitSeq(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// day formats a time for a person: UTC, to the second.
func day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// parseCert parses the single certificate of a PEM file.
func parseCert(what string, b []byte) (*x509.Certificate, error) {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("pki: %s holds no PEM CERTIFICATE", what)
	}
	if p, _ := pem.Decode(rest); p != nil {
		return nil, fmt.Errorf("pki: %s holds more than one PEM block (one certificate, no chain, is expected)", what)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", what, err)
	}
	return c, nil
}

// parseKey parses an ECDSA P-256 private key (PKCS #8 or SEC 1).
func parseKey(what string, b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("pki: %s holds no PEM key", what)
	}
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("pki: %s holds a PEM %q, not a PRIVATE KEY", what, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", what, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, fmt.Errorf("pki: %s is not an ECDSA P-256 key", what)
	}
	return ek, nil
}

func pemKey(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
