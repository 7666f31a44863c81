package client_test

import (
	"context"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"shoal/client"
	"shoal/internal/miniotest"
	"shoal/internal/poll"
	"shoal/internal/toxiproxy"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shufflepb"
)

// ckptGateEnv names the file gateAfter waits for; the workers inherit
// it from the test's environment.
const ckptGateEnv = "CKPT_TEST_GATE"

// gateAfter passes a partition on once it has read all of it and the
// file named by $CKPT_TEST_GATE exists: a task blocked there has handed
// its checkpointed partition to its node already.
func gateAfter(in iter.Seq[client.KV[int64, int64]]) iter.Seq[client.KV[int64, int64]] {
	return func(yield func(client.KV[int64, int64]) bool) {
		var buf []client.KV[int64, int64]
		for kv := range in {
			buf = append(buf, kv)
		}
		waitFile(os.Getenv(ckptGateEnv))
		for _, kv := range buf {
			if !yield(kv) {
				return
			}
		}
	}
}

// nodeCkptStats reads the checkpoint counters of the local node i.
func nodeCkptStats(t *testing.T, c *client.Context, i int) *shufflepb.CheckpointStats {
	t.Helper()
	cl, err := nodeclient.Dial(c.Local().Nodes()[i].Addr, nodeclient.WithCredentials(c.Local().Credentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	st, err := cl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.GetCheckpoints()
}

// A worker SIGKILLed after its tasks handed their checkpointed partitions
// to the node, before they ended: the node uploads them, the retried
// tasks find them held (nothing is handed or uploaded twice), no job
// computes missing partitions, and the checkpoint completes and reads
// back right.
func TestCheckpointWorkerKilledAfterHandOff(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	t.Setenv(ckptGateEnv, gate)
	store := t.TempDir()
	c, log := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 2, CheckpointDir: store})
	ctx := context.Background()
	const n, parts = 4000, 4
	kv := client.Map(client.Range(c, 0, n, parts), mod10KV).Checkpoint()
	done := make(chan error, 1)
	go func() {
		_, err := client.Count(ctx, client.MapPartitions(kv, gateAfter))
		done <- err
	}()
	poll.WaitFor(t, 60*time.Second, "every partition handed to the node", func() bool {
		return nodeCkptStats(t, c, 0).GetHandoffs() == parts
	})
	victim := c.Local().Workers()[0].ID
	if err := c.Local().KillWorker(victim); err != nil {
		t.Fatal(err)
	}
	open(t, gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := c.WaitCheckpoints(ctx); err != nil {
		t.Fatal(err)
	}
	ms, err := c.ListCheckpoints(ctx)
	if err != nil || len(ms) != 1 || ms[0].NumPartitions != parts {
		t.Fatalf("checkpoints %+v, %v; want one of %d partitions", ms, err, parts)
	}
	st := nodeCkptStats(t, c, 0)
	if st.GetHandoffs() != parts || st.GetUploads() != parts || st.GetHandoffsHeld() == 0 {
		t.Fatalf("node: %d hand-offs, %d uploads, %d held; want %d, %d and the retried tasks' held", st.GetHandoffs(), st.GetUploads(), st.GetHandoffsHeld(), parts, parts)
	}
	lost, jobs, written := 0, 0, map[int]int{}
	for _, ev := range allEvents(t, log) {
		switch ev["event"] {
		case "task_end":
			if ev["status"] == "lost" && ev["worker"] == victim {
				lost++
			}
		case "job_start":
			jobs++
		case "checkpoint_written":
			written[num(ev["partition"])]++
		}
	}
	if lost == 0 {
		t.Fatalf("no task of worker %s was lost: the kill came too late to test anything", victim)
	}
	if jobs != 1 {
		t.Errorf("%d jobs ran, want 1 (no job for missing checkpoint partitions)", jobs)
	}
	for p := range parts {
		if written[p] != 1 {
			t.Errorf("checkpoint_written for partition %d: %d events, want 1", p, written[p])
		}
	}
	if got := collectMap(t, ctx, client.ReduceByKey(kv, addInt64, 2)); !maps.Equal(got, sumsByMod10(n)) {
		t.Fatalf("the checkpoint read back: %v", got)
	}
}

// A node SIGKILLed while the partitions handed to it are still queued
// (the store unreachable behind toxiproxy): no manifest is written; once
// the store answers, the driver computes again only the partitions the
// lost node held, the manifest lists every partition and the checkpoint
// reads back right. Upload failures are logged (checkpoint_upload_failed).
func TestCheckpointNodeKilledWhileUploadsQueued(t *testing.T) {
	srv := miniotest.Start(t, "ckpt")
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	proxy := toxiproxy.Start(t).Proxy(t, "minio", srv.Addr())
	ctx := context.Background()
	c, log := startCluster(t, client.Options{Nodes: 2, WorkersPerNode: 1, CheckpointDir: "s3://ckpt/q", S3Endpoint: "http://" + proxy.Addr()})
	proxy.SetEnabled(t, false)
	const n, parts = 4000, 6
	kv := client.Map(client.Range(c, 0, n, parts), mod10KV).Checkpoint()
	if got, err := client.Count(ctx, kv); err != nil || got != n {
		t.Fatalf("count: %d, %v", got, err)
	}
	held := map[string][]int{} // node address: partitions handed to it
	poll.WaitFor(t, 30*time.Second, "upload failures on both nodes", func() bool {
		failed := map[string]bool{}
		for _, ev := range allEvents(t, log) {
			if ev["event"] == "checkpoint_upload_failed" {
				failed[ev["node"].(string)] = true
			}
		}
		return len(failed) == 2
	})
	for _, ev := range allEvents(t, log) {
		if ev["event"] == "task_end" && ev["status"] == "succeeded" {
			held[ev["node"].(string)] = append(held[ev["node"].(string)], num(ev["partition"]))
		}
	}
	killed := c.Local().Nodes()[1].Addr
	if len(held[killed]) == 0 {
		t.Fatalf("node 1 holds no partition (%v): nothing to lose", held)
	}
	if err := c.Local().KillNode(1); err != nil {
		t.Fatal(err)
	}
	mc, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	manifests := func() int {
		k := 0
		for obj := range mc.ListObjects(ctx, "ckpt", minio.ListObjectsOptions{Prefix: "q/", Recursive: true}) {
			if obj.Err != nil {
				t.Fatal(obj.Err)
			}
			if strings.HasSuffix(obj.Key, "/manifest.json") {
				k++
			}
		}
		return k
	}
	if m := manifests(); m != 0 {
		t.Fatalf("%d manifests while partitions were queued", m)
	}
	before := len(allEvents(t, log))
	proxy.SetEnabled(t, true)
	if err := c.WaitCheckpoints(ctx); err != nil {
		t.Fatal(err)
	}
	if m := manifests(); m != 1 {
		t.Fatalf("%d manifests after WaitCheckpoints, want 1", m)
	}
	ms, err := c.ListCheckpoints(ctx)
	if err != nil || len(ms) != 1 || ms[0].NumPartitions != parts {
		t.Fatalf("checkpoints %+v, %v", ms, err)
	}
	recomputed := map[int]bool{}
	for _, ev := range allEvents(t, log)[before:] {
		if ev["event"] == "task_end" && ev["status"] == "succeeded" {
			recomputed[num(ev["partition"])] = true
		}
	}
	for p := range parts {
		if want := slices.Contains(held[killed], p); recomputed[p] != want {
			t.Errorf("partition %d computed again: %v, want %v (the killed node held %v)", p, recomputed[p], want, held[killed])
		}
	}
	if got := collectMap(t, ctx, client.ReduceByKey(kv, addInt64, 2)); !maps.Equal(got, sumsByMod10(n)) {
		t.Fatalf("the checkpoint read back: %v", got)
	}
}
