package jobs_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"shoal/client"
	"shoal/jobs"
)

// The edge-input suite (issue 16): every built-in job on inputs a new user
// meets. Each case gives the single-process reference's answer or a clear
// error, and touches nothing outside its output: a sandbox is described
// before and after, and only the output may differ (nothing at all when
// the job is refused or fails).

// bigLine is longer than a shuffle record may be (16 MiB).
const bigLine = 17 << 20

// edgeCase is an input tree and an output path in a sandbox.
type edgeCase struct {
	name string
	// input: "in" → content is one file; keys ending in "/" are
	// directories; other keys are files of the directory "in".
	input map[string]string
	// other files of the sandbox, e.g. an output that exists already.
	sandbox map[string]string
	output  string // relative to the sandbox; default "out"
	// wantErr, if set, is a substring of the job's error; otherwise the
	// output must be the reference's.
	wantErr string
}

// commonCases are the cases of every job over its own valid content: a
// directory with subdirectories, empty files, hidden and underscore
// files; an empty file (emptyErr: the job's error on it, "" if none);
// outputs that must be refused; a missing input.
func commonCases(one, two, emptyErr string) []edgeCase {
	dir := map[string]string{
		"in/a":             one,
		"in/empty":         "",
		"in/sub/b":         two,
		"in/sub/deep/c":    one,
		"in/sub/empty/":    "",
		"in/_SUCCESS":      "not input\n",
		"in/.a.crc":        "not input\n",
		"in/_temporary/x":  "not input\n",
		"in/.hidden/y":     "not input\n",
		"in/sub/.z":        "not input\n",
		"in/sub/_logs/log": "not input\n",
	}
	return []edgeCase{
		{name: "directory with subdirectories and empty files", input: dir},
		{name: "empty file", input: map[string]string{"in": ""}, wantErr: emptyErr},
		{name: "output is an existing file", input: map[string]string{"in": one}, sandbox: map[string]string{"precious": "precious\n"}, output: "precious", wantErr: "is a file, not a directory"},
		{name: "output is a non-empty directory", input: map[string]string{"in": one}, sandbox: map[string]string{"full/keep": "keep\n"}, output: "full", wantErr: "not empty"},
		{name: "output inside the input", input: dir, output: "in/sub/out", wantErr: "inside the input"},
		{name: "missing input", input: map[string]string{"elsewhere": one}, wantErr: "no such file or directory"},
	}
}

// edgeJob is a built-in job and how to check its output.
type edgeJob struct {
	name  string
	cases []edgeCase
	run   func(ctx context.Context, c *client.Context, in, out string) error
	// check compares the output with the reference computed from the
	// input's bytes (inputBytes).
	check func(t *testing.T, input []byte, out string)
	// records: the input is gensort records, not text.
	records bool
}

func TestEdgeInputs(t *testing.T) {
	c := newContext(t, 1, 2, "")
	ctx := context.Background()
	for _, job := range edgeJobs() {
		t.Run(job.name, func(t *testing.T) {
			for _, tc := range job.cases {
				t.Run(tc.name, func(t *testing.T) { runEdgeCase(t, ctx, c, job, tc) })
			}
		})
	}
}

