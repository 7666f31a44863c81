package shuffleservice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"shoal/internal/poll"
	"shoal/internal/testbin"
	"shoal/shuffleservice/internal/nodetest"
	"shoal/shuffleservice/internal/workertest"
	"shoal/shuffleservice/launcher"
	"shoal/shuffleservice/shufflepb"
)

func TestPutBinaryOverGRPC(t *testing.T) {
	s, c := newTestServer(t)
	ctx := context.Background()
	good, err := os.ReadFile(fakeWorkers.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(good)
	d := hex.EncodeToString(sum[:])
	binDir := filepath.Join(s.Layout().Dirs[0], ".binaries")
	cached := func() []string {
		entries, _ := os.ReadDir(binDir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}

	wrong := strings.Repeat("ab", 32)
	err = c.PutBinary(ctx, wrong, int64(len(good)), bytes.NewReader(good))
	if status.Code(err) != codes.InvalidArgument || !errors.Is(err, launcher.ErrInvalidArgument) || !strings.Contains(err.Error(), "digest mismatch: got "+d) {
		t.Fatalf("a digest mismatch: %v", err)
	}
	if got := cached(); len(got) != 0 {
		t.Fatalf("after a refused upload the cache holds %q", got)
	}
	if dynamic, err := os.ReadFile("/bin/true"); err == nil {
		dsum := sha256.Sum256(dynamic)
		err := c.PutBinary(ctx, hex.EncodeToString(dsum[:]), int64(len(dynamic)), bytes.NewReader(dynamic))
		if status.Code(err) != codes.FailedPrecondition || !errors.Is(err, launcher.ErrCannotRun) || !strings.Contains(err.Error(), "dynamically linked") || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
			t.Fatalf("a dynamically linked binary: %v", err)
		}
	}
	if ok, err := c.HasBinary(ctx, d); ok || err != nil {
		t.Fatalf("HasBinary before the upload: %v, %v", ok, err)
	}
	if err := c.PutBinary(ctx, d, int64(len(good)), bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.HasBinary(ctx, d); !ok || err != nil {
		t.Fatalf("HasBinary after the upload: %v, %v", ok, err)
	}
	if got := cached(); !slices.Equal(got, []string{d}) {
		t.Fatalf("the cache holds %q, want the binary only", got)
	}
	if _, err := c.HasBinary(ctx, "nothex"); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("HasBinary of a bad digest: %v", err)
	}
	// Above the node's maximum: refused from the header.
	_, small := newTestServer(t, func(o *Options) { o.MaxBinaryBytes = 1000 })
	if err := small.PutBinary(ctx, d, int64(len(good)), bytes.NewReader(good)); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a binary above MaxBinaryBytes: %v, want ResourceExhausted", err)
	}
}

