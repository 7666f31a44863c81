package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"shoal/client/eventlog"
)

// writeScenario writes the scenario through an eventlog.Writer to a file
// in dir, with live listening, as the driver does.
func writeScenario(t *testing.T, dir string, live *Live) {
	t.Helper()
	w, err := eventlog.Create(filepath.Join(dir, "app1.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if live != nil {
		w.AddListener(live.Listener())
	}
	for _, ev := range scenario() {
		w.Write(ev)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

// apiPaths are every endpoint of the REST API for the scenario.
func apiPaths(app string) []string {
	base := "/api/v1/applications/" + app
	return []string{
		"/api/v1/applications", base, base + "/jobs", base + "/jobs/0", base + "/jobs/1", base + "/stages",
		base + "/stages/2", base + "/stages/2/0", base + "/stages/2/1", base + "/stages/1/0/tasks",
		base + "/stages/1/0/tasks?offset=1&length=1", base + "/workers", base + "/nodes", base + "/storage",
		base + "/checkpoints", base + "/environment", base + "/timeline",
	}
}

// TestLiveEqualsHistory: the live UI's REST API for a finished
// application answers exactly what the history server answers for its
// log.
func TestLiveEqualsHistory(t *testing.T) {
	dir := t.TempDir()
	live, err := NewLive("app1", Options{Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close(context.Background())
	writeScenario(t, dir, live)
	hist, err := NewHistory(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hist.Close()
	for _, p := range apiPaths("app1") {
		lc, lb := get(t, live.Handler(), p)
		hc, hb := get(t, hist.Handler(), p)
		if lc != http.StatusOK || hc != http.StatusOK {
			t.Errorf("GET %s: live %d, history %d", p, lc, hc)
			continue
		}
		if lb != hb {
			t.Errorf("GET %s differs:\nlive:    %s\nhistory: %s", p, lb, hb)
		}
	}
	var tasks TaskPage
	_, b := get(t, live.Handler(), "/api/v1/applications/app1/stages/1/0/tasks?offset=1&length=1")
	if err := json.Unmarshal([]byte(b), &tasks); err != nil || tasks.Total != 3 || len(tasks.Tasks) != 1 || tasks.Tasks[0].Status != "lost" {
		t.Errorf("a page of tasks: %+v, %v", tasks, err)
	}
	_, metrics := get(t, live.Handler(), "/metrics")
	for _, want := range []string{`shoal_driver_tasks_total{status="lost"} 1`, `shoal_driver_jobs_total{status="succeeded"} 2`,
		`shoal_driver_shuffle_bytes_total{kind="read_remote"} 3000`, `shoal_driver_workers{state="lost"} 1`, `shoal_driver_nodes{state="lost"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestPagesAndErrors(t *testing.T) {
	dir := t.TempDir()
	writeScenario(t, dir, nil)
	hist, err := NewHistory(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hist.Close()
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/", 200, `href="/app/app1/"`},
		{"/app/app1/", 200, `id="job-0" data-status="succeeded"`},
		{"/app/app1/job/0/", 200, `2 attempts`},
		{"/app/app1/job/1/", 200, `class="box skipped"`},
		{"/app/app1/stages/", 200, `id="stage-2-1"`},
		{"/app/app1/stage/1/0/", 200, `id="count-lost">1<`},
		{"/app/app1/stage/2/0/", 200, `id="fetch-failures"`},
		{"/app/app1/stage/2/", 200, `Stage 2 · attempt 1`},
		{"/app/app1/workers/", 200, `id="worker-w2" data-state="lost"`},
		{"/app/app1/nodes/", 200, `connection refused`},
		{"/app/app1/storage/", 200, `1 of 2`},
		{"/app/app1/environment/", 200, `go1.x`},
		{"/static/style.css", 200, `body{`},
		{"/app/nope/", 404, `no application "nope"`},
		{"/app/app1/job/9/", 404, "not found"},
		{"/app/app1/stage/2/7/", 404, "not found"},
		{"/api/v1/applications/nope/jobs", 404, `"error":"ui: no application \"nope\"`},
		{"/api/v1/applications/app1/stages/2/7", 404, `stage 2 has no attempt`},
		{"/api/v1/applications/app1/stages/1/0/tasks?length=0", 400, `length \"0\"`},
	} {
		code, body := get(t, hist.Handler(), c.path)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %d, want %d with %q; body:\n%.600s", c.path, code, c.code, c.want, body)
		}
	}
}

// TestHistoryFollowsARunningLog shows a log still being written as
// incomplete, and what is appended to it on the next request.
func TestHistoryFollowsARunningLog(t *testing.T) {
	dir := t.TempDir()
	w, err := eventlog.Create(filepath.Join(dir, "running.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	evs := scenario()
	for _, ev := range evs[:10] {
		w.Write(ev)
	}
	hist, err := NewHistory(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hist.Close()
	app := func() Application {
		_, b := get(t, hist.Handler(), "/api/v1/applications/app1")
		var a Application
		if err := json.Unmarshal([]byte(b), &a); err != nil {
			t.Fatal(err, b)
		}
		return a
	}
	if a := app(); a.Status != "incomplete" || a.Complete || a.Tasks["running"] != 2 {
		t.Errorf("a log being written: %+v", a)
	}
	for _, ev := range evs[10:] {
		w.Write(ev)
	}
	if a := app(); a.Status != "succeeded" || !a.Complete || a.Tasks["succeeded"] != 4 {
		t.Errorf("the same log complete: %+v", a)
	}
	if _, err := NewHistory(filepath.Join(dir, "running.jsonl"), Options{}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("NewHistory(a file) = %v", err)
	}
}

// TestListenerNeverBlocks: a full queue drops events and counts them,
// and the pages say so.
func TestListenerNeverBlocks(t *testing.T) {
	live, err := NewLive("app1", Options{EventBuffer: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close(context.Background())
	// Hold the model's goroutine so nothing is consumed meanwhile.
	hold, held := make(chan struct{}), make(chan struct{})
	go live.e.t.do(func(*model) { close(held); <-hold })
	<-held
	w := eventlog.NewWriter(nil)
	w.AddListener(live.Listener())
	done := make(chan struct{})
	go func() {
		for _, ev := range scenario() {
			w.Write(ev)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the writer blocked on the UI")
	}
	close(hold)
	want := int64(len(scenario()) - 1)
	if got := live.e.t.dropped.Load(); got != want {
		t.Errorf("dropped %d events, want %d", got, want)
	}
	if _, body := get(t, live.Handler(), "/app/app1/"); !strings.Contains(body, fmt.Sprintf("dropped %d events", want)) {
		t.Errorf("the Jobs page does not say events were dropped")
	}
}

// TestListenOnlyOnLoopback: the UI authenticates no one, so an address
// beyond loopback is refused, saying how to reach the UI instead.
func TestListenOnlyOnLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:4040", "example.com:4040"} {
		s := &Server{}
		if err := s.Listen(addr, true); err == nil || !strings.Contains(err.Error(), "beyond loopback") {
			t.Errorf("Listen(%q): %v, want refused", addr, err)
		}
	}
	addrs := []string{"127.0.0.1:0", "localhost:0"}
	if l, err := net.Listen("tcp", "[::1]:0"); err == nil { // where the machine has IPv6
		l.Close()
		addrs = append(addrs, "[::1]:0")
	}
	for _, addr := range addrs {
		hist, err := NewHistory(t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := hist.Listen(addr, true); err != nil {
			t.Errorf("Listen(%q): %v", addr, err)
		}
		hist.Close()
	}
}
