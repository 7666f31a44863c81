package client_test

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"shoal/client"
	"shoal/internal/poll"
	"shoal/shuffleservice/nodeclient"
)

// The persist tests run real clusters. A persisted RDD's records pass
// through countedKV, whose accumulator counts every record computed: it
// ends at exactly the number of records when no partition was computed
// twice, since every job has stages of its own (accumulators count once
// per stage and partition, not once per RDD).

// countedKV keys x by x%10 and counts it in Computed; records from From on
// wait for Gate (if set).
type countedKV struct {
	Computed client.Accumulator
	Gate     string
	From     int64
}

func (c countedKV) Map(x int64) client.KV[int64, int64] {
	c.Computed.Add(1)
	if c.Gate != "" && x >= c.From {
		waitFile(c.Gate)
	}
	return client.KV[int64, int64]{Key: x % 10, Value: x}
}

// blockEvents returns, per partition, the nodes of the block events of
// one kind for RDD rdd, in order.
func blockEvents(events []map[string]any, kind string, rdd int) map[int][]string {
	out := map[int][]string{}
	for _, ev := range events {
		if ev["event"] == kind && num(ev["rdd"]) == rdd {
			p := num(ev["partition"])
			out[p] = append(out[p], ev["node"].(string))
		}
	}
	return out
}

// Every level: the first action computes and stores each partition once,
// the second reads every partition from its block, and answers agree.
func TestPersistLevels(t *testing.T) {
	levels := []client.StorageLevel{client.MemoryDeser, client.MemorySer, client.MemoryAndDisk, client.DiskOnly, client.MemorySer2}
	// A task waits for a slot where its block is (a MemoryDeser block is
	// in one worker's heap): the tasks are short, the wait is a bound.
	c, log := startCluster(t, client.Options{Nodes: 2, WorkersPerNode: 1, LocalityWait: 10 * time.Second})
	ctx := context.Background()
	const n, parts = 4000, 4
	for _, level := range levels {
		t.Run(level.String(), func(t *testing.T) {
			computed := c.NewAccumulator("computed " + level.String())
			kv := client.MapWith[int64, client.KV[int64, int64]](client.Range(c, 0, n, parts), countedKV{Computed: computed}).Persist(level)
			if got, err := client.Count(ctx, kv); err != nil || got != n {
				t.Fatalf("count: %d, %v; want %d", got, err, n)
			}
			sums := client.ReduceByKey(kv, addInt64, 3)
			if got := collectMap(t, ctx, sums); !maps.Equal(got, sumsByMod10(n)) {
				t.Fatalf("sums %v, want %v", got, sumsByMod10(n))
			}
			if got := c.Value(computed); got != n {
				t.Errorf("records computed %d, want %d: a partition was computed again", got, n)
			}
			events := allEvents(t, log)
			stored, hits := blockEvents(events, "block_stored", kv.ID()), blockEvents(events, "block_hit", kv.ID())
			copies := 1
			if level == client.MemorySer2 {
				copies = 2
			}
			for p := range parts {
				if len(stored[p]) != copies || len(hits[p]) != 1 {
					t.Errorf("partition %d: stored on %v, hit on %v; want %d copies and 1 hit", p, stored[p], hits[p], copies)
				}
				if copies == 2 && len(stored[p]) == 2 && stored[p][0] == stored[p][1] {
					t.Errorf("partition %d: both copies on %s", p, stored[p][0])
				}
			}
			for _, ev := range events {
				if ev["event"] == "block_stored" && num(ev["rdd"]) == kv.ID() && ev["level"] != wantHeld(level) {
					t.Errorf("block_stored at level %v, want %s: %v", ev["level"], wantHeld(level), ev)
				}
			}
			held := nodeBlocks(t, c)
			if level != client.MemoryDeser && held == 0 {
				t.Fatalf("the node services hold no block of a %v RDD", level)
			}
			if err := kv.Unpersist(ctx); err != nil {
				t.Fatal(err)
			}
			if held := nodeBlocks(t, c); held != 0 {
				t.Errorf("the node services hold %d blocks (memory and disk) right after Unpersist, want 0", held)
			}
			// Unpersisted: the next action computes again.
			if got, err := client.Count(ctx, kv); err != nil || got != n {
				t.Fatalf("count after Unpersist: %d, %v", got, err)
			}
			if got := c.Value(computed); got != 2*n {
				t.Errorf("records computed after Unpersist %d, want %d", got, 2*n)
			}
		})
	}
}

// nodeBlocks counts the blocks, in memory and on disk, of every node
// service of c's cluster, from their Status.
func nodeBlocks(t *testing.T, c *client.Context) uint64 {
	t.Helper()
	var n uint64
	for _, node := range c.Local().Nodes() {
		cl, err := nodeclient.Dial(node.Addr, nodeclient.WithCredentials(c.Local().Credentials()))
		if err != nil {
			t.Fatal(err)
		}
		st, err := cl.Status(context.Background())
		cl.Close()
		if err != nil {
			t.Fatal(err)
		}
		n += st.GetBlocks().GetMemoryBlocks() + st.GetBlocks().GetDiskBlocks()
	}
	return n
}

// wantHeld is the level a block of level l is held at in this test, where
// everything fits in memory.
func wantHeld(l client.StorageLevel) string {
	if l == client.MemorySer2 {
		return client.MemorySer.String()
	}
	return l.String()
}