func TestStartWorkersOverGRPC(t *testing.T) {
	s, c := newTestServer(t, func(o *Options) {
		o.Name = "n7"
		o.Addr = "n7.example:7077"
		o.Workers = 3
	})
	ctx := context.Background()
	d := uploadFakeWorker(t, c)
	_, err := c.StartWorkers(ctx, &shufflepb.StartWorkersRequest{App: "app", BinarySha256: d})
	if status.Code(err) != codes.FailedPrecondition || !errors.Is(err, launcher.ErrAppNotRegistered) {
		t.Fatalf("StartWorkers of an unregistered application: %v", err)
	}
	if err := c.RegisterApp(ctx, "app", 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  *shufflepb.StartWorkersRequest
		code codes.Code
	}{
		{&shufflepb.StartWorkersRequest{App: "app", BinarySha256: strings.Repeat("0", 64)}, codes.NotFound},
		{&shufflepb.StartWorkersRequest{App: "app", BinarySha256: d, Env: []string{"SHOAL_WORKER_ID=x"}}, codes.InvalidArgument},
		{&shufflepb.StartWorkersRequest{App: "app", BinarySha256: d, Env: []string{"HOME=/"}}, codes.InvalidArgument},
		{&shufflepb.StartWorkersRequest{App: "app", BinarySha256: d, Workers: MaxWorkers + 1}, codes.InvalidArgument},
		{&shufflepb.StartWorkersRequest{App: "../x", BinarySha256: d}, codes.InvalidArgument},
	} {
		if _, err := c.StartWorkers(ctx, tc.req); status.Code(err) != tc.code {
			t.Errorf("StartWorkers(%v): %v, want %v", tc.req, err, tc.code)
		}
	}
	out := t.TempDir()
	ws, err := c.StartWorkers(ctx, &shufflepb.StartWorkersRequest{App: "app", BinarySha256: d, Env: []string{"SHOAL_TEST_OUT=" + out}, Args: []string{"run"}})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"w-n7-1", "w-n7-2", "w-n7-3"}
	if len(ws) != 3 {
		t.Fatalf("%d workers with workers=0, want the node's 3", len(ws))
	}
	recs := workertest.WaitRecords(t, out, ids...)
	for i, w := range ws {
		if w.GetId() != ids[i] || w.GetState() != shufflepb.WorkerState_WORKER_STATE_RUNNING || int(w.GetPid()) != recs[ids[i]].Pid {
			t.Fatalf("worker %d: %v, want %s running as pid %d", i, w, ids[i], recs[ids[i]].Pid)
		}
		if env := recs[ids[i]].Env; !slices.Contains(env, "SHOAL_NODE=n7.example:7077") || !slices.Contains(env, "SHOAL_APP=app") {
			t.Fatalf("%s's environment %q lacks the node's advertised address or the app", ids[i], env)
		}
	}
	if st, err := c.Status(ctx); err != nil || st.GetWorkers() != 3 {
		t.Fatalf("status workers %d (%v), want 3", st.GetWorkers(), err)
	}
	again, err := c.StartWorkers(ctx, &shufflepb.StartWorkersRequest{App: "app", BinarySha256: d, Workers: 1})
	if err != nil || len(again) != 3 || again[2].GetPid() != ws[2].GetPid() {
		t.Fatalf("a second StartWorkers: %v, %v; want the 3 running", again, err)
	}
	// The node recorded its workers in its catalogue.
	s.mu.RLock()
	_, recorded := s.apps["app"].workers["w-n7-2"]
	s.mu.RUnlock()
	if !recorded {
		t.Fatal("the node did not record its worker w-n7-2")
	}

	if err := c.StopWorker(ctx, "app", "w-n7-9"); status.Code(err) != codes.NotFound || !errors.Is(err, launcher.ErrUnknownWorker) {
		t.Fatalf("StopWorker of an unknown worker: %v", err)
	}
	if err := c.StopWorker(ctx, "app", "w-n7-2"); err != nil {
		t.Fatal(err)
	}
	workertest.WaitRecords(t, out, "w-n7-4")
	workertest.WaitGone(t, 5*time.Second, "the stopped worker to be gone", int(ws[1].GetPid()))
	var now []*shufflepb.WorkerProcess
	poll.WaitFor(t, 5*time.Second, "slot 1 to run w-n7-4", func() bool {
		now, _, err = c.Workers(ctx, "app")
		return err == nil && now[1].GetId() == "w-n7-4" && now[1].GetState() == shufflepb.WorkerState_WORKER_STATE_RUNNING
	})
	if now[1].GetRestarts() != 1 || now[1].GetLastExit() != "signal: killed" {
		t.Fatalf("slot 1 after StopWorker: %v", now[1])
	}

	// A binary that crashes at start: reported with its stderr.
	if err := c.RegisterApp(ctx, "crashing", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartWorkers(ctx, &shufflepb.StartWorkersRequest{App: "crashing", BinarySha256: d, Workers: 1, Args: []string{"crash"}}); err != nil {
		t.Fatal(err)
	}
	var failure string
	poll.WaitFor(t, 10*time.Second, "the crashing worker to be given up", func() bool {
		_, failure, err = c.Workers(ctx, "crashing")
		return err == nil && failure != ""
	})
	if !strings.Contains(failure, "exited at start 3 times: exit status 2; stderr: fakeworker: crashing on purpose") {
		t.Fatalf("failure %q", failure)
	}
}

