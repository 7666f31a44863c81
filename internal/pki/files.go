package pki

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// The files of an identity directory (a Kubernetes TLS Secret's keys) and
// of a CA's directory.
const (
	CAFile    = "ca.crt"
	CertFile  = "tls.crt"
	KeyFile   = "tls.key"
	CAKeyFile = "ca.key"
)

// maxFileBytes bounds a certificate or key file.
const maxFileBytes = 64 << 10

// Identity is a certificate, its key and the CA it is verified against.
type Identity struct {
	caPEM, certPEM, keyPEM []byte

	CA   *x509.Certificate
	Leaf *x509.Certificate
	pair tls.Certificate
	pool *x509.CertPool
}

func newIdentity(caPEM, certPEM, keyPEM []byte) (*Identity, error) {
	ca, err := parseCert(CAFile, caPEM)
	if err != nil {
		return nil, err
	}
	if !ca.IsCA {
		return nil, fmt.Errorf("pki: %s (%q) is not a CA certificate", CAFile, ca.Subject.CommonName)
	}
	leaf, err := parseCert(CertFile, certPEM)
	if err != nil {
		return nil, err
	}
	if _, err := parseKey(KeyFile, keyPEM); err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s and %s: %w", CertFile, KeyFile, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &Identity{caPEM: caPEM, certPEM: certPEM, keyPEM: keyPEM, CA: ca, Leaf: leaf, pair: pair, pool: pool}, nil
}

// Name is the certificate's common name.
func (id *Identity) Name() string { return id.Leaf.Subject.CommonName }

// CanServe reports whether the certificate may serve as a node's (a
// RoleNode certificate; a RoleClient one may not).
func (id *Identity) CanServe() bool {
	for _, u := range id.Leaf.ExtKeyUsage {
		if u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return len(id.Leaf.ExtKeyUsage) == 0
}

// Fingerprint is the SHA-256 of the certificate, in hex: what workers pin
// their driver's endpoint by.
func (id *Identity) Fingerprint() string { return Fingerprint(id.Leaf) }

// LoadDir reads the identity in dir (ca.crt, tls.crt, tls.key). The key
// must not be readable by others. It checks that the certificate is
// signed by the CA and valid now, so that a node with a bad certificate
// fails at its start rather than at its first call.
func LoadDir(dir string) (*Identity, error) {
	caPEM, err := readFile(dir, CAFile, false)
	if err != nil {
		return nil, err
	}
	certPEM, err := readFile(dir, CertFile, false)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile(dir, KeyFile, true)
	if err != nil {
		return nil, err
	}
	id, err := newIdentity(caPEM, certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, dir)
	}
	if err := verifyChain(id.Leaf, id.pool, x509.ExtKeyUsageAny); err != nil {
		return nil, fmt.Errorf("pki: the certificate in %s: %w", dir, err)
	}
	return id, nil
}

// WriteDir writes the identity to dir (created 0700 if missing): ca.crt,
// tls.crt (0644) and tls.key (0600). It refuses to replace existing
// files.
func (id *Identity) WriteDir(dir string) error {
	return writeFiles(dir, []file{{CAFile, id.caPEM, 0o644}, {CertFile, id.certPEM, 0o644}, {KeyFile, id.keyPEM, 0o600}})
}

// LoadCA reads the CA in dir (ca.crt, ca.key).
func LoadCA(dir string) (*CA, error) {
	certPEM, err := readFile(dir, CAFile, false)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readFile(dir, CAKeyFile, true)
	if err != nil {
		return nil, err
	}
	cert, err := parseCert(CAFile, certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(CAKeyFile, keyPEM)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %s in %s is not a CA certificate", CAFile, dir)
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("pki: %s and %s in %s do not belong together", CAFile, CAKeyFile, dir)
	}
	return &CA{Cert: cert, Key: key, certPEM: certPEM}, nil
}

// WriteDir writes the CA to dir (created 0700 if missing): ca.crt (0644)
// and ca.key (0600). It refuses to replace existing files.
func (ca *CA) WriteDir(dir string) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return writeFiles(dir, []file{{CAFile, ca.certPEM, 0o644}, {CAKeyFile, pemKey(keyDER), 0o600}})
}

type file struct {
	name string
	data []byte
	mode os.FileMode
}

// writeFiles writes each file under a temporary name and renames it;
// none is written if one exists already.
func writeFiles(dir string, files []file) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f.name)); err == nil {
			return fmt.Errorf("pki: %s exists: remove it first, or write to another directory (nothing was written)", filepath.Join(dir, f.name))
		}
	}
	for _, f := range files {
		tmp, err := os.CreateTemp(dir, "."+f.name+".*")
		if err != nil {
			return fmt.Errorf("pki: %w", err)
		}
		err = tmp.Chmod(f.mode)
		if err == nil {
			_, err = tmp.Write(f.data)
		}
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Link(tmp.Name(), filepath.Join(dir, f.name)) // fails if it exists
		}
		os.Remove(tmp.Name())
		if err != nil {
			return fmt.Errorf("pki: write %s: %w", filepath.Join(dir, f.name), err)
		}
	}
	return nil
}

// readFile reads dir/name, at most maxFileBytes; secret files must not
// be readable by others.
func readFile(dir, name string, secret bool) ([]byte, error) {
	p := filepath.Join(dir, name)
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("pki: %s is missing (a TLS directory holds %s, %s and %s: make them with shoal certs)", p, CAFile, CertFile, KeyFile)
		}
		return nil, fmt.Errorf("pki: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if secret && fi.Mode().Perm()&0o004 != 0 {
		return nil, fmt.Errorf("pki: %s is readable by every user (mode %04o): make it 0600, 0400 or 0440 (chmod o-r %s; in Kubernetes, the Secret volume's defaultMode: 0440)", p, fi.Mode().Perm(), p)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("pki: read %s: %w", p, err)
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("pki: %s is larger than %d bytes: not a certificate or key", p, maxFileBytes)
	}
	return b, nil
}
