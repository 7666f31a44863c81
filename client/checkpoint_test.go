package client_test

import (
	"context"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"shoal/checkpoint"
	"shoal/client"
)

// A checkpointed RDD is written while the first job computes it (never
// computed twice for it), its manifest is written last, and its lineage
// is truncated: the next job reads it from the store and runs no stage
// of its lineage.
// Through the nodes (the default), the job returns before its
// checkpoint is durable: WaitCheckpoints waits for the manifest, and the
// read comes from the node's local copy.
func TestCheckpointWritesOnceAndTruncates(t *testing.T) {
	for _, via := range []string{client.CheckpointViaNode, client.CheckpointViaTask} {
		t.Run("via="+via, func(t *testing.T) { testCheckpointWritesOnceAndTruncates(t, via) })
	}
}

func testCheckpointWritesOnceAndTruncates(t *testing.T, via string) {
	store := t.TempDir()
	c, log := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 2, CheckpointDir: "file://" + store, CheckpointVia: via})
	ctx := context.Background()
	const n = 2000
	computed := c.NewAccumulator("computed")
	kv := client.MapWith[int64, client.KV[int64, int64]](client.Range(c, 0, n, 4), countedKV{Computed: computed})
	sums := client.ReduceByKey(kv, addInt64, 3).SetName("sums").Checkpoint()
	if got := collectMap(t, ctx, sums); !maps.Equal(got, sumsByMod10(n)) {
		t.Fatalf("first job: %v", got)
	}
	if err := c.WaitCheckpoints(ctx); err != nil {
		t.Fatal(err)
	}
	ms, err := c.ListCheckpoints(ctx)
	if err != nil || len(ms) != 1 || ms[0].NumPartitions != 3 || !strings.HasPrefix(ms[0].Lineage, "sums") {
		t.Fatalf("checkpoints %+v, %v; want one of 3 partitions", ms, err)
	}
	events := allEvents(t, log)
	written := map[int]bool{}
	for _, ev := range events {
		if ev["event"] == "checkpoint_written" && num(ev["rdd"]) == sums.ID() {
			written[num(ev["partition"])] = true
			if uri, _ := ev["uri"].(string); !strings.HasPrefix(uri, "file://"+store) {
				t.Errorf("checkpoint_written uri %q is not in the store", uri)
			}
		}
	}
	if len(written) != 3 {
		t.Fatalf("partitions written %v, want 3", written)
	}
	before := len(events)
	if got := collectMap(t, ctx, client.MapValues(sums, negate)); len(got) != 10 {
		t.Fatalf("second job: %v", got)
	}
	read := 0
	for _, ev := range allEvents(t, log)[before:] {
		switch {
		case ev["event"] == "checkpoint_read":
			read++
			if want := map[string]string{client.CheckpointViaNode: "local", client.CheckpointViaTask: ""}[via]; ev["source"] != nil && ev["source"] != want || ev["source"] == nil && want != "" {
				t.Errorf("checkpoint_read source %v, want %q", ev["source"], want)
			}
		case ev["event"] == "stage_submitted" && ev["kind"] == "map", ev["event"] == "stage_skipped":
			t.Errorf("the truncated lineage was looked at: %v", ev)
		}
	}
	if read != 3 {
		t.Errorf("%d checkpoint partitions read, want 3", read)
	}
	if got := c.Value(computed); got != n {
		t.Errorf("records computed %d, want %d", got, n)
	}
}

func negate(v int64) int64 { return -v }

// A job that computes only some partitions of a checkpointed RDD (Take):
// the driver writes the others with a job of their own, then completes
// the checkpoint. Take stopped reading partition 0 after 5 records, so
// that partition was not written and is computed again, in full; the
// others are computed once.
func TestCheckpointCompletesPartialJob(t *testing.T) {
	c, _ := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 2, CheckpointDir: t.TempDir()})
	ctx := context.Background()
	computed := c.NewAccumulator("computed")
	kv := client.MapWith[int64, client.KV[int64, int64]](client.Range(c, 0, 800, 8), countedKV{Computed: computed}).Checkpoint()
	if got, err := client.Take(ctx, kv, 5); err != nil || len(got) != 5 {
		t.Fatalf("take: %v, %v", got, err)
	}
	if err := c.WaitCheckpoints(ctx); err != nil {
		t.Fatal(err)
	}
	ms, err := c.ListCheckpoints(ctx)
	if err != nil || len(ms) != 1 || ms[0].NumPartitions != 8 {
		t.Fatalf("checkpoints %+v, %v", ms, err)
	}
	if got, err := client.Count(ctx, kv); err != nil || got != 800 {
		t.Fatalf("count from the checkpoint: %d, %v", got, err)
	}
	if got := c.Value(computed); got <= 800 || got >= 900 {
		t.Errorf("records computed %d, want 800 and the few Take read of partition 0", got)
	}
}

