package client_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"shoal/client"
	"shoal/internal/testbin"
)

func TestMain(m *testing.M) {
	client.Init() // in a worker process (the test binary re-executed) this runs the worker
	os.Exit(m.Run())
}

// newContext starts a local cluster whose workers are this test binary and
// whose node services are the shoal binary.
func newContext(t *testing.T, nodes, workers int) (*client.Context, string) {
	t.Helper()
	return newContextWith(t, client.Options{Nodes: nodes, WorkersPerNode: workers})
}

// newContextWith is newContext with more options: opts gets the binaries,
// the event log (whose path it returns), the directory and the workers'
// stderr.
func newContextWith(t *testing.T, opts client.Options) (*client.Context, string) {
	t.Helper()
	events := filepath.Join(t.TempDir(), "events.jsonl")
	opts.Binary, opts.NodeBinary = os.Args[0], testbin.Shoal(t)
	opts.EventLog, opts.Dir, opts.WorkerStderr = events, t.TempDir(), os.Stderr
	c, err := client.NewContext(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c, events
}

func splitWords(line string, emit func(string)) {
	for _, w := range strings.Fields(line) {
		emit(w)
	}
}
func one(w string) client.KV[string, int64] { return client.KV[string, int64]{Key: w, Value: 1} }
func add(a, b int64) int64                  { return a + b }
func isEven(x int64) bool                   { return x%2 == 0 }
func square(x int64) int64                  { return x * x }

func TestWordCountAndActions(t *testing.T) {
	c, events := newContext(t, 2, 2)
	ctx := context.Background()
	lines := []string{"a b c", "b c", "c", "", "d  d\td a"}
	want := map[string]int64{}
	for _, l := range lines {
		for _, w := range strings.Fields(l) {
			want[w]++
		}
	}
	words := client.FlatMap(client.Parallelize(c, lines, 3), splitWords)
	counts := client.ReduceByKey(client.Map(words, one), add, 4).SetName("counts")
	got, err := client.Collect(ctx, counts)
	if err != nil {
		t.Fatal(err)
	}
	gotMap := map[string]int64{}
	for _, kv := range got {
		gotMap[kv.Key] = kv.Value
	}
	if !maps.Equal(gotMap, want) {
		t.Fatalf("word counts %v, want %v", gotMap, want)
	}
	// A second action over the same shuffled RDD skips the map stage.
	n, err := client.Count(ctx, counts)
	if err != nil || n != int64(len(want)) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(want))
	}
	if skipped := eventsOf(t, events, "stage_skipped"); len(skipped) != 1 || skipped[0]["job"].(float64) != 1 {
		t.Fatalf("stage_skipped events %v, want one in job 1", skipped)
	}

	r := client.Range(c, 0, 100, 7)
	evens := client.Filter(r, isEven)
	if n, err := client.Count(ctx, evens); err != nil || n != 50 {
		t.Fatalf("Count(evens) = %d, %v", n, err)
	}
	sum, err := client.Reduce(ctx, client.Map(r, square), add)
	if err != nil || sum != 328350 {
		t.Fatalf("sum of squares = %d, %v", sum, err)
	}
	first, err := client.Take(ctx, r, 5)
	if err != nil || !slices.Equal(first, []int64{0, 1, 2, 3, 4}) {
		t.Fatalf("Take = %v, %v", first, err)
	}
	u := client.Coalesce(client.Union(r, evens), 3)
	if n, err := client.Count(ctx, u); err != nil || n != 150 || u.NumPartitions() != 3 {
		t.Fatalf("Count(union) = %d, %v, %d partitions", n, err, u.NumPartitions())
	}
	d := client.Distinct(client.Map(r, mod10), 3)
	dv, err := client.Collect(ctx, d)
	slices.Sort(dv)
	if err != nil || !slices.Equal(dv, []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("Distinct = %v, %v", dv, err)
	}
}

func mod10(x int64) int64 { return x % 10 }

func TestJoins(t *testing.T) {
	c, _ := newContext(t, 1, 2)
	ctx := context.Background()
	a := client.Parallelize(c, []client.KV[string, int]{{"x", 1}, {"y", 2}, {"y", 3}, {"z", 4}}, 2)
	b := client.Parallelize(c, []client.KV[string, string]{{"y", "Y"}, {"z", "Z1"}, {"z", "Z2"}, {"w", "W"}}, 3)
	j, err := client.Collect(ctx, client.Join(a, b, 2))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range j {
		got = append(got, fmt.Sprintf("%s:%d:%s", kv.Key, kv.Value.First, kv.Value.Second))
	}
	slices.Sort(got)
	if want := []string{"y:2:Y", "y:3:Y", "z:4:Z1", "z:4:Z2"}; !slices.Equal(got, want) {
		t.Fatalf("Join = %v, want %v", got, want)
	}
	lj, err := client.Collect(ctx, client.LeftOuterJoin(a, b, 2))
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, kv := range lj {
		got = append(got, fmt.Sprintf("%s:%d:%s:%v", kv.Key, kv.Value.First, kv.Value.Second.Value, kv.Value.Second.Valid))
	}
	slices.Sort(got)
	if want := []string{"x:1::false", "y:2:Y:true", "y:3:Y:true", "z:4:Z1:true", "z:4:Z2:true"}; !slices.Equal(got, want) {
		t.Fatalf("LeftOuterJoin = %v, want %v", got, want)
	}
}

