package pki

import (
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// VerifyError is a peer's certificate refused, and why, in one line.
type VerifyError struct {
	// Peer is who presented it: "node 10.0.0.5:7077", "client
	// 10.0.0.9:51234", "driver 10.0.0.7:40001".
	Peer string
	// Subject is the certificate's common name ("" if there was none).
	Subject string
	// Reason says what is wrong: "expired on 2025-01-02 03:04:05 UTC",
	// "signed by another CA ...", "valid for h1, 10.0.0.5, not h2", ...
	Reason string
}

func (e *VerifyError) Error() string {
	if e.Subject == "" {
		return fmt.Sprintf("pki: %s refused: %s", e.Peer, e.Reason)
	}
	return fmt.Sprintf("pki: certificate %q of %s refused: %s", e.Subject, e.Peer, e.Reason)
}

// verifyChain checks that leaf is valid now, signed by a CA of roots and
// allowed usage; the error is a reason, for a VerifyError.
func verifyChain(leaf *x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, intermediates ...*x509.Certificate) error {
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("expired on %s (issue a new one with shoal certs)", day(leaf.NotAfter))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("not valid before %s (is a clock wrong?)", day(leaf.NotBefore))
	}
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err == nil {
		return nil
	}
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return fmt.Errorf("signed by another CA (issuer %q), not this cluster's", leaf.Issuer.CommonName)
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return fmt.Errorf("its CA %q is expired or not yet valid (%s)", leaf.Issuer.CommonName, ci.Detail)
	case errors.As(err, &ci) && ci.Reason == x509.IncompatibleUsage:
		if usage == x509.ExtKeyUsageServerAuth {
			return errors.New("it may not serve (a client certificate: a node needs one made by shoal certs node)")
		}
		return errors.New("it may not be used by a client")
	}
	return err
}

// checkPeer verifies a peer's chain (chain[0] its certificate), then its
// name (if name is not empty) or its fingerprint (if pin is not empty).
func checkPeer(peer string, chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, name, pin string) error {
	if len(chain) == 0 {
		return &VerifyError{Peer: peer, Reason: "no certificate presented (the peer needs one issued by the cluster's CA: shoal certs)"}
	}
	leaf := chain[0]
	if err := verifyChain(leaf, roots, usage, chain[1:]...); err != nil {
		return &VerifyError{Peer: peer, Subject: leaf.Subject.CommonName, Reason: err.Error()}
	}
	if pin != "" {
		got := Fingerprint(leaf)
		if subtle.ConstantTimeCompare([]byte(got), []byte(strings.ToLower(pin))) != 1 {
			return &VerifyError{Peer: peer, Subject: leaf.Subject.CommonName, Reason: fmt.Sprintf("not the certificate expected (SHA-256 %s…, expected %s…)", got[:12], pin[:min(12, len(pin))])}
		}
	}
	if name != "" {
		if err := leaf.VerifyHostname(name); err != nil {
			return &VerifyError{Peer: peer, Subject: leaf.Subject.CommonName, Reason: fmt.Sprintf("valid for %s, not %s", names(leaf), name)}
		}
	}
	return nil
}

// names lists a certificate's DNS names and IP addresses.
func names(c *x509.Certificate) string {
	var out []string
	out = append(out, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	if len(out) == 0 {
		return "no host (a client certificate)"
	}
	return strings.Join(out, ", ")
}