func TestRemoveAppAndExpiryStopWorkers(t *testing.T) {
	s, c := newTestServer(t, func(o *Options) { o.JanitorInterval = 20 * time.Millisecond })
	ctx := context.Background()
	removed, outR := startFakeWorkers(t, c, "removed", "run-ignore-term", 2)
	kept, outK := startFakeWorkers(t, c, "kept", "run", 1)
	workertest.WaitRecords(t, outR, removed[0].GetId(), removed[1].GetId())
	workertest.WaitRecords(t, outK, kept[0].GetId())
	if err := c.RemoveApp(ctx, "removed"); err != nil {
		t.Fatal(err)
	}
	// RemoveApp returns once they are gone (SIGKILL after 2 s: they
	// ignore SIGTERM).
	for _, p := range pids(removed) {
		if workertest.Alive(p) {
			t.Fatalf("worker pid %d of a removed application runs", p)
		}
	}
	if !workertest.Alive(int(kept[0].GetPid())) {
		t.Fatal("another application's worker was stopped")
	}
	if ws, _, err := c.Workers(ctx, "removed"); err != nil || len(ws) != 0 {
		t.Fatalf("Workers of a removed application: %v, %v", ws, err)
	}
	if _, err := c.StartWorkers(ctx, &shufflepb.StartWorkersRequest{App: "removed", BinarySha256: strings.Repeat("0", 64)}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("StartWorkers after RemoveApp: %v, want FailedPrecondition", err)
	}

	// Expiry: an application whose driver stopped heartbeating. Its
	// workers, running and registering (as a worker restarted forever
	// would), do not keep it alive.
	expiring, outE := startFakeWorkers(t, c, "expiring", "run", 2)
	workertest.WaitRecords(t, outE, expiring[0].GetId(), expiring[1].GetId())
	if err := c.RegisterApp(ctx, "expiring", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	poll.WaitFor(t, 10*time.Second, "the expired application's workers to be gone", func() bool {
		c.RegisterWorker(ctx, "expiring", expiring[0].GetId(), int(expiring[0].GetPid())) // fails once expired
		for _, p := range pids(expiring) {
			if workertest.Alive(p) {
				return false
			}
		}
		return true
	})
	if s.Metrics().AppsExpired != 1 {
		t.Fatalf("metrics %+v", s.Metrics())
	}
	if st, err := c.Status(ctx); err != nil || st.GetWorkers() != 1 {
		t.Fatalf("status workers %d (%v), want kept's 1", st.GetWorkers(), err)
	}
}

func TestCloseStopsWorkers(t *testing.T) {
	s, c := newTestServer(t)
	ws, out := startFakeWorkers(t, c, "app", "spawn", 2)
	recs := workertest.WaitRecords(t, out, ws[0].GetId(), ws[1].GetId(), ws[0].GetId()+"-child")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(pids(ws), recs[ws[0].GetId()+"-child"].Pid) {
		if workertest.Alive(p) {
			t.Fatalf("pid %d runs after the node's Close", p)
		}
	}
}

// TestWorkerIDsAcrossRestarts: a node restarted on its directories never
// gives a worker ID it gave before.
func TestWorkerIDsAcrossRestarts(t *testing.T) {
	opts := testNodeOptions(t)
	opts.CatalogFS = vfs.NewMem()
	opts.Name = "n"
	s1, c1 := startTestServer(t, opts)
	ctx := context.Background()
	ws, out := startFakeWorkers(t, c1, "app", "run", 2)
	workertest.WaitRecords(t, out, "w-n-1", "w-n-2")
	if ws[0].GetId() != "w-n-1" {
		t.Fatalf("first ID %s", ws[0].GetId())
	}
	if err := c1.StopWorker(ctx, "app", "w-n-1"); err != nil {
		t.Fatal(err)
	}
	workertest.WaitRecords(t, out, "w-n-3")
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	_, c2 := startTestServer(t, opts)
	d := uploadFakeWorker(t, c2) // cached already: not sent again
	again, err := c2.StartWorkers(ctx, &shufflepb.StartWorkersRequest{App: "app", BinarySha256: d, Workers: 2, Env: []string{"SHOAL_TEST_OUT=" + out}, Args: []string{"run"}})
	if err != nil {
		t.Fatal(err)
	}
	if again[0].GetId() != "w-n-4" || again[1].GetId() != "w-n-5" {
		t.Fatalf("IDs after the restart %s, %s; want w-n-4, w-n-5", again[0].GetId(), again[1].GetId())
	}
}

// TestNodeKilledLeavesNoWorker: the workers of a node process killed
// with SIGKILL die with it (parent-death signal).
func TestNodeKilledLeavesNoWorker(t *testing.T) {
	bin := testbin.Shoal(t)
	root := t.TempDir()
	p, c := nodetest.StartProcess(t, bin, []string{filepath.Join(root, "a")}, "--name", "doomed")
	ws, out := startFakeWorkers(t, c, "app", "run-ignore-term", 2)
	recs := workertest.WaitRecords(t, out, "w-doomed-1", "w-doomed-2")
	for i, w := range ws {
		if int(w.GetPid()) != recs[w.GetId()].Pid {
			t.Fatalf("worker %d: %v, recorded pid %d", i, w, recs[w.GetId()].Pid)
		}
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	workertest.WaitGone(t, 10*time.Second, "the killed node's workers to die", pids(ws)...)
}
