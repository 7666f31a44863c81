package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"shoal/client"
	"shoal/client/eventlog"
	"shoal/client/ui"
	"shoal/internal/testbin"
)

func TestMain(m *testing.M) {
	client.Init() // in a worker process (the test binary re-executed) this runs the worker
	os.Exit(m.Run())
}

// need returns the path of a Debian package's program the test needs.
// In CI (CI=true) a missing one fails the test (`make test` installs it);
// elsewhere the test is skipped.
func need(t *testing.T, pkg string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found: apt-get install %s (make test installs it)", names[0], pkg)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

func readLog(t *testing.T, path string) []eventlog.Event {
	t.Helper()
	evs, err := eventlog.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// gatedOne pairs a word with 1; words starting with "late" wait for the
// Gate file first, so the test can kill a worker while it runs them.
type gatedOne struct{ Gate string }

func (g gatedOne) Map(w string) client.KV[string, int64] {
	if strings.HasPrefix(w, "late") {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(g.Gate); err == nil {
				break
			}
		}
	}
	return client.KV[string, int64]{Key: w, Value: 1}
}

func splitWords(line string, emit func(string)) {
	for _, w := range strings.Fields(line) {
		emit(w)
	}
}

func addInt64(a, b int64) int64 { return a + b }

func keep(kv client.KV[string, int64]) client.KV[string, int64] { return kv }

// killedWordCount runs a word count on a local cluster with the live UI
// on, and kills the worker running the first gated map task. It closes
// the context and returns its UI (still serving: UIKeep), the event log's
// path and the killed worker.
func killedWordCount(t *testing.T, opts client.Options) (*ui.Live, string, string) {
	t.Helper()
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(logs, "wordcount.jsonl")
	opts.Binary, opts.NodeBinary, opts.EventLog, opts.Dir = os.Args[0], testbin.Shoal(t), log, t.TempDir()
	opts.UIAddr, opts.UIKeep = "127.0.0.1:0", true
	c, err := client.NewContext(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	live := c.UI()
	t.Cleanup(func() {
		c.Close()
		live.Close(context.Background())
	})
	var lines []string
	for i := range 8 {
		prefix := "early"
		if i >= 4 {
			prefix = "late"
		}
		for j := range 50 {
			lines = append(lines, fmt.Sprintf("%s%d common word%d %s", prefix, i, j%7, prefix))
		}
	}
	gate := filepath.Join(dir, "gate")
	words := client.FlatMap(client.Parallelize(c, lines, 8), splitWords)
	counts := client.ReduceByKey(client.MapWith[string, client.KV[string, int64]](words, gatedOne{Gate: gate}), addInt64, 4).SetName("counts")
	done := make(chan error, 1)
	go func() {
		got, err := client.Collect(context.Background(), counts)
		if err == nil && len(got) == 0 {
			err = fmt.Errorf("no words counted")
		}
		done <- err
	}()
	var victim string
	waitFor(t, time.Minute, "a gated map task to start", func() bool {
		for _, ev := range readLog(t, log) {
			if s, ok := ev.(*eventlog.TaskStart); ok && s.Kind == "map" && s.Partition >= 4 {
				victim = s.Worker
				return true
			}
		}
		return false
	})
	if err := c.Local().KillWorker(victim); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the killed worker's tasks to be reported lost", func() bool {
		return slices.ContainsFunc(readLog(t, log), func(ev eventlog.Event) bool {
			e, ok := ev.(*eventlog.TaskEnd)
			return ok && e.Status == eventlog.StatusLost && e.Worker == victim
		})
	})
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A second job reuses the shuffle (its map stage is skipped) and
	// caches what it computes.
	cached := client.Map(counts, keep).SetName("cached").Persist(client.MemorySer)
	if n, err := client.Count(context.Background(), cached); err != nil || n == 0 {
		t.Fatalf("count of the counts: %d, %v", n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return live, log, victim
}

// expected is what the pages must show, computed from the event log.
type expected struct {
	app            string
	jobs           int
	mapStage       int
	lost           int   // map tasks lost in attempt 0 of the map stage
	succeeded      int   // map tasks that succeeded in it
	lostPartitions []int // partitions whose attempt was lost
	victim, reason string
}

func expect(t *testing.T, log, victim string) expected {
	t.Helper()
	x := expected{victim: victim, mapStage: -1}
	for _, ev := range readLog(t, log) {
		switch e := ev.(type) {
		case *eventlog.AppStart:
			x.app = e.App
		case *eventlog.JobStart:
			x.jobs++
		case *eventlog.StageSubmitted:
			if e.Kind == "map" && x.mapStage < 0 {
				x.mapStage = e.Stage
			}
		case *eventlog.TaskEnd:
			if e.Stage != x.mapStage || e.StageAttempt != 0 {
				continue
			}
			switch e.Status {
			case eventlog.StatusLost:
				x.lost++
				x.lostPartitions = append(x.lostPartitions, e.Partition)
			case eventlog.StatusSucceeded:
				x.succeeded++
			}
		case *eventlog.WorkerLost:
			if e.Worker == victim {
				x.reason = e.Reason
			}
		}
	}
	if x.lost == 0 || x.reason == "" {
		t.Fatalf("the log shows no lost map task or no lost worker: %+v", x)
	}
	return x
}

// newBrowser starts headless Chromium (Debian's chromium).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := need(t, "chromium", "chromium", "chromium-browser")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.WindowSize(1280, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	// The first action starts the browser, with a context of the browser's
	// life; later ones are bounded by the test's timeout.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancel3 := context.WithTimeout(bctx, 3*time.Minute)
	t.Cleanup(cancel3)
	return ctx
}

type taskRow struct {
	Partition int    `json:"partition"`
	Attempt   int    `json:"attempt"`
	Status    string `json:"status"`
}

// checkPages reads the pages at base in the browser and compares their
// figures with x.
func checkPages(t *testing.T, ctx context.Context, base string, x expected) {
	t.Helper()
	app := base + "app/" + x.app
	var jobStatus, workerState chromedp.AttributeResult
	var jobsTotal, lost, succeeded, reason, env string
	step := func(a chromedp.Action[chromedp.Void]) {
		if err := chromedp.Do(ctx, a); err != nil {
			t.Fatalf("%s: %v", base, err)
		}
	}
	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: text of %s: %v", base, sel, err)
		}
		return s
	}
	attr := func(sel, name string) chromedp.AttributeResult {
		a, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
		if err != nil {
			t.Fatalf("%s: %s of %s: %v", base, name, sel, err)
		}
		return a
	}
	step(chromedp.Navigate(app + "/"))
	jobStatus, jobsTotal = attr("#job-0", "data-status"), text("#jobs-total")
	step(chromedp.Navigate(fmt.Sprintf("%s/stage/%d/0/", app, x.mapStage)))
	lost, succeeded = text("#count-lost"), text("#count-succeeded")
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]taskRow](`[...document.querySelectorAll("#tasks tr[data-status]")].map(r => ({
		partition: +r.cells[1].textContent, attempt: +r.cells[2].textContent, status: r.dataset.status}))`))
	if err != nil {
		t.Fatalf("%s: the task table: %v", base, err)
	}
	step(chromedp.Navigate(app + "/workers/"))
	workerState, reason = attr("#worker-"+x.victim, "data-state"), text("#worker-"+x.victim+" .reason")
	step(chromedp.Navigate(app + "/environment/"))
	env = text("#env")
	for _, c := range []struct{ what, got, want string }{
		{"job 0's status", jobStatus.Value, "succeeded"},
		{"jobs", jobsTotal, strconv.Itoa(x.jobs)},
		{"lost tasks of the map stage", lost, strconv.Itoa(x.lost)},
		{"succeeded tasks of the map stage", succeeded, strconv.Itoa(x.succeeded)},
		{"the killed worker's state", workerState.Value, "lost"},
		{"the killed worker's reason", strings.TrimSpace(reason), x.reason},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s = %q, want %q (from the event log)", base, c.what, c.got, c.want)
		}
	}
	if !strings.Contains(env, x.app) {
		t.Errorf("%s: the Environment page does not name the application: %q", base, env)
	}
	// Each lost partition shows its lost attempt and a later attempt that
	// succeeded: the rerun.
	for _, p := range x.lostPartitions {
		var lostRow, rerun bool
		for _, r := range rows {
			lostRow = lostRow || r.Partition == p && r.Status == "lost"
			rerun = rerun || r.Partition == p && r.Attempt > 0 && r.Status == "succeeded"
		}
		if !lostRow || !rerun {
			t.Errorf("%s: the stage page's tasks for partition %d: lost attempt %v, rerun %v; rows %+v", base, p, lostRow, rerun, rows)
		}
	}
}

