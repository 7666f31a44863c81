package shuffleservice

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"shoal/internal/nodeproc"
	"shoal/internal/pki"
	"shoal/internal/poll"
	"shoal/internal/testbin"
	"shoal/shuffleservice/internal/nodetest"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shufflepb"
)

// testCerts are a cluster's CA, a node's identity on loopback written to
// nodeDir, a client's, and certificates that must be refused.
type testCerts struct {
	ca       *pki.CA
	nodeDir  string
	client   *pki.Identity
	stranger *pki.Identity // another CA's client
	expired  *pki.Identity // this CA's, expired an hour ago
}

func newTestCerts(t testing.TB) testCerts {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("test-ca", 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("other-ca", 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *pki.CA, req pki.Request, at time.Time) *pki.Identity {
		id, err := ca.Issue(req, at)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	c := testCerts{
		ca:       ca,
		nodeDir:  filepath.Join(t.TempDir(), "node-tls"),
		client:   issue(ca, pki.Request{Name: "driver", Role: pki.RoleClient, ValidFor: time.Hour}, now),
		stranger: issue(other, pki.Request{Name: "stranger", Role: pki.RoleClient, ValidFor: time.Hour}, now),
		expired:  issue(ca, pki.Request{Name: "old", Role: pki.RoleClient, ValidFor: time.Hour}, now.Add(-2*time.Hour)),
	}
	node := issue(ca, pki.Request{Name: "n1", Role: pki.RoleNode, Hosts: []string{"127.0.0.1", "localhost"}, ValidFor: time.Hour}, now)
	if err := node.WriteDir(c.nodeDir); err != nil {
		t.Fatal(err)
	}
	return c
}

// rawStatus calls Status on addr with the gRPC client itself over
// transport: an attacker's client, which checks nothing of the node.
func rawStatus(t *testing.T, addr string, transport credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(transport))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A refused client whose TLS 1.3 handshake ended before the node's
	// verdict arrived keeps reconnecting until its deadline: a short one
	// keeps the test short (a served call takes milliseconds).
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = shufflepb.NewShuffleClient(conn).Status(ctx, &shufflepb.StatusRequest{})
	return err
}

// TestNodeProcessMutualTLS: a real node process started with --tls-dir
// refuses, at the handshake, a client without a certificate (plain TCP,
// or TLS without one), with another CA's certificate or an expired one,
// and logs why; it serves a client with a certificate of its CA (and the
// cluster secret, still required); and a client refuses a node whose
// certificate does not name the host it dials.
func TestNodeProcessMutualTLS(t *testing.T) {
	bin := testbin.Shoal(t)
	certs := newTestCerts(t)
	logs := &logBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := nodeproc.Start(ctx, nodeproc.Options{Binary: bin, Dirs: []string{t.TempDir()}, Stderr: logs,
		Args: []string{"--tls-dir", certs.nodeDir}, Env: []string{"SHOAL_CLUSTER_SECRET=" + testClusterSecret}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	addr := p.Addr()

	attacker := func(id *pki.Identity) credentials.TransportCredentials {
		cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
		if id != nil {
			cfg = id.ClientConfig("127.0.0.1", "", "")
			cfg.VerifyConnection = nil // checks nothing of the node
		}
		return credentials.NewTLS(cfg)
	}
	// The first refusal is logged with its reason (then at most one per
	// 10 s): another CA's certificate.
	if err := rawStatus(t, addr, attacker(certs.stranger)); err == nil {
		t.Fatal("a client with another CA's certificate was served")
	}
	poll.WaitFor(t, 10*time.Second, "the node to log why it refused another CA's certificate", func() bool {
		return strings.Contains(logs.String(), `certificate \"stranger\" of client 127.0.0.1:`) &&
			strings.Contains(logs.String(), `signed by another CA (issuer \"other-ca\")`)
	})
	for name, transport := range map[string]credentials.TransportCredentials{
		"plain TCP":                 insecure.NewCredentials(),
		"TLS without a certificate": attacker(nil),
		"an expired certificate":    attacker(certs.expired),
		"another CA's (again)":      attacker(certs.stranger),
	} {
		if err := rawStatus(t, addr, transport); err == nil {
			t.Errorf("a client with %s was served", name)
		}
	}
	if strings.Contains(logs.String(), testClusterSecret) {
		t.Error("the node's log holds the cluster secret")
	}

	// The right certificate, through nodeclient: served, with the secret.
	good := func(secret string) error {
		c, err := nodeclient.Dial(addr, nodeclient.WithCredentials(nodeclient.Credentials{Secret: secret, TLS: certs.client}))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Status(ctx)
		return err
	}
	if err := good(testClusterSecret); err != nil {
		t.Fatalf("a client with the CA's certificate and the secret: %v", err)
	}
	if err := good(""); err == nil || !strings.Contains(err.Error(), "cluster secret required") {
		t.Fatalf("a client with a certificate but no secret: %v, want the secret asked for", err)
	}

	// The client side: the node's certificate names 127.0.0.1 and
	// localhost, and no other name it could be dialled by.
	_, port, _ := strings.Cut(addr, ":")
	c, err := nodeclient.Dial("127.0.0.1:"+port, nodeclient.WithCredentials(nodeclient.Credentials{Secret: testClusterSecret, TLS: certs.client, ServerName: "h9"}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Status(ctx); err == nil || !strings.Contains(err.Error(), "valid for localhost, 127.0.0.1, not h9") {
		t.Fatalf("a node whose certificate does not name h9, dialled as h9: %v, want a refusal naming both", err)
	}
}

// TestNodeCertificateRotation: a node killed and started again on its
// directories with a new certificate from the same CA, the old one gone,
// presents the new one and serves the map outputs committed before, byte
// for byte (docs/security.md, "Rotating").
func TestNodeCertificateRotation(t *testing.T) {
	bin := testbin.Shoal(t)
	certs := newTestCerts(t)
	root := t.TempDir()
	secretFile := filepath.Join(root, "secret")
	if err := os.WriteFile(secretFile, []byte(testClusterSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	dirs := []string{filepath.Join(root, "d")}
	ctx := context.Background()
	start := func(tlsDir string) (addr string, c *nodeclient.Client, kill func() error) {
		p, _ := nodetest.StartProcess(t, bin, dirs, "--tls-dir", tlsDir, "--cluster-secret-file", secretFile)
		c, err := nodeclient.Dial(p.Addr(), nodeclient.WithCredentials(nodeclient.Credentials{Secret: testClusterSecret, TLS: certs.client}),
			nodeclient.WithAppToken(nodetest.AppToken))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return p.Addr(), c, p.Kill
	}
	// presented is the fingerprint of the certificate the node at addr
	// shows a client of its CA.
	presented := func(addr string) string {
		conn, err := tls.Dial("tcp", addr, certs.client.ClientConfig("127.0.0.1", "", ""))
		if err != nil {
			t.Fatalf("handshake with %s: %v", addr, err)
		}
		defer conn.Close()
		return pki.Fingerprint(conn.ConnectionState().PeerCertificates[0])
	}
	fingerprint := func(dir string) string {
		id, err := pki.LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		return id.Fingerprint()
	}

	addr, c, kill := start(certs.nodeDir)
	oldPrint := fingerprint(certs.nodeDir)
	if got := presented(addr); got != oldPrint {
		t.Fatalf("the node presents %s, not its certificate %s", got, oldPrint)
	}
	const app, R = "rotated", 8
	nodetest.Register(t, c, app)
	layout, err := c.RegisterWorker(ctx, app, "w0", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var ranges []*shufflepb.BlockRange
	for m := range uint32(3) {
		out, _ := writeSortedOutput(t, layout, app, 0, m, 0, genFixtureBlocks(uint64(m)+7, R))
		mustCommit(t, c, app, out)
		ranges = append(ranges, &shufflepb.BlockRange{Map: m, ReduceEnd: R})
	}
	before, err := fetchBlocks(t, c, app, 0, DefaultChunkSize, ranges...)
	if err != nil || len(before) != 3*R {
		t.Fatalf("fetch before the rotation: %d blocks, %v", len(before), err)
	}

	// A new certificate for the same node, the old one removed.
	newDir := filepath.Join(root, "node-tls-2")
	id, err := certs.ca.Issue(pki.Request{Name: "n1", Role: pki.RoleNode, Hosts: []string{"127.0.0.1", "localhost"}, ValidFor: 2 * time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := id.WriteDir(newDir); err != nil {
		t.Fatal(err)
	}
	if err := kill(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(certs.nodeDir); err != nil {
		t.Fatal(err)
	}
	addr, c, _ = start(newDir)
	if got, want := presented(addr), fingerprint(newDir); got != want || got == oldPrint {
		t.Fatalf("after the rotation the node presents %s, want the new certificate %s (the old was %s)", got, want, oldPrint)
	}
	after, err := fetchBlocks(t, c, app, 0, DefaultChunkSize, ranges...)
	if err != nil {
		t.Fatalf("fetch after the rotation: %v", err)
	}
	if !maps.EqualFunc(before, after, bytes.Equal) {
		t.Fatalf("after the rotation the node serves %d blocks, not the %d committed before, byte for byte", len(after), len(before))
	}
}

// TestNodeMetricsBeyondLoopback: a node's metrics served beyond loopback
// are HTTPS with mutual TLS against its CA: a plain scrape, one without a
// certificate and one with another CA's get nothing; a scraper with a
// certificate of the cluster's CA gets the figures. Without a certificate
// of its own, the node refuses to serve them beyond loopback.
func TestNodeMetricsBeyondLoopback(t *testing.T) {
	bin := testbin.Shoal(t)
	certs := newTestCerts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := []string{"SHOAL_CLUSTER_SECRET=" + testClusterSecret}
	if _, err := nodeproc.Start(ctx, nodeproc.Options{Binary: bin, Dirs: []string{t.TempDir()}, Env: env,
		Args: []string{"--metrics-addr", "0.0.0.0:0"}}); err == nil || !strings.Contains(err.Error(), "--metrics-addr 0.0.0.0:0 is beyond loopback") {
		t.Fatalf("metrics beyond loopback without a certificate: %v, want refused", err)
	}
	p, err := nodeproc.Start(ctx, nodeproc.Options{Binary: bin, Dirs: []string{t.TempDir()}, Env: env,
		Args: []string{"--tls-dir", certs.nodeDir, "--metrics-addr", "0.0.0.0:0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	_, port, err := net.SplitHostPort(p.MetricsAddr())
	if err != nil {
		t.Fatal(err)
	}
	scrape := func(scheme string, cfg *tls.Config) (string, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get(scheme + "://127.0.0.1:" + port + "/metrics")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	anyNode := func(id *pki.Identity) *tls.Config {
		if id == nil {
			return &tls.Config{InsecureSkipVerify: true}
		}
		cfg := id.ClientConfig("127.0.0.1", "", "")
		cfg.NextProtos = nil
		return cfg
	}
	for name, try := range map[string]func() (string, error){
		"plain HTTP":                func() (string, error) { return scrape("http", nil) },
		"HTTPS without certificate": func() (string, error) { return scrape("https", anyNode(nil)) },
		"another CA's certificate":  func() (string, error) { return scrape("https", anyNode(certs.stranger)) },
		"an expired certificate":    func() (string, error) { return scrape("https", anyNode(certs.expired)) },
	} {
		if body, err := try(); err == nil && strings.Contains(body, "shoal_node_") {
			t.Errorf("a scrape with %s got the metrics", name)
		}
	}
	body, err := scrape("https", anyNode(certs.client))
	if err != nil || !strings.Contains(body, "shoal_node_open_streams") {
		t.Fatalf("a scrape with a certificate of the CA: %v\n%.300s", err, body)
	}
}
