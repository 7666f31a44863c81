package bench

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os"
	"testing"

	"shoal/client"
	"shoal/internal/testbin"
)

// The checkpoint-interval experiment on a small graph: every run's answer
// is the reference's, and a node killed before iteration 9 sends the
// recomputation back to the start without checkpoints, and no further
// than the checkpoint of iteration 4 (read by iteration 5) with one every
// 4 iterations.
func TestRunPageRank(t *testing.T) {
	cfg := PageRankConfig{
		Edges: 3_000, Iterations: 10, KillAt: 9, Partitions: 4, Intervals: []int{0, 4},
		Options: client.Options{Binary: os.Args[0], NodeBinary: testbin.Shoal(t), WorkersPerNode: 1},
		Log:     testLog{t},
	}
	rows, err := RunPageRank(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2", len(rows))
	}
	for _, r := range rows {
		if !r.RightAnswer || r.TasksAfterKill == 0 || r.FaultFreeSeconds <= 0 {
			t.Errorf("interval %d: %+v", r.Interval, r)
		}
	}
	if none, four := rows[0], rows[1]; none.ReachBack > 1 || four.ReachBack < 5 {
		t.Errorf("recomputation reached back to iteration %d without checkpoints (want the start) and %d with one every 4 (want 5 or later)", none.ReachBack, four.ReachBack)
	}
	tasks, reach := PageRankCharts(cfg, rows)
	for name, svg := range map[string][]byte{"tasks": tasks, "reach": reach} {
		d := xml.NewDecoder(bytes.NewReader(svg))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s chart is not XML: %v", name, err)
			}
		}
		if !bytes.Contains(svg, []byte("checkpoint every K iterations")) {
			t.Errorf("%s chart has no x axis label", name)
		}
	}
}
