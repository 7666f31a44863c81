package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shoal/internal/pki"
	"shoal/internal/testbin"
)

// TestCerts runs shoal certs init, node and client as a person would:
// the files they write load as a CA and identities of it, with the hosts
// and validity asked for; a missing flag or an existing directory is one
// line and a non-zero status, and nothing is overwritten.
func TestCerts(t *testing.T) {
	bin := testbin.Shoal(t)
	dir := t.TempDir()
	run := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"certs"}, args...)...)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Run()
		return cmd.ProcessState.ExitCode(), out.String()
	}
	if st, out := run("init", "--dir", "ca"); st != 0 {
		t.Fatalf("certs init: %d %s", st, out)
	}
	if st, out := run("node", "--ca", "ca", "--name", "h1", "--host", "h1,10.0.0.5", "--out", "h1", "--valid-for", "48h"); st != 0 {
		t.Fatalf("certs node: %d %s", st, out)
	}
	if st, out := run("client", "--ca", "ca", "--name", "driver", "--out", "driver"); st != 0 {
		t.Fatalf("certs client: %d %s", st, out)
	}
	ca, err := pki.LoadCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := pki.LoadDir(filepath.Join(dir, "h1"))
	if err != nil {
		t.Fatal(err)
	}
	if !node.CA.Equal(ca.Cert) || node.Name() != "h1" || node.Leaf.VerifyHostname("h1") != nil || node.Leaf.VerifyHostname("10.0.0.5") != nil {
		t.Errorf("the node's certificate: CA %q, name %q, hosts %v %v", node.CA.Subject.CommonName, node.Name(), node.Leaf.DNSNames, node.Leaf.IPAddresses)
	}
	if left := time.Until(node.Leaf.NotAfter); left < 47*time.Hour || left > 49*time.Hour {
		t.Errorf("the node's certificate expires in %v, want 48h", left)
	}
	if _, err := pki.LoadDir(filepath.Join(dir, "driver")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"node", "--ca", "ca", "--name", "h2", "--out", "h2"}, "--host required"},
		{[]string{"client", "--ca", "ca", "--name", "driver", "--out", "driver"}, "exists"},
		{[]string{"init", "--dir", "ca"}, "exists"},
		{[]string{"client", "--ca", "nowhere", "--name", "x", "--out", "x"}, "is missing"},
		{[]string{"rotate"}, "unknown subcommand"},
	} {
		st, out := run(tc.args...)
		if st == 0 || !strings.Contains(out, tc.says) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("certs %q: status %d, %q; want one line saying %q", tc.args, st, out, tc.says)
		}
	}
	// Nothing was overwritten.
	again, err := pki.LoadDir(filepath.Join(dir, "h1"))
	if err != nil || again.Fingerprint() != node.Fingerprint() {
		t.Errorf("h1's certificate changed: %v", err)
	}
}
