package shuffleservice

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"shoal/blockstore"
	"shoal/internal/nodeproc"
	"shoal/internal/testbin"
	"shoal/shuffleservice/internal/nodetest"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// TestAppIsolation runs two applications on one real node process, both
// with the cluster secret: the second (and a caller with no application
// token) is refused every call about the first's data, gets no byte of
// it, and learns nothing of it from its own evictions; the first's data
// is intact. The binding survives a SIGKILL and restart of the node.
func TestAppIsolation(t *testing.T) {
	bin := testbin.Shoal(t)
	root := t.TempDir()
	dirs := []string{filepath.Join(root, "d")}
	const secret = "isolation test cluster secret"
	secretFile := filepath.Join(root, "secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	const ownerToken, intruderToken = "owner-token-0123456789", "intruder-token-9876543210"
	args := []string{"--cluster-secret-file", secretFile, "--cache-bytes", "1000"}
	start := func() *nodeproc.Process {
		p, _ := nodetest.StartProcess(t, bin, dirs, args...)
		return p
	}
	ctx := context.Background()
	dial := func(addr string, opts ...nodeclient.DialOption) *nodeclient.Client {
		c, err := nodeclient.Dial(addr, append(opts, nodeclient.WithClusterSecret(secret))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	node := start()
	addr := node.Addr()
	owner := dial(addr, nodeclient.WithAppToken(ownerToken))
	intruder := dial(addr, nodeclient.WithAppToken(intruderToken))
	anonymous := dial(addr)

	if err := owner.RegisterApp(ctx, "a", time.Hour); err != nil {
		t.Fatal(err)
	}
	layout, err := owner.RegisterWorker(ctx, "a", "w0", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	out, blocks := writeSortedOutput(t, layout, "a", 0, 0, 0, genFixtureBlocks(7, 4))
	mustCommit(t, owner, "a", out)
	ownBlock := blockstore.BlockID{App: "a", RDD: 1, Partition: 0}
	mustPutBlock(t, owner, ownBlock, blockstore.MemorySer, 0, 600)
	if err := intruder.RegisterApp(ctx, "b", time.Hour); err != nil {
		t.Fatal(err)
	}

	fetchAll := &shufflepb.FetchRequest{App: "a", Blocks: []*shufflepb.BlockRange{{ReduceEnd: 4}}}
	calls := []struct {
		name string
		call func(c *nodeclient.Client) error
	}{
		{"RegisterApp", func(c *nodeclient.Client) error { return c.RegisterApp(ctx, "a", time.Minute) }},
		{"RegisterWorker", func(c *nodeclient.Client) error { _, err := c.RegisterWorker(ctx, "a", "w9", 1); return err }},
		{"Heartbeat", func(c *nodeclient.Client) error { return c.Heartbeat(ctx, "a") }},
		{"CommitMapOutput", func(c *nodeclient.Client) error { _, err := c.CommitMapOutput(ctx, "a", out); return err }},
		{"Fetch", func(c *nodeclient.Client) error {
			return c.Fetch(ctx, fetchAll, func(ch *shufflepb.FetchChunk) error {
				t.Errorf("a chunk of %d bytes of the first application's shuffle reached another caller", len(ch.GetData()))
				return nil
			})
		}},
		{"RemoveShuffle", func(c *nodeclient.Client) error { return c.RemoveShuffle(ctx, "a", 0) }},
		{"PutBlock", func(c *nodeclient.Client) error {
			_, _, err := c.PutBlock(ctx, ownBlock, blockstore.DiskOnly, 0, []byte("forged"))
			return err
		}},
		{"GetBlock", func(c *nodeclient.Client) error {
			data, _, found, err := c.GetBlock(ctx, ownBlock)
			if found || len(data) > 0 {
				t.Errorf("GetBlock of the first application's block found it (%d bytes)", len(data))
			}
			return err
		}},
		{"RemoveBlocks", func(c *nodeclient.Client) error { _, err := c.RemoveBlocks(ctx, "a", 1); return err }},
		{"StartWorkers", func(c *nodeclient.Client) error {
			_, err := c.StartWorkers(ctx, &shufflepb.StartWorkersRequest{App: "a", BinarySha256: strings.Repeat("0", 64)})
			return err
		}},
		{"StopWorker", func(c *nodeclient.Client) error { return c.StopWorker(ctx, "a", "w0") }},
		{"Workers", func(c *nodeclient.Client) error { _, _, err := c.Workers(ctx, "a"); return err }},
		{"RemoveApp", func(c *nodeclient.Client) error { return c.RemoveApp(ctx, "a") }},
	}
	attack := func() {
		t.Helper()
		for _, tc := range calls {
			err := tc.call(intruder)
			if status.Code(err) != codes.PermissionDenied || !errors.Is(err, shuffle.ErrPermissionDenied) {
				t.Errorf("%s with another application's token: %v, want PermissionDenied", tc.name, err)
			}
			err = tc.call(anonymous)
			if status.Code(err) != codes.Unauthenticated || !errors.Is(err, shuffle.ErrUnauthenticated) {
				t.Errorf("%s without an application token: %v, want Unauthenticated", tc.name, err)
			}
			for _, tok := range []string{ownerToken, intruderToken, secret} {
				if err != nil && strings.Contains(err.Error(), tok) {
					t.Errorf("%s: the error carries a secret: %v", tc.name, err)
				}
			}
		}
	}
	// intact checks the first application's shuffle and (if block)
	// cached block as the first application sees them.
	intact := func(owner *nodeclient.Client, block bool) {
		t.Helper()
		got, err := fetchBlocks(t, owner, "a", 0, DefaultChunkSize, fetchAll.Blocks...)
		if err != nil {
			t.Fatalf("the owner's fetch: %v", err)
		}
		for r, b := range blocks {
			if !bytes.Equal(got[blockID{0, uint32(r)}], b) {
				t.Fatalf("the owner's block %d differs after the attacks", r)
			}
		}
		if block {
			checkBlock(t, owner, ownBlock, blockstore.MemorySer, 600)
		}
	}
	attack()
	intact(owner, true)

	// The second application's put evicts the first's block from memory:
	// the eviction is not reported to it.
	_, evicted := mustPutBlock(t, intruder, blockstore.BlockID{App: "b", RDD: 1, Partition: 0}, blockstore.MemorySer, 0, 600)
	for _, e := range evicted {
		if e.ID.App != "b" {
			t.Errorf("a put of application b reported the eviction of %s", e.ID)
		}
	}
	if _, _, found, err := owner.GetBlock(ctx, ownBlock); err != nil || found {
		t.Fatalf("the owner's MemorySer block after b's put: found %v, %v (want evicted: the test's premise)", found, err)
	}

	// A node restarted on its directories keeps each application's binding.
	if err := node.Kill(); err != nil {
		t.Fatal(err)
	}
	addr = start().Addr()
	owner = dial(addr, nodeclient.WithAppToken(ownerToken))
	intruder = dial(addr, nodeclient.WithAppToken(intruderToken))
	anonymous = dial(addr)
	attack()
	intact(owner, false)
	if err := owner.RemoveApp(ctx, "a"); err != nil {
		t.Fatalf("the owner's RemoveApp: %v", err)
	}
}

// TestAppTokenNeverLogged makes the node refuse calls with and without
// application tokens, at debug level, and looks for the tokens in its
// log.
func TestAppTokenNeverLogged(t *testing.T) {
	logs := &logBuffer{}
	_, c := newTestServer(t, func(o *Options) { o.Logger = debugLogger(logs) })
	ctx := context.Background()
	nodetest.Register(t, c, "a")
	const other = "another-application-token-42"
	intruder, err := nodeclient.Dial(c.Addr(), nodeclient.WithAppToken(other))
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	if err := intruder.RegisterApp(ctx, "a", 0); !errors.Is(err, shuffle.ErrPermissionDenied) {
		t.Fatalf("RegisterApp of a taken application: %v", err)
	}
	if err := intruder.Heartbeat(ctx, "a"); !errors.Is(err, shuffle.ErrPermissionDenied) {
		t.Fatalf("Heartbeat: %v", err)
	}
	log := logs.String()
	if !strings.Contains(log, "refused a call") {
		t.Fatalf("no refusal logged:\n%s", log)
	}
	for _, tok := range []string{nodetest.AppToken, other} {
		if strings.Contains(log, tok) {
			t.Errorf("the node's log carries an application token:\n%s", log)
		}
	}
}

// TestEveryCallIsScoped checks that every RPC of the node service either
// names an application where the isolation check finds it (appNamed), or
// is one of the node-wide calls that reveal no application's data: a new
// RPC cannot slip past the check unnoticed.
func TestEveryCallIsScoped(t *testing.T) {
	nodeWide := map[string]bool{"Status": true, "HasBinary": true, "PutBinary": true}
	svc := shufflepb.File_shuffle_proto.Services().ByName("Shuffle")
	methods := svc.Methods()
	for i := range methods.Len() {
		m := methods.Get(i)
		mt, err := protoregistry.GlobalTypes.FindMessageByName(m.Input().FullName())
		if err != nil {
			t.Fatal(err)
		}
		msg := mt.New()
		setApp(msg, "target")
		app, ok := appNamed(msg.Interface())
		switch {
		case nodeWide[string(m.Name())]:
			if ok {
				t.Errorf("%s is listed as node-wide but names application %q", m.Name(), app)
			}
		case !ok || app != "target":
			t.Errorf("%s: the isolation check finds no application in %s (%q, %v): teach appNamed where it is, or list the call as node-wide", m.Name(), m.Input().FullName(), app, ok)
		}
	}
}

// setApp sets every string field named app in msg and in the messages it
// holds (a BlockId, a PutBlockHeader).
func setApp(msg protoreflect.Message, app string) {
	fields := msg.Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		switch {
		case f.Name() == "app" && f.Kind() == protoreflect.StringKind:
			msg.Set(f, protoreflect.ValueOfString(app))
		case f.Kind() == protoreflect.MessageKind && !f.IsList() && !f.IsMap():
			setApp(msg.Mutable(f).Message(), app)
		}
	}
}
