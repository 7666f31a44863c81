package ui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/client"
	"shoal/client/eventlog"
	"shoal/internal/tail"
	"shoal/internal/testbin"
)

// freePort returns a port the OS had free a moment ago, for a server that
// cannot be given port 0 and tell which it took.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startPrometheus runs Debian's prometheus scraping the targets every
// 200 ms and returns its address.
func startPrometheus(t *testing.T, targets map[string][]string) string {
	t.Helper()
	bin := need(t, "prometheus", "prometheus")
	dir := t.TempDir()
	cfg := "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\nscrape_configs:\n"
	for job, ts := range targets {
		cfg += fmt.Sprintf("  - job_name: %s\n    static_configs:\n      - targets: ['%s']\n", job, strings.Join(ts, "', '"))
	}
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr)
	out := &tail.Buffer{Max: 8 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	waitFor(t, time.Minute, "prometheus to be ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("prometheus exited; its output ends with:\n%s", out.String())
		default:
		}
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr
}

// query asks prometheus for the value of an instant query with one
// result; ok is false if it has none yet.
func query(t *testing.T, addr, q string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("query %s: %v %+v", q, err, r)
	}
	if len(r.Data.Result) != 1 {
		return 0, false
	}
	v, err := strconv.ParseFloat(r.Data.Result[0].Value[1].(string), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v, true
}

// TestPrometheusScrapesNodesAndDriver runs a real Prometheus scraping the
// driver's /metrics and both node services' while a word count runs
// across two nodes, and queries it: the nodes' fetch byte counter equals
// the shuffle bytes the event log says the tasks fetched remotely, and so
// does the driver's.
func TestPrometheusScrapesNodesAndDriver(t *testing.T) {
	need(t, "prometheus", "prometheus")
	dir := t.TempDir()
	log := filepath.Join(dir, "events.jsonl")
	c, err := client.NewContext(context.Background(), client.Options{
		Nodes: 2, WorkersPerNode: 1, Binary: os.Args[0], NodeBinary: testbin.Shoal(t), EventLog: log, Dir: t.TempDir(),
		UIAddr: "127.0.0.1:0", NodeMetrics: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var nodes []string
	for _, n := range c.Local().Nodes() {
		if n.MetricsAddr == "" {
			t.Fatalf("node %d serves no metrics", n.Index)
		}
		nodes = append(nodes, n.MetricsAddr)
	}
	prom := startPrometheus(t, map[string][]string{"driver": {c.UI().Addr()}, "nodes": nodes})

	var lines []string
	for i := range 8 {
		prefix := "early"
		if i >= 4 {
			prefix = "late"
		}
		for j := range 200 {
			lines = append(lines, fmt.Sprintf("%s%d w%d w%d %s", prefix, i, j%13, j%29, prefix))
		}
	}
	gate := filepath.Join(dir, "gate")
	words := client.FlatMap(client.Parallelize(c, lines, 8), splitWords)
	counts := client.ReduceByKey(client.MapWith[string, client.KV[string, int64]](words, gatedOne{Gate: gate}), addInt64, 6)
	done := make(chan error, 1)
	go func() {
		_, err := client.Collect(context.Background(), counts)
		done <- err
	}()
	// Prometheus sees the job running, and both nodes, before it may end.
	waitFor(t, time.Minute, "prometheus to scrape the running job and both nodes", func() bool {
		running, ok1 := query(t, prom, "shoal_driver_jobs_running")
		up, ok2 := query(t, prom, `count(up{job="nodes"} == 1)`)
		return ok1 && ok2 && running == 1 && up == 2
	})
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	evs, err := eventlog.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	var remote int64
	for _, ev := range evs {
		if e, ok := ev.(*eventlog.TaskEnd); ok {
			remote += e.Metrics[eventlog.MetricShuffleRemoteBytes]
		}
	}
	if remote == 0 {
		t.Fatal("the event log says no shuffle byte was fetched from another node: the test proves nothing")
	}
	var nodeBytes, driverBytes float64
	waitFor(t, time.Minute, fmt.Sprintf("prometheus's fetch bytes to reach the %d bytes of the event log", remote), func() bool {
		var ok1, ok2 bool
		nodeBytes, ok1 = query(t, prom, "sum(shoal_node_fetch_bytes_total)")
		driverBytes, ok2 = query(t, prom, `shoal_driver_shuffle_bytes_total{kind="read_remote"}`)
		return ok1 && ok2 && nodeBytes >= float64(remote) && driverBytes >= float64(remote)
	})
	if nodeBytes != float64(remote) || driverBytes != float64(remote) {
		t.Errorf("fetched bytes: nodes %v, driver %v, event log %d", nodeBytes, driverBytes, remote)
	}
	if v, ok := query(t, prom, `shoal_driver_jobs_total{status="succeeded"}`); !ok || v != 1 {
		t.Errorf("succeeded jobs in prometheus: %v, %v", v, ok)
	}
}