func TestAnonymousFunctionRejected(t *testing.T) {
	c, _ := newContext(t, 1, 1)
	factor := int64(3)
	r := client.Map(client.Range(c, 0, 10, 2), func(x int64) int64 { return x * factor })
	_, err := client.Count(context.Background(), r)
	if err == nil || !strings.Contains(err.Error(), "anonymous") || !strings.Contains(err.Error(), "top-level") {
		t.Fatalf("err = %v, want an error about the anonymous function saying what to write instead", err)
	}
}

// eventsOf reads the event log and returns the events of one kind.
func eventsOf(t *testing.T, path, kind string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range allEvents(t, path) {
		if m["event"] == kind {
			out = append(out, m)
		}
	}
	return out
}

// lookup maps a key through a broadcast table and counts the misses.
type lookup struct {
	Table  client.Broadcast[map[string]string]
	Misses client.Accumulator
}

func (l lookup) Map(k string) string {
	v, ok := l.Table.Value()[k]
	if !ok {
		l.Misses.Add(1)
		return "?"
	}
	return v
}

// A broadcast is stored once in each node service and fetched once per
// worker, however many of its tasks use it: the task metrics say which
// tasks fetched it.
func TestBroadcastAndAccumulator(t *testing.T) {
	c, log := newContext(t, 2, 2)
	table, err := client.NewBroadcast(c, map[string]string{"a": "A", "b": "B"})
	if err != nil {
		t.Fatal(err)
	}
	misses := c.NewAccumulator("misses")
	keys := client.Parallelize(c, []string{"a", "b", "c", "a", "d", "b"}, 3)
	got, err := client.Collect(context.Background(), client.MapWith[string, string](keys, lookup{Table: table, Misses: misses}))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A", "B", "?", "A", "?", "B"}; !slices.Equal(got, want) {
		t.Fatalf("lookups %v, want %v", got, want)
	}
	if n := c.Value(misses); n != 2 {
		t.Fatalf("misses accumulated %d, want 2", n)
	}
	if table.Value()["a"] != "A" {
		t.Fatal("the driver's broadcast value is wrong")
	}
	// A second job: the workers have it already.
	if _, err := client.Collect(context.Background(), client.MapWith[string, string](keys, lookup{Table: table, Misses: misses})); err != nil {
		t.Fatal(err)
	}
	fetches := map[string]int{} // by worker
	tasks := 0
	for _, ev := range eventsOf(t, log, "task_end") {
		tasks++
		if m, ok := ev["metrics"].(map[string]any); ok {
			fetches[ev["worker"].(string)] += num(m["broadcast_fetches"])
		}
	}
	if len(fetches) == 0 || tasks <= len(fetches) {
		t.Fatalf("%d tasks, broadcast fetched by workers %v; the test proves nothing", tasks, fetches)
	}
	for w, n := range fetches {
		if n != 1 {
			t.Errorf("worker %s fetched the broadcast %d times, want once", w, n)
		}
	}
}

// flaky fails the first attempt that meets record 0 (after counting it),
// using a marker file to know it already failed once.
type flaky struct {
	Marker string
	Seen   client.Accumulator
}

func (f flaky) Map(x int64) int64 {
	f.Seen.Add(1)
	if x == 0 {
		if _, err := os.Stat(f.Marker); os.IsNotExist(err) {
			os.WriteFile(f.Marker, nil, 0o644)
			panic("first attempt fails")
		}
	}
	return x
}

// A retried task's accumulator updates count once: the failed attempt's
// are dropped.
func TestAccumulatorCountsOnceAcrossAttempts(t *testing.T) {
	c, events := newContext(t, 1, 2)
	seen := c.NewAccumulator("seen")
	r := client.MapWith[int64, int64](client.Range(c, 0, 100, 4), flaky{Marker: filepath.Join(t.TempDir(), "failed"), Seen: seen})
	if n, err := client.Count(context.Background(), r); err != nil || n != 100 {
		t.Fatalf("Count = %d, %v", n, err)
	}
	if got := c.Value(seen); got != 100 {
		t.Fatalf("accumulator %d, want 100", got)
	}
	failed := 0
	for _, ev := range eventsOf(t, events, "task_end") {
		if ev["status"] == "failed" {
			failed++
			if !strings.Contains(ev["reason"].(string), "first attempt fails") {
				t.Fatalf("failure reason %q", ev["reason"])
			}
		}
	}
	if failed != 1 {
		t.Fatalf("%d failed attempts, want 1", failed)
	}
}

