package ui

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"shoal/client/eventlog"
)

// BenchmarkEventCost is what the UI adds to each event the driver
// writes: ui=off is the event log alone (JSON to a discarded file),
// ui=on adds the live UI's listener and the model's and metrics' work on
// its goroutine (waited for before the clock stops), for a task's
// task_start and task_end.
func BenchmarkEventCost(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("ui=%v", map[bool]string{false: "off", true: "on"}[on]), func(b *testing.B) {
			w := eventlog.NewWriter(io.Discard)
			var live *Live
			if on {
				var err error
				if live, err = NewLive("bench", Options{Registry: prometheus.NewRegistry()}); err != nil {
					b.Fatal(err)
				}
				defer live.Close(context.Background())
				w.AddListener(live.Listener())
			}
			w.Write(&eventlog.JobStart{Job: 0, Action: "count"})
			w.Write(&eventlog.StageSubmitted{Job: 0, Stage: 1, Kind: "map", Tasks: 1 << 30})
			metrics := map[string]int64{"records_in": 1000, "records_out": 1000, "shuffle_bytes_written": 1 << 20, "shuffle_write_time_us": 1234}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ta := eventlog.TaskAttempt{Stage: 1, Partition: i, Task: uint64(i + 1), Kind: "map", Worker: "w-0-0", Node: "127.0.0.1:7077"}
				w.Write(&eventlog.TaskStart{TaskAttempt: ta, Locality: "node"})
				w.Write(&eventlog.TaskEnd{TaskAttempt: ta, Status: "succeeded", DurationMs: 12, Metrics: metrics})
				i++
				if on && i%4096 == 0 {
					live.e.t.do(func(*model) {}) // let the model keep up: no event is dropped
				}
			}
			if on {
				live.e.t.do(func(*model) {})
				if d := live.e.t.dropped.Load(); d != 0 {
					b.Fatalf("%d events dropped", d)
				}
			}
		})
	}
}
