package pki

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustCA(t *testing.T, name string) *CA {
	t.Helper()
	ca, err := NewCA(name, 2*365*24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustIssue(t *testing.T, ca *CA, req Request, now time.Time) *Identity {
	t.Helper()
	id, err := ca.Issue(req, now)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// handshake runs a TLS handshake between server (its config) and client
// (its config) over TCP on loopback and returns each side's error. The
// server writes a byte once it has accepted the client; the client reads
// it, so a client refused by the server sees it (TLS 1.3 ends the client's
// handshake before the server has verified its certificate).
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	done := make(chan error, 1)
	go func() {
		raw, err := lis.Accept()
		if err != nil {
			done <- err
			return
		}
		defer raw.Close()
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		s := tls.Server(raw, server)
		if err := s.Handshake(); err != nil {
			done <- err
			return
		}
		_, err = s.Write([]byte{1})
		done <- err
	}()
	raw, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(raw, client)
	clientErr = c.Handshake()
	if clientErr == nil {
		_, clientErr = c.Read(make([]byte, 1))
	}
	if clientErr != nil {
		raw.Close()
	}
	serverErr = <-done
	return serverErr, clientErr
}

func TestMutualTLS(t *testing.T) {
	ca := mustCA(t, "cluster")
	now := time.Now()
	node := mustIssue(t, ca, Request{Name: "h1", Role: RoleNode, Hosts: []string{"h1", "10.0.0.5"}}, now)
	driver := mustIssue(t, ca, Request{Name: "driver", Role: RoleClient}, now)

	for _, host := range []string{"h1", "10.0.0.5"} {
		if serr, cerr := handshake(t, node.ServerConfig("c"), driver.ClientConfig(host, "", "")); serr != nil || cerr != nil {
			t.Fatalf("dialling %s: server %v, client %v", host, serr, cerr)
		}
	}
	// A worker presents its node's certificate to another node.
	if serr, cerr := handshake(t, node.ServerConfig("c"), node.ClientConfig("h1", "", "")); serr != nil || cerr != nil {
		t.Fatalf("node to node: server %v, client %v", serr, cerr)
	}
	// A worker dials its driver's endpoint, pinned.
	if serr, cerr := handshake(t, driver.ServerConfig("w"), node.ClientConfig("10.9.9.9", "", driver.Fingerprint())); serr != nil || cerr != nil {
		t.Fatalf("worker to driver: server %v, client %v", serr, cerr)
	}
	// The name every node's certificate shares (Kubernetes).
	shared := mustIssue(t, ca, Request{Name: "nodes", Role: RoleNode, Hosts: []string{"shoal-node.shoal.svc"}}, now)
	if serr, cerr := handshake(t, shared.ServerConfig("c"), driver.ClientConfig("10.1.2.3", "shoal-node.shoal.svc", "")); serr != nil || cerr != nil {
		t.Fatalf("server name: server %v, client %v", serr, cerr)
	}
	c := driver.ClientConfig("x", "", "")
	s := node.ServerConfig("y")
	if c.MinVersion != tls.VersionTLS13 || s.MinVersion != tls.VersionTLS13 {
		t.Fatal("not TLS 1.3 only")
	}
}

// refusal checks that err is a *VerifyError whose message holds every
// part of want.
func refusal(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	var ve *VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("%s: got %v, want a *VerifyError", what, err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Fatalf("%s: the error is more than one line: %q", what, msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Fatalf("%s: %q does not say %q", what, msg, w)
		}
	}
}

func TestRefusals(t *testing.T) {
	ca := mustCA(t, "cluster")
	other := mustCA(t, "other")
	now := time.Now()
	node := mustIssue(t, ca, Request{Name: "h1", Role: RoleNode, Hosts: []string{"h1", "10.0.0.5"}}, now)
	driver := mustIssue(t, ca, Request{Name: "driver", Role: RoleClient}, now)

	t.Run("expired client", func(t *testing.T) {
		old := mustIssue(t, ca, Request{Name: "old", Role: RoleClient, ValidFor: time.Hour}, now.Add(-3*time.Hour))
		serr, cerr := handshake(t, node.ServerConfig("10.0.0.9:1"), old.ClientConfig("h1", "", ""))
		refusal(t, "server", serr, `"old"`, "client 10.0.0.9:1", "expired on "+day(old.Leaf.NotAfter))
		if cerr == nil {
			t.Fatal("the client's handshake succeeded")
		}
	})
	t.Run("expired node", func(t *testing.T) {
		old := mustIssue(t, ca, Request{Name: "h1", Role: RoleNode, Hosts: []string{"h1"}, ValidFor: time.Hour}, now.Add(-3*time.Hour))
		_, cerr := handshake(t, old.ServerConfig("c"), driver.ClientConfig("h1", "", ""))
		refusal(t, "client", cerr, "node h1", "expired on "+day(old.Leaf.NotAfter))
	})
	t.Run("not yet valid", func(t *testing.T) {
		future := mustIssue(t, ca, Request{Name: "future", Role: RoleClient, ValidFor: time.Hour}, now.Add(time.Hour))
		serr, _ := handshake(t, node.ServerConfig("c"), future.ClientConfig("h1", "", ""))
		refusal(t, "server", serr, "not valid before")
	})
	t.Run("another CA's client", func(t *testing.T) {
		stranger := mustIssue(t, other, Request{Name: "stranger", Role: RoleClient}, now)
		cc := stranger.ClientConfig("h1", "", "")
		cc.VerifyConnection = nil // an attacker's client checks nothing
		serr, cerr := handshake(t, node.ServerConfig("c"), cc)
		refusal(t, "server", serr, `"stranger"`, `signed by another CA (issuer "other")`)
		if cerr == nil {
			t.Fatal("the client's handshake succeeded")
		}
	})
	t.Run("another CA's node", func(t *testing.T) {
		impostor := mustIssue(t, other, Request{Name: "h1", Role: RoleNode, Hosts: []string{"h1"}}, now)
		_, cerr := handshake(t, impostor.ServerConfig("c"), driver.ClientConfig("h1", "", ""))
		refusal(t, "client", cerr, "signed by another CA")
	})
	t.Run("wrong name", func(t *testing.T) {
		_, cerr := handshake(t, node.ServerConfig("c"), driver.ClientConfig("h2", "", ""))
		refusal(t, "client", cerr, "node h2", "valid for h1, 10.0.0.5, not h2")
		_, cerr = handshake(t, node.ServerConfig("c"), driver.ClientConfig("10.0.0.6", "", ""))
		refusal(t, "client", cerr, "not 10.0.0.6")
		_, cerr = handshake(t, node.ServerConfig("c"), driver.ClientConfig("10.0.0.5", "shoal-node", ""))
		refusal(t, "client", cerr, "not shoal-node")
	})
	t.Run("a client certificate cannot serve", func(t *testing.T) {
		_, cerr := handshake(t, driver.ServerConfig("c"), node.ClientConfig("h1", "", ""))
		refusal(t, "client", cerr, "may not serve")
	})
	t.Run("no client certificate", func(t *testing.T) {
		anon := driver.ClientConfig("h1", "", "")
		anon.Certificates = nil
		serr, cerr := handshake(t, node.ServerConfig("c"), anon)
		refusal(t, "server", serr, "no certificate presented")
		if cerr == nil {
			t.Fatal("the client's handshake succeeded")
		}
	})
	t.Run("pin", func(t *testing.T) {
		driver2 := mustIssue(t, ca, Request{Name: "driver2", Role: RoleClient}, now)
		_, cerr := handshake(t, driver2.ServerConfig("w"), node.ClientConfig("d", "", driver.Fingerprint()))
		refusal(t, "client", cerr, "driver d", "not the certificate expected")
	})
}

func TestIssueRefuses(t *testing.T) {
	ca := mustCA(t, "cluster")
	now := time.Now()
	for _, req := range []Request{
		{Name: "", Role: RoleClient},
		{Name: "a/b", Role: RoleClient},
		{Name: "n", Role: RoleNode},
		{Name: "n", Role: RoleNode, Hosts: []string{"bad host"}},
		{Name: "c", Role: RoleClient, Hosts: []string{"h"}},
		{Name: "c", Role: RoleClient, ValidFor: 3 * 365 * 24 * time.Hour}, // beyond the CA
		{Name: "c"},
	} {
		if _, err := ca.Issue(req, now); err == nil {
			t.Errorf("Issue(%+v) succeeded", req)
		}
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	ca := mustCA(t, "cluster")
	if err := ca.WriteDir(filepath.Join(dir, "ca")); err != nil {
		t.Fatal(err)
	}
	ca2, err := LoadCA(filepath.Join(dir, "ca"))
	if err != nil {
		t.Fatal(err)
	}
	if !ca2.Cert.Equal(ca.Cert) || !ca2.Key.Equal(ca.Key) {
		t.Fatal("the CA read back differs")
	}
	if err := ca.WriteDir(filepath.Join(dir, "ca")); err == nil {
		t.Fatal("WriteDir replaced an existing CA")
	}
	id := mustIssue(t, ca2, Request{Name: "h1", Role: RoleNode, Hosts: []string{"h1"}}, time.Now())
	nd := filepath.Join(dir, "node")
	if err := id.WriteDir(nd); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{CAFile: 0o644, CertFile: 0o644, KeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(nd, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %04o, want %04o", name, fi.Mode().Perm(), mode)
		}
	}
	ents, _ := os.ReadDir(nd)
	if len(ents) != 3 {
		t.Fatalf("%d files in the directory, want 3 (no temporary left)", len(ents))
	}
	back, err := LoadDir(nd)
	if err != nil {
		t.Fatal(err)
	}
	if back.Fingerprint() != id.Fingerprint() || back.Name() != "h1" || !back.CanServe() {
		t.Fatal("the identity read back differs")
	}
	if err := os.Chmod(filepath.Join(nd, KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(nd); err == nil || !strings.Contains(err.Error(), "readable by every user") {
		t.Fatalf("a world-readable key was loaded: %v", err)
	}
	if _, err := LoadDir(filepath.Join(dir, "none")); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("LoadDir of nothing: %v", err)
	}
	if cl := mustIssue(t, ca2, Request{Name: "c", Role: RoleClient}, time.Now()); cl.CanServe() {
		t.Error("a client certificate can serve")
	}
	// A certificate of another CA beside this CA's certificate.
	other := mustCA(t, "other")
	stranger := mustIssue(t, other, Request{Name: "s", Role: RoleClient}, time.Now())
	mixed := filepath.Join(dir, "mixed")
	if err := os.MkdirAll(mixed, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(mixed, CAFile), ca.CertPEM(), 0o644)
	os.WriteFile(filepath.Join(mixed, CertFile), stranger.certPEM, 0o644)
	os.WriteFile(filepath.Join(mixed, KeyFile), stranger.keyPEM, 0o600)
	if _, err := LoadDir(mixed); err == nil || !strings.Contains(err.Error(), "signed by another CA") {
		t.Fatalf("LoadDir of another CA's certificate: %v", err)
	}
}