// A worker killed while a cached RDD is reused by a wide job: its running
// tasks run again and read the cache; no cached partition is computed
// again, and the stage that computed the RDD is not run again.
func TestPersistWorkerKilledDuringReuse(t *testing.T) {
	c, log := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 2})
	ctx := context.Background()
	const n, parts = 800, 8
	computed := c.NewAccumulator("computed")
	kv := client.MapWith[int64, client.KV[int64, int64]](client.Range(c, 0, n, parts), countedKV{Computed: computed}).Persist(client.MemorySer)
	if got, err := client.Count(ctx, kv); err != nil || got != n {
		t.Fatalf("count: %d, %v", got, err)
	}
	firstJob := len(allEvents(t, log))
	gate := filepath.Join(t.TempDir(), "gate")
	sums := client.ReduceByKey(client.MapWith[client.KV[int64, int64], client.KV[int64, int64]](kv, gatedPass{Gate: gate}), addInt64, 4)
	type result struct {
		got map[int64]int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := client.Collect(ctx, sums)
		m := map[int64]int64{}
		for _, r := range got {
			m[r.Key] = r.Value
		}
		done <- result{m, err}
	}()
	var victim string
	poll.WaitFor(t, 30*time.Second, "map tasks reading the cache to start", func() bool {
		for _, ev := range allEvents(t, log)[firstJob:] {
			if ev["event"] == "task_start" && ev["kind"] == "map" {
				victim = ev["worker"].(string)
				return true
			}
		}
		return false
	})
	killWorkerMidTask(t, c, log, victim)
	open(t, gate)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !maps.Equal(r.got, sumsByMod10(n)) {
		t.Fatalf("sums %v, want %v", r.got, sumsByMod10(n))
	}
	events := allEvents(t, log)
	later := events[firstJob:]
	if s := blockEvents(later, "block_stored", kv.ID()); len(s) > 0 {
		t.Errorf("cached partitions stored again after the worker's loss: %v", s)
	}
	hits := blockEvents(later, "block_hit", kv.ID())
	if len(hits) != parts {
		t.Errorf("block hits for partitions %v, want all %d", slices.Sorted(maps.Keys(hits)), parts)
	}
	if got := c.Value(computed); got != n {
		t.Errorf("records computed %d, want %d", got, n)
	}
	for _, ev := range later {
		if ev["event"] == "stage_submitted" && ev["kind"] == "result" && num(ev["job"]) == 0 {
			t.Errorf("the count's stage ran again: %v", ev)
		}
	}
}

// A node killed while it holds cached partitions: with one copy they are
// computed again from lineage (only they); with a _2 level they are read
// from the replica and nothing is computed again.
func TestPersistNodeKilled(t *testing.T) {
	for _, level := range []client.StorageLevel{client.MemorySer, client.MemorySer2} {
		t.Run(level.String(), func(t *testing.T) {
			c, log := startCluster(t, client.Options{Nodes: 2, WorkersPerNode: 1})
			ctx := context.Background()
			const n, parts = 800, 8
			computed := c.NewAccumulator("computed")
			kv := client.MapWith[int64, client.KV[int64, int64]](client.Range(c, 0, n, parts), countedKV{Computed: computed}).Persist(level)
			if got, err := client.Count(ctx, kv); err != nil || got != n {
				t.Fatalf("count: %d, %v", got, err)
			}
			killed := c.Local().Nodes()[1].Addr
			var onKilled []int // partitions whose only copy is on the killed node
			for p, nodes := range blockEvents(allEvents(t, log), "block_stored", kv.ID()) {
				if !slices.ContainsFunc(nodes, func(a string) bool { return a != killed }) {
					onKilled = append(onKilled, p)
				}
			}
			slices.Sort(onKilled)
			if level == client.MemorySer && len(onKilled) == 0 {
				t.Fatal("no cached partition is on node 1 alone; the test proves nothing")
			}
			if level == client.MemorySer2 && len(onKilled) > 0 {
				t.Fatalf("partitions %v have no replica", onKilled)
			}
			before := len(allEvents(t, log))
			if err := c.Local().KillNode(1); err != nil {
				t.Fatal(err)
			}
			got := collectMap(t, ctx, client.ReduceByKey(kv, addInt64, 3))
			if !maps.Equal(got, sumsByMod10(n)) {
				t.Fatalf("sums %v, want %v", got, sumsByMod10(n))
			}
			later := allEvents(t, log)[before:]
			again := slices.Sorted(maps.Keys(blockEvents(later, "block_stored", kv.ID())))
			if !slices.Equal(again, onKilled) {
				t.Errorf("partitions computed and stored again: %v, want those only on the killed node: %v", again, onKilled)
			}
			if want := int64(n + n/parts*len(onKilled)); c.Value(computed) != want {
				t.Errorf("records computed %d, want %d", c.Value(computed), want)
			}
			for p, nodes := range blockEvents(later, "block_hit", kv.ID()) {
				if slices.Contains(nodes, killed) {
					t.Errorf("partition %d read from the killed node", p)
				}
			}
			t.Logf("%v: partitions computed again after killing %s: %v", level, killed, again)
		})
	}
}

// A finished application takes its blocks (and shuffle files) with it:
// Close removes it from every node, whose directories keep nothing of it.
func TestCloseRemovesTheApplicationsBlocks(t *testing.T) {
	dir := t.TempDir()
	c, _ := startCluster(t, client.Options{Nodes: 2, WorkersPerNode: 1, Dir: dir})
	ctx := context.Background()
	kv := client.Map(client.Range(c, 0, 1000, 4), mod10KV).Persist(client.DiskOnly)
	if _, err := client.Count(ctx, client.ReduceByKey(kv, addInt64, 2)); err != nil {
		t.Fatal(err)
	}
	blocks, _ := filepath.Glob(filepath.Join(dir, "node-*", c.App(), "blocks", "*"))
	if len(blocks) == 0 {
		t.Fatalf("no block files under %s before Close; the test proves nothing", dir)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "node-*", c.App())); len(left) > 0 {
		t.Fatalf("the application's directories are left after Close: %v", left)
	}
}
