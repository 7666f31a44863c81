package client

import (
	"fmt"
	"os"
	"path/filepath"

	"shoal/internal/pki"
)

// tlsSetup is the driver's mutual TLS (docs/security.md): in cluster
// mode its identity from Options.TLSDir; in local mode an ephemeral CA
// made here, whose node identity is written to a private temporary
// directory (the nodes' --tls-dir, their workers' SHOAL_TLS_DIR) removed
// at Close. A nil *tlsSetup is TLS off (Options.Insecure).
type tlsSetup struct {
	id  *pki.Identity // the driver's: presented to nodes, served to workers
	dir string        // local mode: the temporary directory
}

func newTLSSetup(opts Options) (*tlsSetup, error) {
	switch {
	case opts.Insecure:
		return nil, nil
	case opts.Master != "":
		id, err := pki.LoadDir(opts.TLSDir)
		if err != nil {
			return nil, fmt.Errorf("client: the driver's certificate (TLSDir, shoal run --tls-dir): %w", err)
		}
		return &tlsSetup{id: id}, nil
	}
	dir, err := os.MkdirTemp("", "shoal-tls-")
	if err != nil {
		return nil, fmt.Errorf("client: a directory for the local cluster's certificates: %w", err)
	}
	eph, err := pki.NewEphemeral("driver", filepath.Join(dir, "node"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("client: %w", err)
	}
	return &tlsSetup{id: eph.Client, dir: filepath.Join(dir, "node")}, nil
}

// driver is the driver's identity; nil when TLS is off.
func (t *tlsSetup) driver() *pki.Identity {
	if t == nil {
		return nil
	}
	return t.id
}

// pin is the SHA-256 of the driver's certificate, which its workers
// accept and no other; "" when TLS is off.
func (t *tlsSetup) pin() string {
	if t == nil {
		return ""
	}
	return t.id.Fingerprint()
}

// nodeDir is local mode's node identity directory; "" when TLS is off or
// in cluster mode.
func (t *tlsSetup) nodeDir() string {
	if t == nil {
		return ""
	}
	return t.dir
}

// close removes local mode's certificates.
func (t *tlsSetup) close() error {
	if t == nil || t.dir == "" {
		return nil
	}
	return os.RemoveAll(filepath.Dir(t.dir))
}