// edgeJobs are the built-in jobs with their edge cases and checks.
func edgeJobs() []edgeJob {
	// The ecommerce job's malformed-row count, from its run to its check.
	var badRows int64
	purchase := func(session, price string) string {
		return "2019-10-01 00:00:00 UTC,purchase,1002018,2053013552226107603,electronics.smartphone,lg," + price + ",518418657," + session + "\n"
	}
	header := jobs.EcommerceHeader + "\n"
	var bigWords strings.Builder // one line of many words, longer than a record may be
	for i := 0; bigWords.Len() < bigLine; i++ {
		fmt.Fprintf(&bigWords, "w%d ", i%1000)
	}
	bigWords.WriteString("\n")
	hugeWord := strings.Repeat("x", bigLine)

	record := func(key, rest string) string { // a gensort record
		return (key + strings.Repeat(" ", 10))[:10] + (rest + strings.Repeat(".", 90))[:88] + "\r\n"
	}
	return []edgeJob{
		{
			name: "wordcount",
			cases: append(commonCases("a b a\n", "b c\n", ""),
				edgeCase{name: "one record", input: map[string]string{"in": "hello\n"}},
				edgeCase{name: "one key for every record", input: map[string]string{"in": "a a a\na\n  a a \n"}},
				edgeCase{name: "CRLF line endings", input: map[string]string{"in": "a b\r\nb c\r\n\r\nc\r\n"}},
				edgeCase{name: "no final newline", input: map[string]string{"in": "a b\nc"}},
				edgeCase{name: "non-UTF-8 bytes", input: map[string]string{"in": "caf\xe9 \xff\xfe a\n\xc3\x28 a \x00\n"}},
				edgeCase{name: "a line longer than a record, of many words", input: map[string]string{"in": "first\n" + bigWords.String() + "last\n"}},
				edgeCase{name: "a word longer than a record", input: map[string]string{"in": "a\n" + hugeWord + "\n"}, wantErr: "cannot be shuffled"},
			),
			run: func(ctx context.Context, c *client.Context, in, out string) error {
				return jobs.WordCount(ctx, c, in, out, 3)
			},
			check: func(t *testing.T, input []byte, out string) {
				want, err := jobs.RefWordCount(bytes.NewReader(input))
				if err != nil {
					t.Fatal(err)
				}
				if got := readParts(t, out); !slices.Equal(got, want) {
					t.Errorf("wordcount wrote %d lines, reference %d (or different): %.200q vs %.200q", len(got), len(want), got, want)
				}
			},
		},
		{
			name: "pagerank",
			cases: append(commonCases("1 2\n2 3\n", "3 1\n3 4\n", "has no edges"),
				edgeCase{name: "one edge", input: map[string]string{"in": "a b\n"}},
				edgeCase{name: "a 3-cycle: no dangling page", input: map[string]string{"in": "1 2\n2 3\n3 1\n"}},
				edgeCase{name: "strongly connected: no dangling page", input: map[string]string{"in": "1 2\n2 1\n2 3\n3 1\n3 4\n4 2\n4 1\n"}},
				edgeCase{name: "one key: every edge from one page", input: map[string]string{"in": "hub a\nhub b\nhub c\n"}},
				edgeCase{name: "self-loops", input: map[string]string{"in": "a a\na b\nb b\nc c\n"}},
				edgeCase{name: "duplicate edges", input: map[string]string{"in": "a b\na b\nb a\nb c\nb c\n"}},
				edgeCase{name: "CRLF line endings", input: map[string]string{"in": "# comment\r\na b\r\nb c\r\n\r\nc a\r\n"}},
				edgeCase{name: "non-UTF-8 page names", input: map[string]string{"in": "\xff b\nb \xfe\n\xfe \xff\nb \xc3\x28\n"}},
				edgeCase{name: "comments only", input: map[string]string{"in": "# nothing\n\n#\n"}, wantErr: "has no edges"},
				edgeCase{name: "a malformed line", input: map[string]string{"in": "a b\na b c\n"}, wantErr: "has 3 fields, want 2"},
				edgeCase{name: "a malformed line longer than a record", input: map[string]string{"in": "a b\n" + bigWords.String()}, wantErr: "bytes) has"},
				edgeCase{name: "a page name longer than a record", input: map[string]string{"in": "a b\nb " + hugeWord + "\n"}, wantErr: "cannot be shuffled"},
			),
			run: func(ctx context.Context, c *client.Context, in, out string) error {
				_, err := jobs.PageRank(ctx, c, in, out, 5, 3, 0)
				return err
			},
			check: func(t *testing.T, input []byte, out string) {
				want, err := jobs.RefPageRank(bytes.NewReader(input), 5)
				if err != nil {
					t.Fatal(err)
				}
				got := ranksOf(t, out)
				sameRanks(t, got, want, 1e-12)
				sum := 0.0
				for _, r := range got {
					sum += r
				}
				if math.Abs(sum-1) > 1e-9 {
					t.Errorf("ranks sum to %v", sum)
				}
			},
		},
		{
			name: "ecommerce",
			cases: append(commonCases(header+purchase("s1", "1.50"), header+purchase("s2", "2.00")+purchase("s1", "0.25"), ""),
				edgeCase{name: "header only", input: map[string]string{"in": header}},
				edgeCase{name: "one record", input: map[string]string{"in": header + purchase("s1", "9.99")}},
				edgeCase{name: "one key: one session", input: map[string]string{"in": header + purchase("s", "1.00") + purchase("s", "2.00") + purchase("s", "3.00")}},
				edgeCase{name: "CRLF line endings", input: map[string]string{"in": strings.ReplaceAll(header+purchase("s1", "1.00")+purchase("s2", "2.00"), "\n", "\r\n")}},
				edgeCase{name: "non-UTF-8 bytes", input: map[string]string{"in": header + strings.Replace(purchase("s\xff", "1.00"), ",lg,", ",\xfe\xff,", 1) + "\xff\xfe,not,a,row\n"}},
				edgeCase{name: "a row longer than a record", input: map[string]string{"in": header + purchase("s1", "1.00") + strings.Replace(purchase("s2", "2.00"), ",lg,", ","+hugeWord+",", 1)}},
			),
			run: func(ctx context.Context, c *client.Context, in, out string) error {
				st, err := jobs.Ecommerce(ctx, c, in, out, 3, false)
				badRows = st.BadRows
				return err
			},
			check: func(t *testing.T, input []byte, out string) {
				want, bad, err := jobs.RefEcommerce(bytes.NewReader(input))
				if err != nil {
					t.Fatal(err)
				}
				if got := readParts(t, out); !slices.Equal(got, want) {
					t.Errorf("ecommerce wrote %q, reference %q", got, want)
				}
				if got := badRows; got != bad {
					t.Errorf("%d malformed rows, reference %d", got, bad)
				}
			},
		},
		{
			name:    "sort",
			records: true,
			cases: append(commonCases(record("key1", "a")+record("key0", "b"), record("key3", "c"), ""),
				edgeCase{name: "one record", input: map[string]string{"in": record("only", "x")}},
				edgeCase{name: "one key for every record", input: map[string]string{"in": record("same", "3") + record("same", "1") + record("same", "2")}},
				edgeCase{name: "CRLF and non-UTF-8 bytes in records", input: map[string]string{"in": record("\xff\xfe\r\n", "\x00") + record("\r\n", "\xc3\x28") + record("\x00", "z")}},
				edgeCase{name: "a partial record", input: map[string]string{"in": record("a", "b") + "short\n"}, wantErr: "not a multiple of 100 bytes"},
			),
			run: func(ctx context.Context, c *client.Context, in, out string) error {
				_, err := jobs.Sort(ctx, c, in, out, 3)
				return err
			},
			check: func(t *testing.T, input []byte, out string) {
				parts, _ := filepath.Glob(filepath.Join(out, "part-*"))
				n, err := jobs.CheckSorted(parts)
				if err != nil {
					t.Fatal(err)
				}
				wantN, wantSum, err := jobs.RecordsDigest(bytes.NewReader(input))
				if err != nil {
					t.Fatal(err)
				}
				var all bytes.Buffer
				for _, p := range parts {
					b, _ := os.ReadFile(p)
					all.Write(b)
				}
				gotN, gotSum, err := jobs.RecordsDigest(&all)
				if err != nil || n != wantN || gotN != wantN || gotSum != wantSum {
					t.Errorf("sort wrote %d records (digest %x, %v), input %d (digest %x)", gotN, gotSum, err, wantN, wantSum)
				}
			},
		},
	}
}

