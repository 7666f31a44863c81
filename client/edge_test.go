package client_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/client"
	"shoal/internal/poll"
)

// The edge inputs of every action (issue 16): an empty RDD, one record,
// one key for every record. Each action gives the answer, or, where
// there is no value to return (Reduce of nothing), a clear error.

func ignoreRecord(int64) {}

func intKV(x int64) client.KV[int64, int64] { return client.KV[int64, int64]{Key: x % 1, Value: x} }

func formatInt(x int64) string { return fmt.Sprint(x) }

func TestActionsOnEdgeInputs(t *testing.T) {
	c, _ := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 2})
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		data    []int64
		byKey   map[int64]int64 // CountByKey of the records keyed by x%1 (one key)
		reduced int64           // Reduce and Fold with add
	}{
		{name: "empty", data: nil, byKey: map[int64]int64{}},
		{name: "one record", data: []int64{7}, byKey: map[int64]int64{0: 1}, reduced: 7},
		{name: "one key", data: []int64{1, 2, 3, 4, 5}, byKey: map[int64]int64{0: 5}, reduced: 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := client.Parallelize(c, tc.data, 3)
			if n, err := client.Count(ctx, r); err != nil || n != int64(len(tc.data)) {
				t.Errorf("Count = %d, %v; want %d", n, err, len(tc.data))
			}
			if got, err := client.Collect(ctx, r); err != nil || !slices.Equal(got, tc.data) {
				t.Errorf("Collect = %v, %v; want %v", got, err, tc.data)
			}
			if got, err := client.Take(ctx, r, 2); err != nil || !slices.Equal(got, tc.data[:min(2, len(tc.data))]) {
				t.Errorf("Take 2 = %v, %v", got, err)
			}
			if got, err := client.Take(ctx, r, 0); err != nil || len(got) != 0 {
				t.Errorf("Take 0 = %v, %v", got, err)
			}
			got, err := client.Reduce(ctx, r, add)
			if len(tc.data) == 0 {
				if !errors.Is(err, client.ErrEmptyRDD) || !strings.Contains(err.Error(), "Fold") {
					t.Errorf("Reduce of an empty RDD = %d, %v; want ErrEmptyRDD saying to use Fold", got, err)
				}
			} else if err != nil || got != tc.reduced {
				t.Errorf("Reduce = %d, %v; want %d", got, err, tc.reduced)
			}
			if got, err := client.Fold(ctx, r, 0, add); err != nil || got != tc.reduced {
				t.Errorf("Fold = %d, %v; want %d", got, err, tc.reduced)
			}
			if err := client.Foreach(ctx, r, ignoreRecord); err != nil {
				t.Errorf("Foreach: %v", err)
			}
			if got, err := client.CountByKey(ctx, client.Map(r, intKV)); err != nil || !maps.Equal(got, tc.byKey) {
				t.Errorf("CountByKey = %v, %v; want %v", got, err, tc.byKey)
			}
			var want []string
			for _, x := range tc.data {
				want = append(want, fmt.Sprint(x))
			}
			text := filepath.Join(t.TempDir(), "text")
			if err := client.SaveAsTextFile(ctx, r, text); err != nil {
				t.Fatal(err)
			}
			if got := partLines(t, text); !slices.Equal(got, want) {
				t.Errorf("SaveAsTextFile wrote %q, want %q", got, want)
			}
			raw := filepath.Join(t.TempDir(), "raw")
			if err := client.SaveAsRawFile(ctx, client.Map(r, formatInt), raw); err != nil {
				t.Fatal(err)
			}
			if got, err := concatParts(raw); err != nil || got != strings.Join(want, "") {
				t.Errorf("SaveAsRawFile wrote %q, %v; want %q", got, err, strings.Join(want, ""))
			}
			if parts, _ := filepath.Glob(filepath.Join(text, "part-*")); len(parts) != 3 {
				t.Errorf("%d part files for 3 partitions", len(parts))
			}
		})
	}
}

// partLines returns the lines of dir's part files, in part order.
func partLines(t *testing.T, dir string) []string {
	t.Helper()
	s, err := concatParts(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func concatParts(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "part-*"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("no part files in %s (%v)", dir, err)
	}
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		b.Write(data)
	}
	return b.String(), nil
}

