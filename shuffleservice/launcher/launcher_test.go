package launcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shoal/internal/poll"
	"shoal/shuffleservice/internal/workertest"
)

const testSecret = "s3cret-of-the-cluster"

// startFake starts n fake workers of app in mode (fakeworker's first
// argument), with SHOAL_TEST_OUT a fresh directory, which it returns.
func startFake(t testing.TB, l *Launcher, app, mode string, n int) ([]Worker, string) {
	t.Helper()
	d := putFile(t, l, fakeWorker(t), "")
	out := t.TempDir()
	ws, err := l.Start(Spec{
		App: app, Binary: d, Workers: n,
		Env:  []string{"SHOAL_TEST_OUT=" + out, "SHOAL_DRIVER=10.1.2.3:4000"},
		Args: []string{mode},
		Node: "10.0.0.7:7077",
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return ws, out
}

// waitRecords waits until the fake workers named have recorded
// themselves in out, and returns the records.
func waitRecords(t testing.TB, out string, names ...string) map[string]workertest.Record {
	t.Helper()
	return workertest.WaitRecords(t, out, names...)
}

func TestStartWorkersEnvironment(t *testing.T) {
	t.Setenv("SHOAL_LEAK", "the node's own environment")
	var started atomic.Int32
	l, logs := newLauncher(t, func(o *Options) {
		o.ClusterSecret = testSecret
		o.Started = func(app, worker string, pid int, replaces string) { started.Add(1) }
	})
	ws, out := startFake(t, l, "app-1", "run", 3)
	ids := []string{"w-n1-1", "w-n1-2", "w-n1-3"}
	if len(ws) != 3 {
		t.Fatalf("Start returned %d workers, want 3", len(ws))
	}
	for i, w := range ws {
		if w.ID != ids[i] || w.State != Running || w.Pid <= 0 || w.Restarts != 0 {
			t.Fatalf("worker %d: %+v, want %s running with a pid", i, w, ids[i])
		}
	}
	recs := waitRecords(t, out, ids...)
	for i, id := range ids {
		r := recs[id]
		if r.Pid != ws[i].Pid {
			t.Errorf("%s: pid %d, Start said %d", id, r.Pid, ws[i].Pid)
		}
		if !strings.HasPrefix(r.Cwd, l.work+string(filepath.Separator)) {
			t.Errorf("%s: working directory %s, want one under %s", id, r.Cwd, l.work)
		}
		want := []string{
			"SHOAL_TEST_OUT=" + out, "SHOAL_DRIVER=10.1.2.3:4000",
			"SHOAL_ROLE=worker", "SHOAL_APP=app-1", "SHOAL_NODE=10.0.0.7:7077", "SHOAL_WORKER_ID=" + id,
			"SHOAL_CLUSTER_SECRET=" + testSecret,
			"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + r.Cwd, "TMPDIR=" + filepath.Join(r.Cwd, "tmp"),
		}
		got := slices.Clone(r.Env)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: environment\n%q\nwant exactly\n%q", id, got, want)
		}
	}
	if n := started.Load(); n != 3 {
		t.Errorf("Started called %d times, want 3", n)
	}
	if l.Live() != 3 {
		t.Errorf("Live = %d, want 3", l.Live())
	}

	// Idempotent: a second Start returns the same workers.
	again, err := l.Start(Spec{App: "app-1", Binary: digestOf([]byte("x")), Workers: 5})
	if err != nil || len(again) != 3 || again[0].ID != ids[0] || again[0].Pid != ws[0].Pid {
		t.Fatalf("second Start: %+v, %v; want the same 3 workers", again, err)
	}
	if l.Live() != 3 || started.Load() != 3 {
		t.Fatalf("second Start started processes: live %d, started %d", l.Live(), started.Load())
	}

	// The workers' output reaches the log, prefixed with their IDs, and
	// the secret does not.
	poll.WaitFor(t, 10*time.Second, "the workers' output in the log", func() bool {
		return strings.Contains(logs.String(), "w-n1-2: fakeworker: up on stderr") && strings.Contains(logs.String(), "w-n1-3: fakeworker: up on stdout")
	})
	if strings.Contains(logs.String(), testSecret) {
		t.Fatal("the cluster secret is in the log")
	}
	if !strings.Contains(logs.String(), "the cluster secret is [cluster secret]") {
		t.Fatal("the worker's line quoting the secret is not in the log, redacted")
	}
}

func TestStartRefusals(t *testing.T) {
	l, _ := newLauncher(t)
	d := putFile(t, l, fakeWorker(t), "")
	for _, tc := range []struct {
		spec Spec
		is   error
	}{
		{Spec{App: "a", Binary: d, Workers: 0}, ErrInvalidArgument},
		{Spec{App: "a", Binary: d, Workers: MaxWorkers + 1}, ErrInvalidArgument},
		{Spec{App: "a", Binary: d, Workers: 1, Env: []string{"SHOAL_ROLE=driver"}}, ErrInvalidArgument},
		{Spec{App: "a", Binary: d, Workers: 1, Env: []string{"LD_PRELOAD=/x.so"}}, ErrInvalidArgument},
		{Spec{App: "a", Binary: digestOf([]byte("not uploaded")), Workers: 1}, ErrUnknownBinary},
		{Spec{App: "a", Binary: "nothex", Workers: 1}, ErrInvalidArgument},
	} {
		if _, err := l.Start(tc.spec); !errors.Is(err, tc.is) {
			t.Errorf("Start(%+v) = %v, want %v", tc.spec, err, tc.is)
		}
	}
	if l.Live() != 0 {
		t.Fatalf("%d workers run after refusals", l.Live())
	}
	if err := l.StopWorker("a", "w-n1-1"); !errors.Is(err, ErrUnknownWorker) {
		t.Fatalf("StopWorker of an unknown worker: %v", err)
	}
}

func TestStopWorkerRestartsWithNewID(t *testing.T) {
	l, _ := newLauncher(t)
	ws, out := startFake(t, l, "app", "run", 2)
	waitRecords(t, out, "w-n1-1", "w-n1-2")
	if err := l.StopWorker("app", "w-n1-1"); err != nil {
		t.Fatal(err)
	}
	recs := waitRecords(t, out, "w-n1-3")
	if workertest.Alive(ws[0].Pid) {
		t.Fatalf("the stopped worker, pid %d, still runs", ws[0].Pid)
	}
	var now []Worker
	poll.WaitFor(t, 5*time.Second, "the slot to show its replacement", func() bool {
		now, _ = l.Workers("app")
		return now[0].ID == "w-n1-3" && now[0].State == Running
	})
	if now[0].Pid != recs["w-n1-3"].Pid || now[0].Restarts != 1 || now[0].LastExit != "signal: killed" {
		t.Fatalf("slot 0 after StopWorker: %+v, want w-n1-3, pid %d, 1 restart, last exit signal: killed", now[0], recs["w-n1-3"].Pid)
	}
	if now[1].ID != "w-n1-2" || now[1].Pid != ws[1].Pid || !workertest.Alive(ws[1].Pid) {
		t.Fatalf("slot 1 changed: %+v", now[1])
	}
	if err := l.StopWorker("app", "w-n1-1"); !errors.Is(err, ErrUnknownWorker) {
		t.Fatalf("StopWorker of a replaced worker: %v, want ErrUnknownWorker", err)
	}
}

func TestStopWorkerKillsItsGroup(t *testing.T) {
	l, _ := newLauncher(t)
	_, out := startFake(t, l, "app", "spawn", 1)
	recs := waitRecords(t, out, "w-n1-1", "w-n1-1-child")
	if err := l.StopWorker("app", "w-n1-1"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"w-n1-1", "w-n1-1-child"} {
		pid := recs[name].Pid
		poll.WaitFor(t, 5*time.Second, fmt.Sprintf("%s (pid %d) to be gone", name, pid), func() bool { return !workertest.Alive(pid) })
	}
}

func TestCrashAtStartFails(t *testing.T) {
	var started atomic.Int32
	l, _ := newLauncher(t, func(o *Options) {
		o.Started = func(app, worker string, pid int, replaces string) { started.Add(1) }
	})
	startFake(t, l, "app", "crash", 1)
	var ws []Worker
	var failure string
	poll.WaitFor(t, 10*time.Second, "the slot to fail", func() bool {
		ws, failure = l.Workers("app")
		return ws[0].State == Failed
	})
	want := "worker w-n1-3 exited at start 3 times: exit status 2; stderr: fakeworker: crashing on purpose\n"
	if failure != want {
		t.Fatalf("failure %q, want %q", failure, want)
	}
	if ws[0].Restarts != 2 || ws[0].Pid != 0 || ws[0].LastExit != "exit status 2" || ws[0].StderrTail != "fakeworker: crashing on purpose\n" {
		t.Fatalf("failed slot: %+v", ws[0])
	}
	if n := started.Load(); n != 3 {
		t.Fatalf("%d processes started, want 3", n)
	}
	// Failed is final: the slot's supervisor has returned, so Detach's
	// Wait has nothing to wait for, and no process was started since.
	l.Detach("app").Wait()
	if n := started.Load(); n != 3 {
		t.Fatalf("%d processes started by the end, want 3", n)
	}
}

func TestOutputIsBounded(t *testing.T) {
	l, logs := newLauncher(t)
	startFake(t, l, "app", "flood", 1)
	var ws []Worker
	poll.WaitFor(t, 10*time.Second, "the flooding worker to fail", func() bool {
		ws, _ = l.Workers("app")
		return ws[0].State == Failed
	})
	tail := ws[0].StderrTail
	if len(tail) > tailBytes || !strings.HasSuffix(tail, "line 999\n") || strings.Contains(tail, "xxx") {
		t.Fatalf("stderr tail of %d bytes ending %q, want at most %d ending with the last line", len(tail), tail[max(0, len(tail)-20):], tailBytes)
	}
	// The 10 KiB line went to the log cut at 4 KiB.
	cut := strings.Repeat("x", maxLine)
	if !strings.Contains(logs.String(), cut) || strings.Contains(logs.String(), cut+"x") {
		t.Fatal("the long line is not in the log cut at 4 KiB")
	}
}

func TestDetachStopsWorkers(t *testing.T) {
	l, _ := newLauncher(t)
	ws, out := startFake(t, l, "stubborn", "run-ignore-term", 2)
	recs := waitRecords(t, out, "w-n1-1", "w-n1-2")
	ws2, out2 := startFake(t, l, "other", "run", 1)
	waitRecords(t, out2, "w-n1-1")
	start := time.Now()
	stopping := l.Detach("stubborn")
	if got, _ := l.Workers("stubborn"); got != nil {
		t.Fatalf("Workers of a detached application: %+v", got)
	}
	stopping.Wait()
	if d := time.Since(start); d < stopGrace {
		t.Fatalf("workers that ignore SIGTERM were gone after %v, before the %v grace: they were not given it", d, stopGrace)
	}
	for _, w := range ws {
		if workertest.Alive(w.Pid) {
			t.Fatalf("worker pid %d survived its application's removal", w.Pid)
		}
	}
	if _, err := os.Stat(filepath.Dir(recs["w-n1-1"].Cwd + "/")); !os.IsNotExist(err) {
		t.Fatalf("working directory %s: %v, want it deleted", recs["w-n1-1"].Cwd, err)
	}
	if !workertest.Alive(ws2[0].Pid) || l.Live() != 1 {
		t.Fatalf("another application's worker was stopped (live %d)", l.Live())
	}
	// Started again after its removal: new workers.
	again, _ := startFake(t, l, "stubborn", "run", 1)
	if again[0].Pid == ws[0].Pid || again[0].State != Running {
		t.Fatalf("Start after Detach: %+v", again)
	}
}

func TestCloseStopsEverything(t *testing.T) {
	l, _ := newLauncher(t)
	a, outA := startFake(t, l, "a", "run", 2)
	b, outB := startFake(t, l, "b", "spawn", 1)
	waitRecords(t, outA, "w-n1-1", "w-n1-2")
	recB := waitRecords(t, outB, "w-n1-1", "w-n1-1-child")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waited for the workers themselves; the child one of them
	// spawned got its SIGKILL with their process group, but it is no
	// one's to wait for here, so its exit is polled for.
	for _, pid := range []int{a[0].Pid, a[1].Pid, b[0].Pid} {
		if workertest.Alive(pid) {
			t.Fatalf("pid %d runs after Close", pid)
		}
	}
	workertest.WaitGone(t, 10*time.Second, "the worker's child to be gone after Close", recB["w-n1-1-child"].Pid)
	if l.Live() != 0 {
		t.Fatalf("Live = %d after Close", l.Live())
	}
	if _, err := l.Start(Spec{App: "c", Binary: digestOf(nil), Workers: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestFirstK(t *testing.T) {
	l, _ := newLauncher(t)
	d := putFile(t, l, fakeWorker(t), "")
	ws, err := l.Start(Spec{App: "app", Binary: d, Workers: 2, Args: []string{"run"}, Env: []string{"SHOAL_TEST_OUT=" + t.TempDir()}, FirstK: 7})
	if err != nil {
		t.Fatal(err)
	}
	if ws[0].ID != "w-n1-7" || ws[1].ID != "w-n1-8" {
		t.Fatalf("IDs %s, %s; want w-n1-7, w-n1-8", ws[0].ID, ws[1].ID)
	}
}

// TestUnstartableWorkerFails: a binary that cannot be executed (gone
// from the disk) counts as a crash at start.
func TestUnstartableWorkerFails(t *testing.T) {
	l, _ := newLauncher(t)
	d := putFile(t, l, fakeWorker(t), "")
	if err := os.Remove(filepath.Join(l.bins.dir, d)); err != nil {
		t.Fatal(err)
	}
	ws, err := l.Start(Spec{App: "app", Binary: d, Workers: 1, Args: []string{"run"}})
	if err != nil {
		t.Fatal(err)
	}
	if ws[0].State != Backoff || ws[0].Pid != 0 || !strings.HasPrefix(ws[0].LastExit, "start: ") {
		t.Fatalf("a worker that could not start: %+v", ws[0])
	}
	var failure string
	poll.WaitFor(t, 10*time.Second, "the slot to fail", func() bool {
		ws, failure = l.Workers("app")
		return ws[0].State == Failed
	})
	if !strings.Contains(failure, "exited at start 3 times: start: ") || ws[0].ID != "w-n1-3" {
		t.Fatalf("failure %q, slot %+v", failure, ws[0])
	}
}
