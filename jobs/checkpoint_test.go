package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"shoal/client"
	"shoal/client/eventlog"
	"shoal/internal/miniotest"
	"shoal/internal/poll"
	"shoal/internal/testbin"
	"shoal/jobs"
)

// ckptContext starts a cluster whose checkpoint store is dir, with an
// event log.
func ckptContext(t *testing.T, nodes int, dir, endpoint string, edit ...func(*client.Options)) (*client.Context, string) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "events.jsonl")
	opts := client.Options{
		Nodes: nodes, WorkersPerNode: 1, Binary: os.Args[0], NodeBinary: testbin.Shoal(t),
		Dir: t.TempDir(), EventLog: log, WorkerStderr: os.Stderr,
		CheckpointDir: dir, S3Endpoint: endpoint, CheckpointKeep: 2,
	}
	for _, e := range edit {
		e(&opts)
	}
	c, err := client.NewContext(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, log
}

// ranksOf reads a pagerank output.
func ranksOf(t testing.TB, dir string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range readParts(t, dir) {
		page, rank, _ := strings.Cut(line, "\t")
		r, err := strconv.ParseFloat(rank, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[page] = r
	}
	return out
}

func sameRanks(t testing.TB, got, want map[string]float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d ranks, want %d", len(got), len(want))
	}
	for p, r := range want {
		if math.Abs(got[p]-r) > tol {
			t.Fatalf("page %s: rank %v, want %v", p, got[p], r)
		}
	}
}