// A checkpoint needs a store; without one the action says so.
func TestCheckpointWithoutStore(t *testing.T) {
	c, _ := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 1})
	_, err := client.Count(context.Background(), client.Range(c, 0, 10, 1).Checkpoint())
	if err == nil || !strings.Contains(err.Error(), "CheckpointDir") {
		t.Fatalf("count of a checkpointed RDD without a store: %v", err)
	}
}

// LocalCheckpoint keeps blocks in the node services and truncates the
// lineage: a partition lost with its node cannot be computed again, and
// the job fails saying so rather than computing anything wrong.
func TestLocalCheckpointLostNode(t *testing.T) {
	c, _ := startCluster(t, client.Options{Nodes: 2, WorkersPerNode: 1, MaxTaskFailures: 2})
	ctx := context.Background()
	kv := client.Map(client.Range(c, 0, 800, 8), mod10KV).LocalCheckpoint()
	if got, err := client.Count(ctx, kv); err != nil || got != 800 {
		t.Fatalf("count: %d, %v", got, err)
	}
	if got, err := client.Count(ctx, kv); err != nil || got != 800 {
		t.Fatalf("count from the blocks: %d, %v", got, err)
	}
	if err := c.Local().KillNode(1); err != nil {
		t.Fatal(err)
	}
	_, err := client.Count(ctx, kv)
	if err == nil || !strings.Contains(err.Error(), "LocalCheckpoint kept no lineage") {
		t.Fatalf("count after the node's loss: %v, want the LocalCheckpoint error", err)
	}
}

