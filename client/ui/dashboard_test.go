package ui_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"shoal/client/ui"
	"shoal/internal/testbin"
	"shoal/shuffleservice"
	"shoal/shuffleservice/nodeclient"
)

// exposed returns the names of the series reg exposes, with a histogram's
// _bucket, _sum and _count.
func exposed(t *testing.T, reg *prometheus.Registry) map[string]bool {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[mf.GetName()+s] = true
			}
		}
	}
	return names
}

// exprs collects every "expr" of a Grafana dashboard.
func exprs(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "expr" {
				*out = append(*out, s)
			} else {
				exprs(e, out)
			}
		}
	case []any:
		for _, e := range x {
			exprs(e, out)
		}
	}
}

// TestDashboardUsesMetricsThatExist reads deploy/grafana/shoal.json and
// checks that every shoal metric its queries name is one the driver or a
// node service exposes.
func TestDashboardUsesMetricsThatExist(t *testing.T) {
	root, ok := testbin.ModuleRoot()
	if !ok {
		t.Fatal("no module root")
	}
	b, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "shoal.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("deploy/grafana/shoal.json: %v", err)
	}

	driver := prometheus.NewRegistry()
	live, err := ui.NewLive("app", ui.Options{Registry: driver})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close(context.Background())
	node := prometheus.NewRegistry()
	srv, err := shuffleservice.Open(shuffleservice.Options{Dirs: []string{t.TempDir()}, Registry: node})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	cl, err := nodeclient.Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// One call that succeeds and one that fails, so that the latency and
	// error series exist.
	if _, err := cl.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := cl.RemoveShuffle(context.Background(), "no-such-app", 1); err == nil {
		t.Fatal("RemoveShuffle of an unknown application succeeded")
	}
	have := exposed(t, driver)
	for n := range exposed(t, node) {
		have[n] = true
	}

	var qs []string
	exprs(dash, &qs)
	if len(qs) < 10 {
		t.Fatalf("the dashboard has %d queries", len(qs))
	}
	name := regexp.MustCompile(`\bshoal_[a-z0-9_]+`)
	used := map[string]bool{}
	for _, q := range qs {
		for _, n := range name.FindAllString(q, -1) {
			used[n] = true
			if !have[n] {
				t.Errorf("the dashboard queries %s, which no shoal process exposes: %s", n, q)
			}
		}
	}
	for _, n := range []string{"shoal_node_fetch_bytes_total", "shoal_driver_tasks_total", "shoal_node_rpc_duration_seconds_bucket"} {
		if !used[n] {
			t.Errorf("the dashboard does not show %s", n)
		}
	}
}
