package shuffleservice

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"shoal/internal/testbin"
	"shoal/shuffleservice/internal/nodetest"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shufflepb"
)

// TestRestartRecovery commits map outputs to a real node process, kills
// it with SIGKILL, starts another on the same directories, and fetches
// every block again, byte for byte.
func TestRestartRecovery(t *testing.T) {
	bin := testbin.Shoal(t)
	root := t.TempDir()
	dirs := []string{filepath.Join(root, "a"), filepath.Join(root, "b")}
	ctx := context.Background()

	p1, c1 := nodetest.StartProcess(t, bin, dirs)
	if err := c1.RegisterApp(ctx, "job-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	layout, err := c1.RegisterWorker(ctx, "job-1", "w0", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	const R = 17
	want := map[uint32]map[blockID][]byte{}
	var ranges = map[uint32][]*shufflepb.BlockRange{}
	for shuffle := uint32(0); shuffle < 2; shuffle++ {
		want[shuffle] = map[blockID][]byte{}
		for m := uint32(0); m < 5; m++ {
			write := writeSortedOutput
			if m >= 3 {
				write = writeHashOutput
			}
			out, blocks := write(t, layout, "job-1", shuffle, m, 0, genFixtureBlocks(uint64(10*shuffle+m), R))
			mustCommit(t, c1, "job-1", out)
			for r, b := range blocks {
				want[shuffle][blockID{m, uint32(r)}] = b
			}
			ranges[shuffle] = append(ranges[shuffle], &shufflepb.BlockRange{Map: m, ReduceEnd: R})
		}
	}
	check := func(c *nodeclient.Client) {
		t.Helper()
		for shuffle, rs := range ranges {
			got, err := fetchBlocks(t, c, "job-1", shuffle, DefaultChunkSize, rs...)
			if err != nil {
				t.Fatalf("fetch shuffle %d from %s: %v", shuffle, c.Addr(), err)
			}
			if len(got) != len(want[shuffle]) {
				t.Fatalf("shuffle %d: %d blocks, want %d", shuffle, len(got), len(want[shuffle]))
			}
			for id, b := range want[shuffle] {
				if !bytes.Equal(got[id], b) {
					t.Fatalf("shuffle %d block %v: %d bytes differ from the %d written", shuffle, id, len(got[id]), len(b))
				}
			}
		}
	}
	check(c1)
	if err := p1.Kill(); err != nil {
		t.Fatal(err)
	}

	p2, c2 := nodetest.StartProcess(t, bin, dirs)
	if p2.Pid() == p1.Pid() {
		t.Fatal("same process")
	}
	check(c2)
	st, err := c2.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Apps != 1 || st.MapOutputs != 10 || st.Pid != int64(p2.Pid()) {
		t.Fatalf("status after restart: %v", st)
	}
	if st.GetBlocks().GetMemoryLimit() != DefaultCacheBytes {
		t.Fatalf("block memory limit %d without --cache-bytes, want the default %d", st.GetBlocks().GetMemoryLimit(), DefaultCacheBytes)
	}
	if err := c2.Heartbeat(ctx, "job-1"); err != nil {
		t.Fatalf("the app did not survive the restart: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p2.Stop(sctx); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	if p2.PeakRSS() <= 0 {
		t.Errorf("PeakRSS = %d", p2.PeakRSS())
	}
}