// PageRank checkpointed to a real MinIO every 4 iterations: the objects
// and manifests are in the bucket, older checkpoints than the newest 2
// are deleted, and the answer equals the run without checkpoints.
func TestPageRankCheckpointsToMinIO(t *testing.T) {
	srv := miniotest.Start(t, "ckpt")
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	in := generate(t, "graph", 3_000)
	const iterations = 13
	ctx := context.Background()

	plain := filepath.Join(t.TempDir(), "plain")
	if _, err := jobs.PageRank(ctx, newContext(t, 1, 2, ""), in, plain, iterations, 4, 0); err != nil {
		t.Fatal(err)
	}
	c, log := ckptContext(t, 2, "s3://ckpt/runs/pr", srv.Endpoint())
	out := filepath.Join(t.TempDir(), "out")
	if _, err := jobs.PageRankWith(ctx, c, in, out, jobs.PageRankOptions{Iterations: iterations, Partitions: 4, CheckpointEvery: 4}); err != nil {
		t.Fatal(err)
	}
	sameRanks(t, ranksOf(t, out), ranksOf(t, plain), 1e-9)
	run, err := c.CheckpointRun()
	if err != nil {
		t.Fatal(err)
	}
	prefix := "runs/pr/" + run.String() + "/"

	written := 0
	for _, ev := range readEvents(t, log) {
		if ev["event"] == "checkpoint_written" {
			written++
			if uri, _ := ev["uri"].(string); !strings.HasPrefix(uri, "s3://ckpt/"+prefix+"pagerank-ranks-") {
				t.Errorf("checkpoint_written uri %q", uri)
			}
		}
	}
	if written != 12 {
		t.Errorf("%d checkpoint partitions written, want 12 (3 checkpoints of 4)", written)
	}
	mc, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for obj := range mc.ListObjects(ctx, "ckpt", minio.ListObjectsOptions{Recursive: true}) { // sorted by key
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	// The run's marker; checkpoints at iterations 4, 8 and 12, of which
	// the newest 2 are kept.
	want := []string{prefix + "_run.json"}
	for _, it := range []int{8, 12} {
		want = append(want, fmt.Sprintf("%spagerank-ranks-%06d/manifest.json", prefix, it))
		for p := range 4 {
			want = append(want, fmt.Sprintf("%spagerank-ranks-%06d/part-%05d", prefix, it, p))
		}
	}
	if strings.Join(keys, "\n") != strings.Join(want, "\n") {
		t.Fatalf("objects in the bucket:\n%s\nwant:\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
}

// readEvents reads an event log.
func readEvents(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		// Every line a test reads is checked against the contract.
		if err := eventlog.Check([]byte(line)); err != nil {
			t.Fatal(err)
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("event log line %q: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}

// iterationOf is the iteration of a pagerank stage's name (contribs[i],
// ranks[i]). The stages of links and pages have none: they are persisted
// on two nodes and not recomputed.
var iterationOf = regexp.MustCompile(`\[(\d+)\]`)

// reachBack runs 40 iterations on 2 nodes, kills node 1 before iteration
// 35, and returns the earliest iteration a task started after the kill
// belongs to.
//
// With checkpoints (through the nodes, the default), every checkpoint
// partition read after the kill comes from the surviving node's local
// copy, except those the killed node had uploaded, which are read
// through from the store: the recovery read.
func reachBack(t *testing.T, every int) int {
	in := generate(t, "graph", 2_000)
	c, log := ckptContext(t, 2, t.TempDir(), "")
	var killedAt int
	var killed string
	o := jobs.PageRankOptions{Iterations: 40, Partitions: 4, CheckpointEvery: every, BeforeIteration: func(i int) {
		if i == 35 {
			killedAt = len(readEvents(t, log))
			killed = c.Local().Nodes()[1].Addr
			if err := c.Local().KillNode(1); err != nil {
				t.Fatal(err)
			}
		}
	}}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := jobs.PageRankWith(context.Background(), c, in, out, o); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(in)
	want, err := jobs.RefPageRank(f, 40)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	sameRanks(t, ranksOf(t, out), want, 1e-12)
	events := readEvents(t, log)
	uploadedBy := map[string]string{} // partition URI: the node that uploaded it
	for _, ev := range events {
		if ev["event"] == "checkpoint_written" {
			uploadedBy[ev["uri"].(string)], _ = ev["node"].(string)
		}
	}
	var local, store int
	readAgain := map[string]bool{}
	for _, ev := range events[killedAt:] {
		if ev["event"] != "checkpoint_read" {
			continue
		}
		uri := ev["uri"].(string)
		want := "local"
		if uploadedBy[uri] == killed && !readAgain[uri] {
			want = "store" // then kept by the node that read it through
		}
		readAgain[uri] = true
		if ev["source"] != want {
			t.Errorf("checkpoint_read of %s after the kill: source %v, want %s (uploaded by %s, node %s was killed)", uri, ev["source"], want, uploadedBy[uri], killed)
		}
		if want == "local" {
			local++
		} else {
			store++
		}
	}
	if every > 0 {
		t.Logf("checkpoint partitions read after the kill: %d from local copies, %d from the store (those the killed node had uploaded)", local, store)
		if local+store == 0 {
			t.Errorf("no checkpoint partition was read after the kill")
		}
	}
	names := map[int]string{}
	earliest := 40
	for _, ev := range events[killedAt:] {
		switch ev["event"] {
		case "stage_submitted":
			names[int(ev["stage"].(float64))], _ = ev["name"].(string)
		case "task_start":
			m := iterationOf.FindStringSubmatch(names[int(ev["stage"].(float64))])
			if m == nil {
				continue // a stage of the running iteration's own job (reduce#N, map#N)
			}
			it, _ := strconv.Atoi(m[1])
			earliest = min(earliest, it)
		}
	}
	return earliest
}

// A node killed during iteration 35 of 40: with a checkpoint every 10
// iterations the recomputation reaches back no further than iteration
// 30; without checkpoints it reaches back to the start.
func TestPageRankNodeKilledRecomputesBackToCheckpoint(t *testing.T) {
	with := reachBack(t, 10)
	without := reachBack(t, 0)
	t.Logf("node killed before iteration 35 of 40: recomputation reached back to iteration %d with a checkpoint every 10, to %d without", with, without)
	if with < 30 {
		t.Errorf("with checkpoints every 10 iterations, tasks of iteration %d ran after the kill; want >= 30", with)
	}
	if without > 1 {
		t.Errorf("without checkpoints, the earliest iteration recomputed is %d; want the start", without)
	}
}

// The driver killed mid-run (SIGKILL of `shoal run pagerank`) and started
// again with --resume: it starts from the newest complete checkpoint and
// writes the same answer as an uninterrupted run.
func TestPageRankResumeAfterDriverKilled(t *testing.T) {
	shoal := testbin.Shoal(t)
	in := generate(t, "graph", 3_000)
	store := t.TempDir()
	args := func(out string, extra ...string) []string {
		return append([]string{"run", "pagerank", "--input", in, "--output", out, "--iterations", "30", "--partitions", "4",
			"--checkpoint-dir", store, "--checkpoint-every", "5", "--top", "0"}, extra...)
	}
	first := exec.Command(shoal, args(filepath.Join(t.TempDir(), "killed"))...)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Process.Kill()
	manifests := filepath.Join(store, "*", "*", "pagerank-ranks-000010", "manifest.json") // APP/RUN/NAME
	poll.WaitFor(t, 2*time.Minute, "the checkpoint of iteration 10", func() bool {
		m, _ := filepath.Glob(manifests)
		return len(m) > 0
	})
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.Wait()

	out := filepath.Join(t.TempDir(), "resumed")
	b, err := exec.Command(shoal, args(out, "--resume")...).CombinedOutput()
	if err != nil {
		t.Fatalf("resumed run: %v\n%s", err, b)
	}
	m := regexp.MustCompile(`resumed from the checkpoint of iteration (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("the resumed run did not start from a checkpoint:\n%s", b)
	}
	if it, _ := strconv.Atoi(string(m[1])); it < 10 || it%5 != 0 {
		t.Fatalf("resumed from iteration %d, want a checkpoint at or after 10", it)
	}
	f, _ := os.Open(in)
	want, err := jobs.RefPageRank(f, 30)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	sameRanks(t, ranksOf(t, out), want, 1e-12)
}

// MinIO stopped before the job that writes a checkpoint: the nodes'
// uploads fail and are retried, the run fails once the driver's
// checkpoint timeout expires (not before) with an error naming the
// endpoint and bucket, and the checkpoint has no manifest, so it does not
// exist for a reader.
func TestPageRankMinIOStoppedDuringCheckpoint(t *testing.T) {
	srv := miniotest.Start(t, "ckpt")
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	in := generate(t, "graph", 2_000)
	// Through the nodes (the default), the nodes retry their uploads
	// until the driver's checkpoint timeout.
	c, _ := ckptContext(t, 1, "s3://ckpt/pr", srv.Endpoint(), func(o *client.Options) { o.CheckpointTimeout = 15 * time.Second })
	// ranks[3] is written by iteration 4's first job.
	o := jobs.PageRankOptions{Iterations: 6, Partitions: 4, CheckpointEvery: 3, BeforeIteration: func(i int) {
		if i == 4 {
			srv.Stop()
		}
	}}
	start := time.Now()
	_, err := jobs.PageRankWith(context.Background(), c, in, filepath.Join(t.TempDir(), "out"), o)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), srv.Addr()) || !strings.Contains(err.Error(), "ckpt") {
		t.Fatalf("pagerank with MinIO stopped: %v; want an error naming the endpoint and bucket", err)
	}
	if took > 2*time.Minute {
		t.Errorf("the job failed after %v; want a bounded time", took)
	}
	if took < 15*time.Second {
		t.Errorf("the job failed after %v, before the checkpoint timeout of 15 s: the nodes' uploads should have been retried until then", took)
	}
	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	mc, cerr := srv.Client()
	if cerr != nil {
		t.Fatal(cerr)
	}
	for obj := range mc.ListObjects(context.Background(), "ckpt", minio.ListObjectsOptions{Prefix: "pr/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		if strings.HasSuffix(obj.Key, "/manifest.json") {
			t.Fatalf("a manifest exists for the checkpoint whose writes failed: %s", obj.Key)
		}
	}
	t.Logf("failed after %v: %v", took.Round(time.Millisecond), err)
}

// 1,000 iterations of PageRank without a checkpoint: the lineage grows
// with every iteration, and planning and running must not blow up (no
// recursion over the lineage, no walk of it per job). The planning time of
// the first and last iterations is reported.
func TestPageRankLongLineage(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 jobs")
	}
	in := generate(t, "graph", 300)
	c := newContext(t, 1, 2, "")
	const iterations = 1000
	out := filepath.Join(t.TempDir(), "out")
	start := time.Now()
	res, err := jobs.PageRankWith(context.Background(), c, in, out, jobs.PageRankOptions{Iterations: iterations, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	f, _ := os.Open(in)
	want, err := jobs.RefPageRank(f, iterations)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	sameRanks(t, ranksOf(t, out), want, 1e-9)
	if len(res.Planning) != iterations {
		t.Fatalf("%d planning times, want %d", len(res.Planning), iterations)
	}
	median := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	t.Logf("%d iterations in %v; planning per iteration: median %v over the first 100, %v over the last 100",
		iterations, took.Round(time.Millisecond), median(res.Planning[:100]), median(res.Planning[iterations-100:]))
}