// writeTree writes files (path relative to root → content; a content
// starting with "->" makes a symbolic link to the rest).
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case strings.HasSuffix(name, "/"):
			err = os.MkdirAll(p, 0o755)
		case strings.HasPrefix(content, "->"):
			err = os.Symlink(strings.TrimPrefix(content, "->"), p)
		default:
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// An input directory is read recursively, by path in lexical order;
// hidden and underscore names are skipped (as Hadoop and Spark do), empty
// files and directories give no records; nothing else is skipped in
// silence: a link to a directory or a FIFO is an error naming it.
func TestInputDirectories(t *testing.T) {
	c, _ := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 1})
	ctx := context.Background()
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"outside.txt":                "l1\n",
		"in/a.txt":                   "a1\na2\n",
		"in/empty.txt":               "",
		"in/link.txt":                "->../outside.txt",
		"in/sub/b.txt":               "b1\r\n",
		"in/sub/deeper/c.txt":        "c1", // no final newline
		"in/sub/empty/":              "",
		"in/a/z.txt":                 "z1\n", // sorts after a.txt: '/' > '.'
		"in/_SUCCESS":                "skipped\n",
		"in/.a.txt.crc":              "skipped\n",
		"in/_temporary/0/part-00000": "skipped\n",
		"in/.hidden/e.txt":           "skipped\n",
		"in/sub/.f.txt":              "skipped\n",
		"csv/h1.csv":                 "name,n\nx,1\n",
		"csv/d/h2.csv":               "name,n\ny,2\n",
		"csv/header-only.csv":        "name,n\n",
	})
	in := filepath.Join(root, "in")
	for _, parts := range []int{1, 3, 16} {
		got, err := client.Collect(ctx, client.TextFile(c, in, parts))
		if want := []string{"a1", "a2", "z1", "l1", "b1", "c1"}; err != nil || !slices.Equal(got, want) {
			t.Errorf("TextFile(%s, %d) = %q, %v; want %q", in, parts, got, err, want)
		}
	}
	recs, err := client.Collect(ctx, client.CSVFile(c, filepath.Join(root, "csv"), 2))
	if err != nil || len(recs) != 2 || recs[0].Fields[0] != "y" || recs[1].Fields[0] != "x" {
		t.Errorf("CSVFile of a directory (each file's header skipped) = %+v, %v; want y then x", recs, err)
	}
	if n, err := client.Count(ctx, client.CSVFile(c, filepath.Join(root, "csv", "header-only.csv"), 2)); err != nil || n != 0 {
		t.Errorf("CSVFile of a header-only file: %d records, %v", n, err)
	}
	if n, err := client.Count(ctx, client.TextFile(c, filepath.Join(root, "in", "sub", "empty"), 4)); err != nil || n != 0 {
		t.Errorf("TextFile of an empty directory: %d records, %v", n, err)
	}

	id1, err1 := client.InputIdentity(in)
	id2, err2 := client.InputIdentity(in)
	if err := errors.Join(err1, err2); err != nil || id1 != id2 || !strings.Contains(id1, "6 files") {
		t.Errorf("InputIdentity = %q, %q, %v", id1, id2, err)
	}
	writeTree(t, root, map[string]string{"in/sub/deeper/new.txt": "n\n"})
	if id3, err := client.InputIdentity(in); err != nil || id3 == id1 {
		t.Errorf("InputIdentity after a file was added in a subdirectory: %q, %v (was %q)", id3, err, id1)
	}
	if id4, err := client.InputIdentity(filepath.Join(root, "_SUCCESS-nowhere")); err == nil {
		t.Errorf("InputIdentity of a missing path = %q", id4)
	}

	// Never skipped in silence.
	writeTree(t, root, map[string]string{"bad1/ok.txt": "x\n", "bad1/dirlink": "->../in/sub", "bad2/ok.txt": "x\n"})
	if err := syscall.Mkfifo(filepath.Join(root, "bad2", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"bad1", "dirlink is a symbolic link to a directory"},
		{"bad2", "fifo is not a regular file"},
		{"missing", "no such file or directory"},
	} {
		_, err := client.Count(ctx, client.TextFile(c, filepath.Join(root, tc.path), 2))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("TextFile(%s): %v; want an error containing %q", tc.path, err, tc.want)
		}
	}
}

