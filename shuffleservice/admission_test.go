package shuffleservice

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"shoal/internal/poll"
	"shoal/shuffleservice/internal/nodetest"
	"shoal/shuffleservice/internal/workertest"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shufflepb"
)

const testClusterSecret = "correct horse battery staple 42"

// TestAdmission: a node with a cluster secret refuses every call, unary
// or streaming, without it or with another, and serves with it; neither
// the secret nor a value presented appears in its log, the workers'
// output included.
func TestAdmission(t *testing.T) {
	logs := &logBuffer{}
	reg := prometheus.NewRegistry()
	s, open := newTestServer(t, func(o *Options) {
		o.ClusterSecret = testClusterSecret
		o.Name = "adm"
		o.Logger = debugLogger(logs)
		o.Registry = reg
	})
	addr := open.Addr()
	ctx := context.Background()
	dial := func(opts ...nodeclient.DialOption) *nodeclient.Client {
		c, err := nodeclient.Dial(addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	const wrongSecret = "correct horse battery staple 4"
	for _, tc := range []struct {
		name string
		c    *nodeclient.Client
		says string
	}{
		{"no secret", open, "cluster secret required"},
		{"wrong secret", dial(nodeclient.WithClusterSecret(wrongSecret)), "wrong cluster secret"},
		{"longer secret", dial(nodeclient.WithClusterSecret(testClusterSecret + "!")), "wrong cluster secret"},
	} {
		check := func(call string, err error) {
			t.Helper()
			if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%s, %s: %v, want Unauthenticated %q", tc.name, call, err, tc.says)
			}
		}
		_, err := tc.c.Status(ctx)
		check("Status (unary)", err)
		check("RegisterApp (unary)", tc.c.RegisterApp(ctx, "app", 0))
		check("Fetch (server streaming)", tc.c.Fetch(ctx, &shufflepb.FetchRequest{App: "app", Blocks: []*shufflepb.BlockRange{{ReduceEnd: 1}}}, func(*shufflepb.FetchChunk) error { return nil }))
		check("PutBinary (client streaming)", tc.c.PutBinary(ctx, strings.Repeat("0", 64), 3, strings.NewReader("abc")))
		_, err = tc.c.StartWorkers(ctx, &shufflepb.StartWorkersRequest{App: "app", BinarySha256: strings.Repeat("0", 64)})
		check("StartWorkers (unary)", err)
	}

	if m := s.Metrics(); m.RefusedCalls != 15 {
		t.Errorf("%d calls refused, want the 15 above", m.RefusedCalls)
	}
	if v := gathered(t, reg, "shoal_node_refused_calls_total"); v != 15 {
		t.Errorf("shoal_node_refused_calls_total %v, want 15", v)
	}

	c := dial(nodeclient.WithClusterSecret(testClusterSecret), nodeclient.WithAppToken(nodetest.AppToken))
	st, err := c.Status(ctx)
	if err != nil || st.GetName() != "adm" {
		t.Fatalf("Status with the secret: %v, %v", st, err)
	}
	// The workers get the secret, and print it: the node's log must not.
	ws, out := startFakeWorkers(t, c, "app", "run", 2)
	recs := workertest.WaitRecords(t, out, ws[0].GetId(), ws[1].GetId())
	if env := strings.Join(recs[ws[0].GetId()].Env, "\n"); !strings.Contains(env, "\nSHOAL_CLUSTER_SECRET="+testClusterSecret+"\n") {
		t.Fatalf("the worker's environment lacks the cluster secret:\n%s", env)
	}
	if v := gathered(t, reg, "shoal_node_workers"); v != 2 {
		t.Errorf("shoal_node_workers %v, want 2", v)
	}
	if v := gathered(t, reg, "shoal_node_cached_binaries"); v != 1 {
		t.Errorf("shoal_node_cached_binaries %v, want 1", v)
	}
	poll.WaitFor(t, 10*time.Second, "the workers' output in the node's log", func() bool {
		return strings.Contains(logs.String(), ws[1].GetId()+": fakeworker: up on stdout; the cluster secret is [cluster secret]")
	})
	if err := c.RemoveApp(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	log := logs.String()
	for _, s := range []string{testClusterSecret, wrongSecret} {
		if strings.Contains(log, s) {
			t.Fatalf("the node's log holds a secret %q", s)
		}
	}
	if !strings.Contains(log, "refused a call") {
		t.Fatalf("the node did not log a refusal:\n%s", log)
	}
}

// gathered is the value of the unlabelled metric name in reg.
func gathered(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name || len(mf.GetMetric()) != 1 {
			continue
		}
		m := mf.GetMetric()[0]
		if m.GetGauge() != nil {
			return m.GetGauge().GetValue()
		}
		return m.GetCounter().GetValue()
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// TestNodeWithoutSecretOnlyOnLoopback: RunNode serves on loopback without
// a secret and refuses any other address without one, or without a
// certificate.
func TestNodeWithoutSecretOnlyOnLoopback(t *testing.T) {
	lis, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	opts := testNodeOptions(t)
	err = RunNode(context.Background(), lis, opts, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--cluster-secret-file") {
		t.Fatalf("RunNode on %s without a secret: %v, want a refusal naming --cluster-secret-file", lis.Addr(), err)
	}
	if _, err := net.Dial("tcp", lis.Addr().String()); err == nil {
		t.Fatal("the refused node's listener is still open")
	}

	// With a secret but no certificate, it refuses too.
	lis, err = net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	opts = testNodeOptions(t)
	opts.ClusterSecret = testClusterSecret
	err = RunNode(context.Background(), lis, opts, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--tls-dir") {
		t.Fatalf("RunNode on %s without a certificate: %v, want a refusal naming --tls-dir", lis.Addr(), err)
	}

	// With both it serves, until its context ends.
	lis, err = net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	opts = testNodeOptions(t)
	opts.ClusterSecret = testClusterSecret
	certs := newTestCerts(t)
	opts.TLSDir = certs.nodeDir
	go func() { done <- RunNode(ctx, lis, opts, io.Discard) }()
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	c, err := nodeclient.Dial("127.0.0.1:"+port, nodeclient.WithCredentials(nodeclient.Credentials{Secret: testClusterSecret, TLS: certs.client}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("Status of a node with a secret on 0.0.0.0: %v", err)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("RunNode: %v", err)
	}
}
