package client_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"shoal/client"
	"shoal/internal/poll"
)

// A worker killed while a result task writes its part file leaves the
// attempt's temporary file behind; the job's output holds only the
// committed part files (docs/DESIGN.md §8), not that partial one.
func TestSaveAfterWorkerKilledMidWrite(t *testing.T) {
	c, log := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 2})
	tmp := t.TempDir()
	gate, out := filepath.Join(tmp, "gate"), filepath.Join(tmp, "out")
	sums := client.ReduceByKey(client.Map(client.Range(c, 0, 800, 4), mod10KV), addInt64, 4)
	lines := client.Map(client.MapWith[client.KV[int64, int64], client.KV[int64, int64]](sums, gatedPass{Gate: gate}), formatKV)
	done := make(chan error, 1)
	go func() { done <- client.SaveAsTextFile(context.Background(), lines, out) }()

	var attempts []string
	poll.WaitFor(t, 30*time.Second, "a result task's attempt file", func() bool {
		attempts, _ = filepath.Glob(filepath.Join(tmp, ".out.tmp-*", "part-*.attempt-*"))
		return len(attempts) > 0
	})
	var victim string
	for _, ev := range taskEvents(allEvents(t, log), "result") {
		if ev["event"] == "task_start" {
			victim = ev["worker"].(string)
			break
		}
	}
	killWorkerMidTask(t, c, log, victim)
	open(t, gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	want := []string{"part-00000", "part-00001", "part-00002", "part-00003"}
	if len(names) != len(want) {
		t.Fatalf("output files %v, want %v (attempt files seen while the job ran: %v)", names, want, attempts)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("output files %v, want %v", names, want)
		}
	}
}

func formatKV(kv client.KV[int64, int64]) string {
	return strconv.FormatInt(kv.Key, 10) + "\t" + strconv.FormatInt(kv.Value, 10)
}