func runEdgeCase(t *testing.T, ctx context.Context, c *client.Context, job edgeJob, tc edgeCase) {
	box := t.TempDir()
	writeFiles(t, box, tc.input)
	writeFiles(t, box, tc.sandbox)
	output := tc.output
	if output == "" {
		output = "out"
	}
	before := describeTree(t, box)
	err := job.run(ctx, c, filepath.Join(box, "in"), filepath.Join(box, output))
	after := describeTree(t, box)
	if tc.wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Fatalf("%s: %v; want an error containing %q", job.name, err, tc.wantErr)
		}
		t.Logf("error: %.300s", err)
		if len(err.Error()) > 16<<10 {
			t.Errorf("the error is %d bytes long", len(err.Error()))
		}
		if diff := treeDiff(before, after, ""); len(diff) > 0 {
			t.Errorf("a refused or failed job touched the sandbox: %v", diff)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if diff := treeDiff(before, after, output); len(diff) > 0 {
		t.Errorf("the job touched the sandbox outside its output: %v", diff)
	}
	job.check(t, inputBytes(t, filepath.Join(box, "in"), !job.records), filepath.Join(box, output))
}

// writeFiles writes files under root: a key ending in "/" is a
// directory.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// inputBytes is what the reference reads of the input at path: its
// files as the jobs read them (recursively, by path, without hidden and
// underscore names), with text files ending in a newline.
func inputBytes(t *testing.T, path string, text bool) []byte {
	t.Helper()
	var files []string
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && (strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_")) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
		if text && len(b) > 0 && b[len(b)-1] != '\n' {
			all = append(all, '\n')
		}
	}
	return all
}

// describeTree describes every file and directory under root: type,
// mode, size, modification time and a digest of each file's content.
func describeTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		desc := fi.Mode().String()
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %d %d %s", fi.Size(), fi.ModTime().UnixNano(), hex.EncodeToString(h.Sum(nil)[:8]))
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

// treeDiff lists what differs between two descriptions outside output
// (relative; "" for none), which may differ.
func treeDiff(before, after map[string]string, output string) []string {
	mine := func(p string) bool {
		return output != "" && (p == output || strings.HasPrefix(p, output+string(filepath.Separator)))
	}
	var diff []string
	for p, d := range before {
		if mine(p) {
			continue
		}
		switch a, ok := after[p]; {
		case !ok:
			diff = append(diff, "removed "+p)
		case a != d:
			diff = append(diff, "changed "+p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok && !mine(p) {
			diff = append(diff, "added "+p)
		}
	}
	slices.Sort(diff)
	return diff
}
