package bench

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"shoal/client"
	"shoal/internal/dockertest"
	"shoal/internal/hostcluster"
)

// TestHostFaults runs two of `shoal demo faults --hosts`'s scenarios on
// three node containers, through the same code (RunFaults with Hosts): a
// worker killed through its node, and a whole host paused while the map
// stage runs, resumed once the driver has declared it lost. Both answers
// are right; the worker's loss costs no committed map output (the node
// keeps them), the host's costs some; the pause is found within the
// heartbeat timeout and 2 s; and nothing of the containers is left.
func TestHostFaults(t *testing.T) {
	dockertest.Require(t)
	hostcluster.RequireStatic(t)
	cfg := FaultsConfig{
		// Enough for the map stage to outlast the fault's docker command
		// by seconds when the Docker daemon is busy (make test builds
		// images beside it): a pause that lands after the map stage has
		// ended would find nothing to lose.
		Records:    1_200_000,
		Partitions: 96, // eight waves of the cluster's 12 slots
		Hosts:      true,
		Scenarios:  []int{2, 8},
		Options:    client.Options{Binary: os.Args[0]},
		Log:        testLog{t},
	}
	rows, err := RunFaults(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("%d rows, want 2: %+v", len(rows), rows)
	}
	for _, r := range rows {
		if r.Error != "" || r.RightAnswer == nil {
			t.Fatalf("scenario %d (%s) was not carried out: %s", r.ID, r.Scenario, r.Error)
		}
		if !*r.RightAnswer {
			t.Errorf("scenario %d (%s): wrong answer: %s", r.ID, r.Scenario, r.AnswerNote)
		}
		t.Logf("scenario %d: %s; detect %d ms, %d map outputs recomputed, %.1f s vs %.1f s", r.ID, r.Fault, r.DetectMs, r.MapOutputsRecomputed, r.Seconds, r.BaselineSeconds)
	}
	worker, paused := rows[0], rows[1]
	if worker.MapOutputsRecomputed != 0 {
		t.Errorf("a worker killed: %d map outputs recomputed, want 0 (its node serves them)", worker.MapOutputsRecomputed)
	}
	if worker.DetectMs < 0 || worker.DetectMs >= 2000 {
		t.Errorf("a worker killed: detected after %d ms, want < 2 s", worker.DetectMs)
	}
	if paused.MapOutputsRecomputed == 0 {
		t.Errorf("a host paused: no map output recomputed; it held committed ones (%s)", paused.Fault)
	}
	if bound := (HostsHeartbeatTimeout + 2e9).Milliseconds(); paused.DetectMs < 0 || paused.DetectMs > bound {
		t.Errorf("a host paused: detected after %d ms, want within %d ms", paused.DetectMs, bound)
	}
	// RunFaults removed what it started.
	out, err := exec.Command("docker", "ps", "-aq", "--filter", "label="+dockertest.TestLabel+"=demo-faults").Output()
	if err != nil {
		t.Fatal(err)
	}
	if ids := strings.Fields(string(out)); len(ids) > 0 {
		t.Errorf("containers left after RunFaults: %v", ids)
	}
}
