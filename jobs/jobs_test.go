package jobs_test

import (
	"bufio"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"shoal/client"
	"shoal/internal/testbin"
	"shoal/jobs"
)

// newContext starts nodes × workers real processes: workers are this test
// binary, node services the shoal binary.
func newContext(t *testing.T, nodes, workers int, eventLog string) *client.Context {
	t.Helper()
	c, err := client.NewContext(context.Background(), client.Options{
		Nodes: nodes, WorkersPerNode: workers, Binary: os.Args[0], NodeBinary: testbin.Shoal(t),
		Dir: t.TempDir(), EventLog: eventLog, WorkerStderr: os.Stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// generate writes an input of the given kind and returns its path.
func generate(t *testing.T, kind string, records int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), kind)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	if err := jobs.Generate(kind, w, records, 42); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// readParts returns the lines of every part file of dir, sorted.
func readParts(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "part-*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no part files in %s (%v)", dir, err)
	}
	var lines []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
	}
	slices.Sort(lines)
	return lines
}

func TestWordCountMatchesReference(t *testing.T) {
	events := filepath.Join(t.TempDir(), "events.jsonl")
	c := newContext(t, 2, 2, events)
	in := generate(t, "text", 20_000)
	out := filepath.Join(t.TempDir(), "out")
	if err := jobs.WordCount(context.Background(), c, in, out, 6); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(in)
	want, err := jobs.RefWordCount(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := readParts(t, out); !slices.Equal(got, want) {
		t.Fatalf("wordcount: %d lines, reference %d (or different)", len(got), len(want))
	}
	checkTaskEvents(t, events)

	// Each node's last node_status (written at Close) gives the bytes of
	// each of its directories: they add up to its map outputs and blocks
	// on disk.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	last := map[any]map[string]any{}
	for _, ev := range readEvents(t, events) {
		if ev["event"] == "node_status" {
			last[ev["node"]] = ev
		}
	}
	held := 0.0
	for node, ev := range last {
		dirs, _ := ev["dirs"].([]any)
		bytes, _ := ev["dir_bytes"].([]any)
		sum := 0.0
		for _, b := range bytes {
			sum += b.(float64)
		}
		if len(dirs) == 0 || len(bytes) != len(dirs) || sum != ev["output_bytes"].(float64)+ev["disk_bytes"].(float64) {
			t.Errorf("node %v: dirs %v hold %v bytes; output_bytes %v, disk_bytes %v", node, dirs, bytes, ev["output_bytes"], ev["disk_bytes"])
		}
		held += sum
	}
	if len(last) != 2 || held == 0 {
		t.Errorf("node_status of %d nodes, %v bytes held; want 2 nodes holding the map outputs", len(last), held)
	}
}

// checkTaskEvents checks that every task_start and task_end of the event
// log carries every field of docs/DESIGN.md §8, and that every task started
// ended.
func checkTaskEvents(t *testing.T, path string) {
	t.Helper()
	common := []string{"ts", "event", "stage", "stage_attempt", "partition", "attempt", "task", "kind", "worker", "node"}
	started, ended := map[float64]bool{}, map[float64]bool{}
	for _, ev := range readEvents(t, path) {
		want := common
		switch ev["event"] {
		case "task_start":
			started[ev["task"].(float64)] = true
		case "task_end":
			ended[ev["task"].(float64)] = true
			want = append(slices.Clone(common), "status", "reason", "duration_ms")
		default:
			continue
		}
		for _, k := range want {
			if _, ok := ev[k]; !ok {
				t.Fatalf("%s event without %q: %v", ev["event"], k, ev)
			}
		}
	}
	if len(started) == 0 || len(started) != len(ended) {
		t.Fatalf("%d tasks started, %d ended", len(started), len(ended))
	}
}

func TestEcommerceMatchesReference(t *testing.T) {
	c := newContext(t, 1, 2, "")
	in := generate(t, "ecommerce", 30_000)
	out := filepath.Join(t.TempDir(), "out")
	st, err := jobs.Ecommerce(context.Background(), c, in, out, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(in)
	want, bad, err := jobs.RefEcommerce(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if bad == 0 {
		t.Fatal("the generated input has no malformed rows to count")
	}
	if got := readParts(t, out); !slices.Equal(got, want) {
		t.Fatalf("ecommerce: %d sessions, reference %d (or different)", len(got), len(want))
	}
	if st.BadRows != bad {
		t.Fatalf("bad rows %d, reference %d", st.BadRows, bad)
	}
	// --strict fails the job and leaves no output.
	strictOut := filepath.Join(t.TempDir(), "strict")
	if _, err := jobs.Ecommerce(context.Background(), c, in, strictOut, 4, true); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("strict run: err = %v, want a malformed-row error", err)
	}
	if _, err := os.Stat(strictOut); !os.IsNotExist(err) {
		t.Fatalf("a failed job left %s (%v)", strictOut, err)
	}
}

func TestPageRankMatchesReference(t *testing.T) {
	c := newContext(t, 2, 1, "")
	in := generate(t, "graph", 5_000)
	out := filepath.Join(t.TempDir(), "out")
	const iterations = 8
	res, err := jobs.PageRank(context.Background(), c, in, out, iterations, 4, 5)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(in)
	want, err := jobs.RefPageRank(f, iterations)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := readParts(t, out)
	if len(got) != len(want) || res.Pages != int64(len(want)) {
		t.Fatalf("%d ranks (%d pages), reference %d", len(got), res.Pages, len(want))
	}
	sum := 0.0
	for _, line := range got {
		page, rank, _ := strings.Cut(line, "\t")
		r, err := strconv.ParseFloat(rank, 64)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(r-want[page]) > 1e-12 {
			t.Fatalf("page %s: rank %v, reference %v", page, r, want[page])
		}
		sum += r
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Fatalf("ranks sum to %v", sum)
	}
	if len(res.Top) != 5 || res.Top[0].Value < res.Top[4].Value {
		t.Fatalf("top pages %v", res.Top)
	}
}
