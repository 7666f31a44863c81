package jobs_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/client"
	"shoal/internal/miniotest"
	"shoal/internal/testbin"
	"shoal/internal/toxiproxy"
	"shoal/jobs"
)

// BenchmarkCheckpointOverhead (`make bench-ckpt`) measures what
// checkpointing PageRank at every iteration costs against no
// checkpoint, with the store a real MinIO behind toxiproxy (50 ms of
// latency each way and a bandwidth limit, as a remote S3 would have):
// checkpoints through the nodes (CheckpointVia "node", the default) and
// through the tasks ("task", the design before), side by side in one
// run. Each round runs the three once, in turn, on fresh clusters; the
// medians over the rounds are reported, with every run's time, and each
// run's final checkpoint is checked: complete (every partition of the
// last iteration's ranks, manifest written) and equal to the answer.
//
// SHOAL_BENCH_CKPT_EDGES (default 1,000,000, make demo's graph),
// _ITERATIONS (20, make demo's), _ROUNDS (3), _RATE_KBPS (the bandwidth
// limit, 20480 KB/s each way) and _LATENCY_MS (50) change it.
func BenchmarkCheckpointOverhead(b *testing.B) {
	env := func(name string, def int64) int64 {
		if v := os.Getenv("SHOAL_BENCH_CKPT_" + name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatalf("SHOAL_BENCH_CKPT_%s=%q: %v", name, v, err)
			}
			return n
		}
		return def
	}
	edges, iterations, rounds := env("EDGES", 1_000_000), int(env("ITERATIONS", 20)), int(env("ROUNDS", 3))
	rate, latency := env("RATE_KBPS", 20480), env("LATENCY_MS", 50)

	srv := miniotest.Start(b, "ckpt")
	b.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	b.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	proxy := toxiproxy.Start(b).Proxy(b, "s3", srv.Addr())
	for _, stream := range []string{"upstream", "downstream"} {
		proxy.AddToxic(b, "lat-"+stream, "latency", stream, map[string]any{"latency": latency})
		proxy.AddToxic(b, "bw-"+stream, "bandwidth", stream, map[string]any{"rate": rate})
	}
	endpoint := "http://" + proxy.Addr()

	in := filepath.Join(b.TempDir(), "graph.txt")
	f, err := os.Create(in)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	if err := jobs.Generate("graph", w, edges, 1); err != nil {
		b.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	refRanks := func(n int) map[string]float64 {
		f, err := os.Open(in)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		r, err := jobs.RefPageRank(f, n)
		if err != nil {
			b.Fatal(err)
		}
		return r
	}
	want, wantCkpt := refRanks(iterations), refRanks(iterations-1)

	configs := []string{"none", client.CheckpointViaTask, client.CheckpointViaNode}
	times := map[string][]time.Duration{}
	ctx := context.Background()
	for round := range rounds {
		for _, via := range configs {
			opts := client.Options{
				Binary: os.Args[0], NodeBinary: testbin.Shoal(b), Dir: b.TempDir(), WorkerStderr: nil,
				App: fmt.Sprintf("bench-%s-%d", via, round),
			}
			every := 0
			if via != "none" {
				opts.CheckpointDir, opts.S3Endpoint, opts.CheckpointVia, opts.CheckpointKeep = "s3://ckpt/bench", endpoint, via, 2
				every = 1
			}
			c, err := client.NewContext(ctx, opts)
			if err != nil {
				b.Fatal(err)
			}
			out := filepath.Join(b.TempDir(), "out")
			start := time.Now()
			_, err = jobs.PageRankWith(ctx, c, in, out, jobs.PageRankOptions{Iterations: iterations, CheckpointEvery: every})
			took := time.Since(start)
			if err != nil {
				c.Close()
				b.Fatalf("%s, round %d: %v", via, round, err)
			}
			sameRanks(b, ranksOf(b, out), want, 1e-12)
			if via != "none" {
				checkFinalCheckpoint(b, ctx, c, iterations-1, wantCkpt)
			}
			if err := c.Close(); err != nil {
				b.Fatal(err)
			}
			times[via] = append(times[via], took)
			b.Logf("round %d, checkpoints %-4s: %.2f s", round+1, via, took.Seconds())
		}
	}
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	base := med(times["none"])
	var sb strings.Builder
	fmt.Fprintf(&sb, "PageRank of %d edges, %d iterations, a checkpoint every iteration to MinIO behind toxiproxy (%d ms latency each way, %d KB/s each way); medians of %d:\n", edges, iterations, latency, rate, rounds)
	for _, via := range configs {
		m := med(times[via])
		fmt.Fprintf(&sb, "  %-5s %7.2f s  %+6.1f %%  runs %v\n", via, m.Seconds(), 100*(m.Seconds()/base.Seconds()-1), roundDurations(times[via]))
		if via != "none" {
			b.ReportMetric(100*(m.Seconds()/base.Seconds()-1), "overhead-%-"+via)
		}
	}
	b.ReportMetric(base.Seconds(), "s-none")
	b.Log("\n" + sb.String())
}

func roundDurations(ds []time.Duration) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%.2fs", d.Seconds()))
	}
	return out
}

// checkFinalCheckpoint checks that the checkpoint of iteration it is
// complete (listed: its manifest is written, every partition checked when
// read) and holds that iteration's ranks, want.
func checkFinalCheckpoint(b *testing.B, ctx context.Context, c *client.Context, it int, want map[string]float64) {
	b.Helper()
	ms, err := c.ListCheckpoints(ctx)
	if err != nil {
		b.Fatal(err)
	}
	run, _ := c.CheckpointRun()
	name := fmt.Sprintf("pagerank-ranks-%06d", it)
	for _, m := range ms {
		if m.App != run.App || m.Run != run.Run || m.Name != name {
			continue
		}
		ranks, err := client.ReadCheckpoint[client.KV[string, float64]](ctx, c, m.Ref().String())
		if err != nil {
			b.Fatal(err)
		}
		kvs, err := client.Collect(ctx, ranks)
		if err != nil {
			b.Fatal(err)
		}
		got := map[string]float64{}
		for _, kv := range kvs {
			got[kv.Key] = kv.Value
		}
		sameRanks(b, got, want, 1e-12)
		return
	}
	b.Fatalf("no complete checkpoint %s of this run among %d", name, len(ms))
}