// snapshot describes every file and directory under root: its type,
// mode, size, modification time and, for files, a digest of its content.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += " " + hex.EncodeToString(sum[:8])
		}
		if fi.IsDir() {
			desc = fmt.Sprintf("%v", fi.Mode()) // its mtime changes with its entries
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// untouched reports what changed under root between two snapshots,
// outside the paths in allowed (relative to root; they and everything
// under them may differ).
func untouched(before, after map[string]string, allowed ...string) []string {
	inside := func(p string) bool {
		for _, a := range allowed {
			if p == a || strings.HasPrefix(p, a+string(filepath.Separator)) {
				return true
			}
		}
		return false
	}
	var diff []string
	for p, d := range before {
		if inside(p) {
			continue
		}
		if a, ok := after[p]; !ok {
			diff = append(diff, "removed "+p)
		} else if a != d {
			diff = append(diff, "changed "+p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok && !inside(p) {
			diff = append(diff, "added "+p)
		}
	}
	slices.Sort(diff)
	return diff
}

// SaveAsTextFile refuses an output that exists as a file, a symbolic link
// or a non-empty directory, or that is (inside) the input; it replaces an
// empty directory; a failed job leaves nothing; and nothing outside the
// output is ever touched, a stranger's look-alike temporary directory
// included.
func TestOutputRules(t *testing.T) {
	c, _ := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 1})
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		output string // relative to the sandbox
		fail   bool   // the job fails
		want   string // the error; "" for success
	}{
		{name: "new directory", output: "out"},
		{name: "new directory under missing parents", output: "new/parents/out"},
		{name: "empty directory", output: "empty"},
		{name: "existing file", output: "precious.txt", want: "is a file, not a directory"},
		{name: "non-empty directory", output: "full", want: "not empty"},
		{name: "symbolic link to an empty directory", output: "link", want: "is a symbolic link"},
		{name: "the input itself", output: "in", want: "inside the input"},
		{name: "inside the input", output: "in/out", want: "inside the input"},
		{name: "inside the input through a link", output: "inlink/out", want: "inside the input"},
		{name: "a parent is a file", output: "precious.txt/out", want: "not a directory"},
		{name: "failed job", output: "out", fail: true, want: "bad record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			box := t.TempDir()
			writeTree(t, box, map[string]string{
				"in/a.txt": "1\n2\n3\n", "in/sub/b.txt": "4\n",
				"precious.txt": "precious\n", "empty/": "", "full/keep.txt": "keep\n",
				"link": "->empty", "inlink": "->in",
				".out.tmp-stranger/theirs.txt": "not the job's\n",
			})
			before := snapshot(t, box)
			lines := client.TextFile(c, filepath.Join(box, "in"), 3)
			if tc.fail {
				lines = client.Map(client.Map(client.Map(lines, parseInt), alwaysFails), formatInt)
			}
			out := filepath.Join(box, tc.output)
			err := client.SaveAsTextFile(ctx, lines, out)
			after := snapshot(t, box)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("SaveAsTextFile(%s): %v; want an error containing %q", tc.output, err, tc.want)
				}
				if strings.Count(err.Error(), "\n") > 0 && !tc.fail {
					t.Errorf("the error is not one line: %q", err)
				}
				if diff := untouched(before, after); len(diff) > 0 {
					t.Errorf("a refused or failed save touched the sandbox: %v", diff)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := partLines(t, out)
			slices.Sort(got)
			if want := []string{"1", "2", "3", "4"}; !slices.Equal(got, want) {
				t.Errorf("output %q, want %q", got, want)
			}
			allowed := tc.output
			if strings.HasPrefix(tc.output, "new/") {
				allowed = "new"
			}
			if diff := untouched(before, after, allowed); len(diff) > 0 {
				t.Errorf("the save touched the sandbox outside its output: %v", diff)
			}
		})
	}
	t.Run("not writable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes anywhere; jobs.TestOutputNotWritable runs shoal as nobody")
		}
		box := t.TempDir()
		writeTree(t, box, map[string]string{"in/a.txt": "1\n", "ro/": ""})
		if err := os.Chmod(filepath.Join(box, "ro"), 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(filepath.Join(box, "ro"), 0o755) })
		err := client.SaveAsTextFile(ctx, client.TextFile(c, filepath.Join(box, "in"), 1), filepath.Join(box, "ro", "out"))
		if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "where you can write") {
			t.Fatalf("save into a read-only directory: %v", err)
		}
	})
}

func parseInt(s string) int64 {
	var x int64
	fmt.Sscan(s, &x)
	return x
}

// An output that appears while the job runs is left as it is and the
// job's output discarded: the final rename never replaces a file or a
// non-empty directory.
func TestOutputAppearsDuringJob(t *testing.T) {
	c, _ := startCluster(t, client.Options{Nodes: 1, WorkersPerNode: 1})
	box := t.TempDir()
	gate, out := filepath.Join(box, "gate"), filepath.Join(box, "out")
	sums := client.ReduceByKey(client.Map(client.Range(c, 0, 100, 2), mod10KV), addInt64, 2)
	lines := client.Map(client.MapWith[client.KV[int64, int64], client.KV[int64, int64]](sums, gatedPass{Gate: gate}), formatKV)
	done := make(chan error, 1)
	go func() { done <- client.SaveAsTextFile(context.Background(), lines, out) }()
	poll.WaitFor(t, 30*time.Second, "the job's temporary directory", func() bool {
		m, _ := filepath.Glob(filepath.Join(box, ".out.tmp-*"))
		return len(m) > 0
	})
	if err := os.WriteFile(out, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	open(t, gate)
	err := <-done
	if err == nil || !strings.Contains(err.Error(), "appeared while the job ran") {
		t.Fatalf("save whose output appeared meanwhile: %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "precious\n" {
		t.Errorf("the file that appeared holds %q", b)
	}
	if m, _ := filepath.Glob(filepath.Join(box, ".out.tmp-*")); len(m) != 0 {
		t.Errorf("temporary directories left: %v", m)
	}
}