// screenshots saves a picture of every page in dir (SHOAL_UI_SCREENSHOTS:
// how docs/ui/*.png are made).
func screenshots(t *testing.T, ctx context.Context, base string, x expected, dir string) {
	app := base + "app/" + x.app
	for name, path := range map[string]string{
		"jobs": "/", "job": "/job/0/", "job-skipped": "/job/1/", "stage": fmt.Sprintf("/stage/%d/0/", x.mapStage),
		"workers": "/workers/", "nodes": "/nodes/", "storage": "/storage/", "environment": "/environment/",
	} {
		if err := chromedp.Do(ctx, chromedp.Navigate(app+path)); err != nil {
			t.Fatalf("screenshot of %s: %v", path, err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot of %s: %v", path, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestBrowserAfterKilledWorker runs a word count whose worker is killed
// mid-stage and reads the pages in a real headless browser: live, then
// on the history server of the saved log. The figures the pages show are
// those computed from the event log, and the REST API of the live UI
// answers exactly what the history server answers.
func TestBrowserAfterKilledWorker(t *testing.T) {
	bctx := newBrowser(t)
	live, log, victim := killedWordCount(t, client.Options{Nodes: 1, WorkersPerNode: 2})
	x := expect(t, log, victim)
	checkPages(t, bctx, live.URL(), x)

	hist, err := ui.NewHistory(filepath.Dir(log), ui.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer hist.Close()
	if err := hist.Listen("127.0.0.1:0", false); err != nil {
		t.Fatal(err)
	}
	defer hist.Shutdown(context.Background())
	checkPages(t, bctx, hist.URL(), x)

	for _, p := range apiPaths(t, live.URL(), x) {
		l, h := httpGet(t, live.URL()+p), httpGet(t, hist.URL()+p)
		if l != h {
			t.Errorf("GET %s: the live UI and the history server differ:\nlive:    %.400s\nhistory: %.400s", p, l, h)
		}
	}
	if dir := os.Getenv("SHOAL_UI_SCREENSHOTS"); dir != "" {
		screenshots(t, bctx, live.URL(), x, dir)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v: %s", url, resp.StatusCode, err, b)
	}
	return string(b)
}

// apiPaths lists every endpoint of the application: one per job, stage
// attempt and its tasks.
func apiPaths(t *testing.T, base string, x expected) []string {
	app := "api/v1/applications/" + x.app
	paths := []string{"api/v1/applications", app, app + "/jobs", app + "/stages", app + "/workers", app + "/nodes",
		app + "/storage", app + "/checkpoints", app + "/environment", app + "/timeline"}
	var stages []ui.StageAttempt
	if err := json.Unmarshal([]byte(httpGet(t, base+app+"/stages")), &stages); err != nil {
		t.Fatal(err)
	}
	jobs := map[int]bool{}
	for _, s := range stages {
		jobs[s.Job] = true
		paths = append(paths, fmt.Sprintf("%s/stages/%d", app, s.Stage), fmt.Sprintf("%s/stages/%d/%d", app, s.Stage, s.Attempt),
			fmt.Sprintf("%s/stages/%d/%d/tasks?length=1000", app, s.Stage, s.Attempt))
	}
	for _, j := range slices.Sorted(maps.Keys(jobs)) {
		paths = append(paths, fmt.Sprintf("%s/jobs/%d", app, j))
	}
	return paths
}
