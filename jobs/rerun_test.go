package jobs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"shoal/checkpoint"
	"shoal/client"
	"shoal/internal/miniotest"
	"shoal/internal/testbin"
	"shoal/jobs"
)

// Issue 16's defects, as a new user meets them: `shoal run` commands.

// shoalRun runs the shoal binary and returns its stdout, stderr and exit
// status.
func shoalRun(t *testing.T, bin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("shoal %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// refRanks is RefPageRank of the file at path.
func refRanks(t *testing.T, path string, iterations int) map[string]float64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := jobs.RefPageRank(f, iterations)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

// ckptBackend is a checkpoint store for the CLI and the library: its
// URI, the --s3-endpoint and environment it needs.
type ckptBackend struct {
	uri, endpoint string
	env           []string
}

func ckptBackends(t *testing.T) map[string]func(t *testing.T) ckptBackend {
	return map[string]func(t *testing.T) ckptBackend{
		"dir": func(t *testing.T) ckptBackend { return ckptBackend{uri: "file://" + t.TempDir()} },
		"minio": func(t *testing.T) ckptBackend {
			srv := miniotest.Start(t, "ckpt")
			t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
			t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
			return ckptBackend{uri: "s3://ckpt/shared", endpoint: srv.Endpoint(),
				env: []string{"AWS_ACCESS_KEY_ID=" + miniotest.AccessKey, "AWS_SECRET_ACCESS_KEY=" + miniotest.SecretKey}}
		},
	}
}

var (
	runLine    = regexp.MustCompile(`checkpoints of this run go to \S+/([^/\s]+/[^/\s]+)\n`)
	resumeLine = regexp.MustCompile(`resuming from the checkpoint of iteration (\d+) of run (\S+) `)
)

// The checkpointed PageRank run three times over one checkpoint
// directory, as issue 16 reports it: every run succeeds with the
// reference answer (the second failed at its second iteration, its
// checkpoint deleted by retention that ranked the first run's later
// iterations above it); then --resume starts from the newest run's newest
// checkpoint and says so. On a local directory and on MinIO.
func TestPageRankCheckpointedRerun(t *testing.T) {
	bin := testbin.Shoal(t)
	in := generate(t, "graph", 2_000)
	want := refRanks(t, in, 6)
	for name, open := range ckptBackends(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			args := func(out string, extra ...string) []string {
				a := []string{"run", "pagerank", "--input", in, "--output", out, "--iterations", "6", "--partitions", "3", "--top", "0",
					"--checkpoint-dir", b.uri, "--checkpoint-every", "1"}
				if b.endpoint != "" {
					a = append(a, "--s3-endpoint", b.endpoint)
				}
				return append(a, extra...)
			}
			var runs []string
			for i := range 3 {
				out := filepath.Join(t.TempDir(), "out")
				_, stderr, code := shoalRun(t, bin, b.env, args(out)...)
				if code != 0 {
					t.Fatalf("run %d exited %d:\n%s", i+1, code, stderr)
				}
				sameRanks(t, ranksOf(t, out), want, 1e-12)
				m := runLine.FindStringSubmatch(stderr)
				if m == nil {
					t.Fatalf("run %d did not say where its checkpoints go:\n%s", i+1, stderr)
				}
				runs = append(runs, m[1])
			}
			out := filepath.Join(t.TempDir(), "resumed")
			stdout, stderr, code := shoalRun(t, bin, b.env, args(out, "--resume")...)
			if code != 0 {
				t.Fatalf("the resumed run exited %d:\n%s", code, stderr)
			}
			m := resumeLine.FindStringSubmatch(stdout)
			if m == nil || m[1] != "5" || m[2] != runs[2] {
				t.Fatalf("the resumed run said:\n%s\nwant it to resume from iteration 5 of run %s", stdout, runs[2])
			}
			sameRanks(t, ranksOf(t, out), want, 1e-12)

			// The store holds the four runs, all finished; the first three
			// kept their newest two checkpoints each.
			st, err := checkpoint.Open(context.Background(), b.uri, checkpoint.Options{Endpoint: b.endpoint})
			if err != nil {
				t.Fatal(err)
			}
			all, err := checkpoint.Runs(context.Background(), st)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 4 {
				t.Fatalf("%d runs in the store, want 4", len(all))
			}
			for _, r := range all {
				if !r.Finished() || len(r.Problems) > 0 {
					t.Errorf("run %s: finished %v, problems %v", r.ID, r.Finished(), r.Problems)
				}
				switch {
				case slices.Contains(runs, r.ID.String()):
					if len(r.Checkpoints) != 2 || r.Checkpoints[0].Name != "pagerank-ranks-000004" || r.Checkpoints[1].Name != "pagerank-ranks-000005" {
						t.Errorf("run %s has %d checkpoints; want iterations 4 and 5", r.ID, len(r.Checkpoints))
					}
				case len(r.Uses) != 1 || r.Uses[0].String() != runs[2]+"/pagerank-ranks-000005":
					t.Errorf("the resumed run %s records reading %v, want %s/pagerank-ranks-000005", r.ID, r.Uses, runs[2])
				}
			}
		})
	}
}