// Checkpoints belong to a run (issue 16): two contexts checkpoint into
// one store with CheckpointKeep 1 and the same checkpoint names; each
// prunes only its own. A context reads another run's checkpoint by its
// Ref, which records the use, so that pruning finished runs keeps it
// until the reader ends; Close marks a run finished.
func TestCheckpointRuns(t *testing.T) {
	store := t.TempDir()
	ctx := context.Background()
	opts := client.Options{Nodes: 1, WorkersPerNode: 1, CheckpointDir: store, CheckpointKeep: 1}
	opts.App = "first"
	first, _ := startCluster(t, opts)
	opts.App = "second"
	second, _ := startCluster(t, opts)

	checkpointed := func(c *client.Context, name string, seq int64) {
		t.Helper()
		r := client.Map(client.Range(c, 0, 100, 2), mod10KV).CheckpointAs(client.CheckpointInfo{Name: name, Seq: seq, Job: "test"})
		if n, err := client.Count(ctx, r); err != nil || n != 100 {
			t.Fatalf("count: %d, %v", n, err)
		}
		if err := c.WaitCheckpoints(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The second run's only checkpoint has the lowest Seq of all.
	checkpointed(first, "sums-2", 2)
	checkpointed(first, "sums-3", 3)
	checkpointed(second, "sums-1", 1)
	checkpointed(first, "sums-4", 4)
	ms, err := first.ListCheckpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	firstRun, _ := first.CheckpointRun()
	secondRun, _ := second.CheckpointRun()
	var refs []string
	for _, m := range ms {
		refs = append(refs, m.Ref().String())
	}
	want := []string{secondRun.String() + "/sums-1", firstRun.String() + "/sums-4"}
	if !slices.Equal(refs, want) {
		t.Fatalf("checkpoints %v, want %v (each run keeps its newest)", refs, want)
	}
	if ms[0].Job != "test" || ms[0].App != "second" {
		t.Errorf("manifest %+v", ms[0])
	}

	// The second run reads the first's checkpoint, then the first ends.
	theirs, err := client.ReadCheckpoint[client.KV[int64, int64]](ctx, second, firstRun.String()+"/sums-4")
	if err != nil {
		t.Fatal(err)
	}
	if got := collectMap(t, ctx, client.ReduceByKey(theirs, addInt64, 2)); !maps.Equal(got, sumsByMod10(100)) {
		t.Errorf("another run's checkpoint read %v", got)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := checkpoint.Open(ctx, store, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := checkpoint.PruneRuns(ctx, st, checkpoint.PruneRunsOptions{})
	if err != nil || len(res.Deleted) != 0 || len(res.Kept) != 1 || res.Kept[0].ReadBy != secondRun {
		t.Fatalf("prune while the reader runs: %+v, %v; want sums-4 kept for %s", res, err, secondRun)
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	res, err = checkpoint.PruneRuns(ctx, st, checkpoint.PruneRunsOptions{})
	if err != nil || len(res.Deleted) != 2 || len(res.Removed) != 2 {
		t.Fatalf("prune once both ended: %+v, %v; want both runs removed", res, err)
	}
	if left, _ := os.ReadDir(store); len(left) != 0 {
		t.Errorf("the store still holds %v", left)
	}
}

// A checkpoint records the record encoding that wrote it: one of records
// holding []string, whose encoding changed (gob before record encoding
// 1), is refused when its manifest predates the field, with an error
// that says why; records without slices are read as before.
func TestCheckpointRecordEncoding(t *testing.T) {
	store := t.TempDir()
	c, _ := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 2, CheckpointDir: store})
	ctx := context.Background()
	tagged := client.Map(client.Range(c, 0, 100, 2), mod10Tags).CheckpointAs(client.CheckpointInfo{Name: "tags"})
	plain := client.Map(client.Range(c, 0, 100, 2), mod10KV).CheckpointAs(client.CheckpointInfo{Name: "plain"})
	if n, err := client.Count(ctx, tagged); err != nil || n != 100 {
		t.Fatalf("count: %d, %v", n, err)
	}
	if n, err := client.Count(ctx, plain); err != nil || n != 100 {
		t.Fatalf("count: %d, %v", n, err)
	}
	if err := c.WaitCheckpoints(ctx); err != nil {
		t.Fatal(err)
	}
	read := func() (map[int64][]string, error) {
		r, err := client.ReadCheckpoint[client.KV[int64, []string]](ctx, c, "tags")
		if err != nil {
			return nil, err
		}
		kvs, err := client.Collect(ctx, r)
		got := map[int64][]string{}
		for _, kv := range kvs {
			got[kv.Key] = kv.Value
		}
		return got, err
	}
	got, err := read()
	if err != nil || len(got) != 10 || !slices.Equal(got[7], mod10Tags(97).Value) {
		t.Fatalf("read back %v, %v", got, err)
	}
	// The manifests as an engine before the field wrote them.
	root, err := checkpoint.Open(ctx, store, checkpoint.Options{})
	if err != nil {
		t.Fatal(err)
	}
	run, _ := c.CheckpointRun()
	st, err := checkpoint.RunStore(root, run)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tags", "plain"} {
		m, err := checkpoint.ReadManifest(ctx, st, name)
		if err != nil || m.RecordEncoding != 1 {
			t.Fatalf("manifest of %s: %+v, %v; want record encoding 1", name, m, err)
		}
		m.RecordEncoding = 0
		if err := checkpoint.WriteManifest(ctx, st, name, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := read(); err == nil || !strings.Contains(err.Error(), "written by an older shoal") {
		t.Fatalf("an old checkpoint of []string records: %v, want refused", err)
	}
	r, err := client.ReadCheckpoint[client.KV[int64, int64]](ctx, c, "plain")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := client.Count(ctx, r); err != nil || n != 100 {
		t.Fatalf("an old checkpoint without slices: %d, %v", n, err)
	}
}

func mod10Tags(v int64) client.KV[int64, []string] {
	return client.KV[int64, []string]{Key: v % 10, Value: []string{"tag", strconv.FormatInt(v%10, 10), ""}}
}