func alwaysFails(x int64) int64 { panic(fmt.Sprintf("bad record %d", x)) }

// A task that keeps failing fails the job with the user's error after 4
// attempts.
func TestTaskFailsJobAfterFourAttempts(t *testing.T) {
	c, events := newContext(t, 1, 2)
	_, err := client.Count(context.Background(), client.Map(client.Range(c, 0, 10, 2), alwaysFails))
	if err == nil || !strings.Contains(err.Error(), "bad record") || !strings.Contains(err.Error(), "4 times") {
		t.Fatalf("err = %v, want the user's error after 4 attempts", err)
	}
	if ends := eventsOf(t, events, "job_end"); len(ends) != 1 || ends[0]["status"] != "failed" {
		t.Fatalf("job_end events %v", ends)
	}
}

// meanAcc is a value-only accumulator; setAcc holds a map, so each record
// must start from its own zero or keys would mix.
type meanAcc struct{ Sum, N int64 }
type setAcc struct{ Seen map[int64]bool }

func addToMean(a meanAcc, v int64) meanAcc { return meanAcc{a.Sum + v, a.N + 1} }
func mergeMeans(a, b meanAcc) meanAcc      { return meanAcc{a.Sum + b.Sum, a.N + b.N} }
func addToSet(a setAcc, v int64) setAcc    { a.Seen[v] = true; return a }
func mergeSets(a, b setAcc) setAcc {
	for v := range b.Seen {
		a.Seen[v] = true
	}
	return a
}
func modKey(x int64) client.KV[int64, int64] { return client.KV[int64, int64]{Key: x % 3, Value: x} }

func TestAggregateByKey(t *testing.T) {
	c, _ := newContext(t, 1, 2)
	ctx := context.Background()
	pairs := client.Map(client.Range(c, 0, 30, 4), modKey)
	means, err := client.Collect(ctx, client.AggregateByKey(pairs, meanAcc{}, addToMean, mergeMeans, 2))
	if err != nil {
		t.Fatal(err)
	}
	lists, err := client.Collect(ctx, client.AggregateByKey(pairs, setAcc{Seen: map[int64]bool{}}, addToSet, mergeSets, 2))
	if err != nil {
		t.Fatal(err)
	}
	if len(means) != 3 || len(lists) != 3 {
		t.Fatalf("%d and %d keys, want 3", len(means), len(lists))
	}
	for _, kv := range means {
		var want meanAcc
		for x := kv.Key; x < 30; x += 3 {
			want.Sum, want.N = want.Sum+x, want.N+1
		}
		if kv.Value != want {
			t.Errorf("key %d: %+v, want %+v", kv.Key, kv.Value, want)
		}
	}
	for _, kv := range lists {
		got := slices.Sorted(maps.Keys(kv.Value.Seen))
		var want []int64
		for x := kv.Key; x < 30; x += 3 {
			want = append(want, x)
		}
		if !slices.Equal(got, want) {
			t.Errorf("key %d: values %v, want %v (records sharing one zero would mix keys)", kv.Key, got, want)
		}
	}
}

func mod7KV(x int64) client.KV[int64, int64] { return client.KV[int64, int64]{Key: x % 7, Value: x} }

// TestUnionCoalesceOfShuffles reads shuffles through Union and Coalesce,
// whose partitions are not their parents': each task is sent the map
// outputs of the reduce partitions it reads only (taskinputs.go), and a
// partition it was not sent would fail the task.
func TestUnionCoalesceOfShuffles(t *testing.T) {
	c, _ := newContext(t, 2, 1)
	ctx := context.Background()
	r := client.Range(c, 0, 1000, 6)
	a := client.ReduceByKey(client.Map(r, mod10KV), addInt64, 5)
	b := client.ReduceByKey(client.Map(r, mod7KV), addInt64, 3)
	u := client.Coalesce(client.Union(a, b), 3) // [0,2) [2,5) of a, then b's 3
	got, err := client.Collect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for x := range int64(1000) {
		want[fmt.Sprintf("mod10 %d", x%10)] += x
		want[fmt.Sprintf("mod7 %d", x%7)] += x
	}
	// The union holds a's 10 keys, then b's 7: told apart by order.
	if len(got) != 17 {
		t.Fatalf("%d records, want 17: %v", len(got), got)
	}
	sums := map[string]int64{}
	for i, kv := range got {
		name := "mod10"
		if i >= 10 {
			name = "mod7"
		}
		sums[fmt.Sprintf("%s %d", name, kv.Key)] += kv.Value
	}
	if !maps.Equal(sums, want) {
		t.Fatalf("sums %v, want %v", sums, want)
	}
}