// Two applications checkpoint the same job over the same input into one
// store at the same time, each keeping only its newest checkpoint: both
// succeed with the reference answer, and each run's part of the store
// holds its own newest checkpoint: neither pruned the other.
func TestTwoApplicationsCheckpointAtOnce(t *testing.T) {
	in := generate(t, "graph", 2_000)
	const iterations = 8
	want := refRanks(t, in, iterations)
	nodeBin := testbin.Shoal(t)
	for name, open := range ckptBackends(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			var wg sync.WaitGroup
			apps := []string{"alpha", "beta"}
			outs := make([]string, len(apps))
			errs := make([]error, len(apps))
			ctxs := make([]*client.Context, len(apps))
			for i, app := range apps {
				c, err := client.NewContext(context.Background(), client.Options{
					App: app, Nodes: 1, WorkersPerNode: 1, Binary: os.Args[0], NodeBinary: nodeBin, Dir: t.TempDir(),
					WorkerStderr: os.Stderr, CheckpointDir: b.uri, S3Endpoint: b.endpoint, CheckpointKeep: 1,
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				ctxs[i], outs[i] = c, filepath.Join(t.TempDir(), app)
			}
			for i := range apps {
				wg.Go(func() {
					_, errs[i] = jobs.PageRankWith(context.Background(), ctxs[i], in, outs[i], jobs.PageRankOptions{
						Iterations: iterations, Partitions: 3, CheckpointEvery: 1,
					})
				})
			}
			wg.Wait()
			for i, app := range apps {
				if errs[i] != nil {
					t.Fatalf("%s: %v", app, errs[i])
				}
				sameRanks(t, ranksOf(t, outs[i]), want, 1e-12)
				if err := ctxs[i].Close(); err != nil {
					t.Fatal(err)
				}
			}
			st, err := checkpoint.Open(context.Background(), b.uri, checkpoint.Options{Endpoint: b.endpoint})
			if err != nil {
				t.Fatal(err)
			}
			runs, err := checkpoint.Runs(context.Background(), st)
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) != 2 {
				t.Fatalf("%d runs, want 2", len(runs))
			}
			slices.SortFunc(runs, func(a, b *checkpoint.Run) int { return strings.Compare(a.ID.App, b.ID.App) })
			for i, r := range runs {
				if r.ID.App != apps[i] || !r.Finished() || len(r.Checkpoints) != 1 || r.Checkpoints[0].Name != "pagerank-ranks-000007" || len(r.Incomplete) != 0 {
					t.Errorf("run %s: finished %v, checkpoints %d, incomplete %v; want %s's newest only, iteration 7", r.ID, r.Finished(), len(r.Checkpoints), r.Incomplete, apps[i])
				}
			}
		})
	}
}

// The issue's other commands: PageRank of a 3-cycle, --output over a
// file, a directory input with a subdirectory.
func TestIssue16Commands(t *testing.T) {
	bin := testbin.Shoal(t)
	box := t.TempDir()
	writeFiles(t, box, map[string]string{
		"cycle.txt": "1 2\n2 3\n3 1\n", "in.txt": "to be or\nnot to be\n", "f": "precious\n",
		"indir/x.txt": "x\n", "indir/sub/y.txt": "y\n",
	})
	out := filepath.Join(box, "o")
	if _, stderr, code := shoalRun(t, bin, nil, "run", "pagerank", "--input", filepath.Join(box, "cycle.txt"), "--output", out); code != 0 {
		t.Fatalf("pagerank of a 3-cycle exited %d:\n%s", code, stderr)
	}
	for page, rank := range ranksOf(t, out) {
		if rank < 1.0/3-1e-12 || rank > 1.0/3+1e-12 {
			t.Errorf("page %s of a 3-cycle: rank %v, want 1/3", page, rank)
		}
	}

	f := filepath.Join(box, "f")
	_, stderr, code := shoalRun(t, bin, nil, "run", "wordcount", "--input", filepath.Join(box, "in.txt"), "--output", f)
	if code == 0 || !strings.Contains(stderr, "is a file, not a directory") {
		t.Errorf("wordcount --output FILE exited %d:\n%s", code, stderr)
	}
	if last := lastLine(stderr); !strings.HasPrefix(last, "shoal run: wordcount: client: output ") {
		t.Errorf("the error is not one line of its own: %q", last)
	}
	if b, err := os.ReadFile(f); err != nil || string(b) != "precious\n" {
		t.Errorf("--output FILE left %q, %v", b, err)
	}

	out = filepath.Join(box, "counts")
	if _, stderr, code := shoalRun(t, bin, nil, "run", "wordcount", "--input", filepath.Join(box, "indir"), "--output", out); code != 0 {
		t.Fatalf("wordcount of a directory exited %d:\n%s", code, stderr)
	}
	if got := strings.Join(readParts(t, out), ","); got != "x\t1,y\t1" {
		t.Errorf("wordcount of indir/x.txt and indir/sub/y.txt: %q", got)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// An output in a directory the user cannot write is refused with one
// line that says so, and nothing is left behind. Root may write
// anywhere, so as root the command runs as nobody.
func TestOutputNotWritable(t *testing.T) {
	bin := testbin.Shoal(t)
	box := t.TempDir()
	writeFiles(t, box, map[string]string{"in.txt": "a b\n", "ro/keep": "keep\n"})
	cmd := exec.Command(bin, "run", "wordcount", "--input", filepath.Join(box, "in.txt"), "--output", filepath.Join(box, "ro", "out"))
	if os.Geteuid() == 0 {
		// nobody must reach the binary and the input: open the test's
		// directories (0700 from t.TempDir) to others, not ro.
		for _, d := range []string{filepath.Dir(bin), filepath.Dir(filepath.Dir(bin)), box, filepath.Dir(box)} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		cmd.Dir = "/"
	} else {
		if err := os.Chmod(filepath.Join(box, "ro"), 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(filepath.Join(box, "ro"), 0o755) })
	}
	before := describeTree(t, box)
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "permission denied") || !strings.Contains(string(b), "choose an output where you can write") {
		t.Fatalf("wordcount into a read-only directory: %v\n%s", err, b)
	}
	if diff := treeDiff(before, describeTree(t, box), ""); len(diff) > 0 {
		t.Errorf("the refused job touched the sandbox: %v", diff)
	}
}
