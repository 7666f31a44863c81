package client_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"shoal/client"
)

func pad100(x int64) string { return fmt.Sprintf("%0100d", x) }

// resultBlockBytes sums the result_block_bytes metric of the result tasks
// that succeeded, and counts those tasks and those that reported it.
func resultBlockBytes(events []map[string]any) (bytes int64, tasks, asBlocks int) {
	for _, ev := range taskEvents(events, "result") {
		if ev["event"] != "task_end" || ev["status"] != "succeeded" {
			continue
		}
		tasks++
		if m, _ := ev["metrics"].(map[string]any); m["result_block_bytes"] != nil {
			bytes += int64(m["result_block_bytes"].(float64))
			asBlocks++
		}
	}
	return bytes, tasks, asBlocks
}

// Results larger than MaxDirectResultBytes travel as blocks through the
// node services, smaller ones on the stream; both arrive whole, and no
// result block is left on a node once its stage is done.
func TestLargeResultsTravelAsBlocks(t *testing.T) {
	c, log := startCluster(t, client.Options{Nodes: 2, WorkersPerNode: 1, MaxDirectResultBytes: 4 << 10})
	ctx := context.Background()
	const n, parts = 200_000, 4
	nums := client.Range(c, 0, n, parts)
	got, err := client.Collect(ctx, nums)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("collected %d records, want %d", len(got), n)
	}
	for i, x := range got {
		if x != int64(i) {
			t.Fatalf("record %d is %d", i, x)
		}
	}
	bytes, tasks, asBlocks := resultBlockBytes(allEvents(t, log))
	if tasks != parts || asBlocks != parts || bytes < 8*n {
		t.Fatalf("%d result tasks, %d of them with %d bytes of result blocks; want %d tasks, all as blocks, at least %d bytes", tasks, asBlocks, bytes, parts, 8*n)
	}
	if held := nodeBlocks(t, c); held != 0 {
		t.Errorf("the node services hold %d blocks after the job, want 0", held)
	}

	// A count's results are 8 bytes: on the stream.
	if got, err := client.Count(ctx, nums); err != nil || got != n {
		t.Fatalf("count: %d, %v", got, err)
	}
	if _, tasks, asBlocks = resultBlockBytes(allEvents(t, log)); tasks != 2*parts || asBlocks != parts {
		t.Fatalf("after the count: %d result tasks, %d as blocks; want %d and %d", tasks, asBlocks, 2*parts, parts)
	}
}

// With the default bound, one partition's result larger than a message on
// the worker's stream may be (64 MiB) is collected through a block.
func TestResultLargerThanAStreamMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 70 MB")
	}
	c, log := startCluster(t, client.Options{WorkersPerNode: 1})
	const n = 700_000 // 100-byte strings: 70 MB in one partition
	got, err := client.Collect(context.Background(), client.Map(client.Range(c, 0, n, 1), pad100))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || got[0] != pad100(0) || got[n-1] != pad100(n-1) {
		t.Fatalf("collected %d records (first %.12q, last %.12q), want %d", len(got), got[0], got[len(got)-1], n)
	}
	for i := range got {
		if got[i] != pad100(int64(i)) {
			t.Fatalf("record %d is %q", i, got[i])
		}
	}
	if bytes, _, asBlocks := resultBlockBytes(allEvents(t, log)); asBlocks != 1 || bytes <= 64<<20 {
		t.Fatalf("%d result blocks of %d bytes in all; want 1 of more than 64 MiB", asBlocks, bytes)
	}
}

// A job whose results would exceed MaxResultBytes fails, saying so,
// whether its results come on the stream or as blocks (refused before
// they are fetched); jobs within the bound still run.
func TestMaxResultBytes(t *testing.T) {
	for _, direct := range []int64{0, 4 << 10} { // 0: the default, 1 MiB: every result on the stream
		t.Run(fmt.Sprintf("direct=%d", direct), func(t *testing.T) {
			c, log := startCluster(t, client.Options{WorkersPerNode: 1, MaxResultBytes: 100 << 10, MaxDirectResultBytes: direct})
			ctx := context.Background()
			nums := client.Range(c, 0, 200_000, 4) // 1.6 MB of results
			_, err := client.Collect(ctx, nums)
			if err == nil || !strings.Contains(err.Error(), "MaxResultBytes") {
				t.Fatalf("Collect of 1.6 MB with MaxResultBytes 100 KiB: %v; want an error naming MaxResultBytes", err)
			}
			asBlocks := 0
			for _, ev := range taskEvents(allEvents(t, log), "result") {
				if m, _ := ev["metrics"].(map[string]any); ev["event"] == "task_end" && m["result_block_bytes"] != nil {
					asBlocks++
				}
			}
			if (direct > 0) != (asBlocks > 0) {
				t.Errorf("%d results as blocks with MaxDirectResultBytes %d", asBlocks, direct)
			}
			if n, err := client.Count(ctx, nums); err != nil || n != 200_000 {
				t.Fatalf("count after the failed job: %d, %v", n, err)
			}
			if got, err := client.Collect(ctx, client.Range(c, 0, 10_000, 4)); err != nil || len(got) != 10_000 {
				t.Fatalf("Collect of 80 KB: %d records, %v", len(got), err)
			}
		})
	}
}
