package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"shoal/internal/testbin"
)

// TestPeersQuick runs `shoal bench peers --quick` once with the real
// binaries (the ecommerce row only if bench/duckcmp was built into
// bin/duckcmp), checks that every row's outputs are equal and that the
// report is written, then runs the rows again with the peer's output
// changed after each run and checks that every change is reported.
func TestPeersQuick(t *testing.T) {
	bin := testbin.Shoal(t)
	root, _ := testbin.ModuleRoot()
	duck := filepath.Join(root, "bin", "duckcmp")
	if _, err := os.Stat(duck); err != nil {
		t.Logf("%s is not built (make bench-peers builds it): the ecommerce row is skipped", duck)
		duck = ""
	}
	dir := t.TempDir()
	ctx := context.Background()
	cfg := PeersConfig{Shoal: bin, DuckCmp: duck, Quick: true, Runs: 1, Dir: filepath.Join(dir, "work"), Command: "test"}
	res, err := RunPeers(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != len(PeerRowNames()) {
		t.Fatalf("%d rows, want %d", len(res.Rows), len(PeerRowNames()))
	}
	for _, r := range res.Rows {
		if r.Skipped != "" {
			if r.Name == "ecommerce" && duck == "" {
				continue
			}
			t.Errorf("%s skipped: %s", r.Name, r.Skipped)
			continue
		}
		if !r.Equal || r.Error != "" {
			t.Errorf("%s: equal %v, mismatch %q, error %q", r.Name, r.Equal, r.Mismatch, r.Error)
		}
		for _, s := range []PeerSideRuns{r.Shoal, r.Peer} {
			if len(s.Value) != 1 || s.Median <= 0 || s.MaxPeakRSS() <= 0 || s.Processes < 1 {
				t.Errorf("%s, %s: values %v, median %v, peak RSS %d, processes %d", r.Name, s.Name, s.Value, s.Median, s.MaxPeakRSS(), s.Processes)
			}
		}
		// shoal's side is a driver, a node service and its workers.
		if r.Shoal.Processes < 3 {
			t.Errorf("%s: shoal's side had %d processes, want the driver, a node service and workers", r.Name, r.Shoal.Processes)
		}
	}
	results := filepath.Join(dir, "results")
	if err := WritePeersReport(results, res); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(results, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range PeerRowNames() {
		if !bytes.Contains(md, []byte("| "+name+" |")) {
			t.Errorf("results.md has no row %s:\n%s", name, md)
		}
	}
	var back PeersResults
	if b, err := os.ReadFile(filepath.Join(results, "results.json")); err != nil {
		t.Fatal(err)
	} else if err := json.Unmarshal(b, &back); err != nil || len(back.Rows) != len(res.Rows) {
		t.Fatalf("results.json: %v, %d rows", err, len(back.Rows))
	}
	for _, name := range []string{"machine.md", "ratios.svg"} {
		if fi, err := os.Stat(filepath.Join(results, name)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}

	// The same rows with the peer's output changed: each is reported.
	cfg.Rows = []string{"pagerank", "sort", "wordcount"}
	if duck != "" {
		cfg.Rows = append(cfg.Rows, "ecommerce")
	}
	cfg.Perturb = perturb
	res, err = RunPeers(ctx, cfg)
	if err == nil {
		t.Fatal("RunPeers with changed outputs returned no error")
	}
	for _, r := range res.Rows {
		if r.Equal || r.Error != "" || r.Mismatch == "" {
			t.Errorf("%s with a changed output: equal %v, mismatch %q, error %q", r.Name, r.Equal, r.Mismatch, r.Error)
		}
		t.Logf("%s: %s", r.Name, r.Mismatch)
	}
}

// perturb changes a peer's output the least its row's check must see:
// one rank by a relative 2e-9 (pagerank), one byte (sort), one count
// (wordcount, ecommerce).
func perturb(row, out string) error {
	files, err := outputFiles(out)
	if err != nil {
		return err
	}
	name := files[0]
	for _, f := range files { // a non-empty part
		if fi, err := os.Stat(f); err == nil && fi.Size() > 0 {
			name = f
			break
		}
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	line, rest, _ := bytes.Cut(b, []byte("\n"))
	fields := strings.Split(string(line), "\t")
	last := len(fields) - 1
	switch row {
	case "pagerank":
		v, err := strconv.ParseFloat(fields[last], 64)
		if err != nil {
			return err
		}
		fields[last] = strconv.FormatFloat(v*(1+2e-9), 'g', -1, 64)
	case "sort":
		i := len(b) / 2
		for b[i] == '\r' || b[i] == '\n' {
			i++
		}
		b[i] ^= 1
		return os.WriteFile(name, b, 0o644)
	case "wordcount", "ecommerce":
		pos := 3 // ecommerce: the count
		if row == "wordcount" {
			pos = last
		}
		n, err := strconv.ParseInt(fields[pos], 10, 64)
		if err != nil {
			return err
		}
		fields[pos] = strconv.FormatInt(n+1, 10)
	default:
		return fmt.Errorf("no perturbation for %s", row)
	}
	return os.WriteFile(name, append([]byte(strings.Join(fields, "\t")+"\n"), rest...), 0o644)
}

// TestCompareRanksTolerance: ranks equal to a relative 1e-9 are equal,
// ranks further apart or a page missing are not.
func TestCompareRanksTolerance(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a := write("a", "1\t0.25\n2\t0.75\n")
	for _, c := range []struct {
		text string
		ok   bool
	}{
		{"2\t0.75\n1\t0.25\n", true},
		{"1\t0.2500000001\n2\t0.75\n", true}, // 4e-10
		{"1\t0.2500000006\n2\t0.75\n", false},
		{"1\t0.25\n", false},
		{"1\t0.25\n3\t0.75\n", false},
		{"1\t0.25\n2\tNaN\n", false},
	} {
		err := compareRanks(a, write("b", c.text))
		if (err == nil) != c.ok {
			t.Errorf("%q: %v, want equal %v", c.text, err, c.ok)
		}
	}
}

// TestSplitLines: the parts end at lines' ends and hold the file's bytes.
func TestSplitLines(t *testing.T) {
	dir := t.TempDir()
	var text bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&text, "line %d %s\n", i, strings.Repeat("x", i%37))
	}
	fmt.Fprintf(&text, "no newline at the end")
	src := filepath.Join(dir, "text")
	if err := os.WriteFile(src, text.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := splitLines(src, filepath.Join(dir, "parts"), 7); err != nil {
		t.Fatal(err)
	}
	parts, err := filepath.Glob(filepath.Join(dir, "parts", "part-*"))
	if err != nil || len(parts) != 7 {
		t.Fatalf("%d parts (%v), want 7", len(parts), err)
	}
	var got []byte
	for i, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if i < len(parts)-1 && !bytes.HasSuffix(b, []byte("\n")) {
			t.Errorf("%s does not end at a line's end", p)
		}
		got = append(got, b...)
	}
	if !bytes.Equal(got, text.Bytes()) {
		t.Error("the parts' bytes differ from the file's")
	}
}

// TestMergePeersResults: a later run's rows replace the old ones of the
// same name, the others stay, in the rows' order, and the merge is
// recorded.
func TestMergePeersResults(t *testing.T) {
	old := &PeersResults{Command: "first", Rows: []*PeerRow{{Name: "pagerank", Ratio: 1}, {Name: "ecommerce", Ratio: 2}, {Name: "tasks-wide", Ratio: 3}}}
	later := &PeersResults{Command: "again", Rows: []*PeerRow{{Name: "ecommerce", Ratio: 4, Command: "again"}, {Name: "tasks-wide", Error: "interrupted"}}}
	got := MergePeersResults(old, later)
	var names []string
	for _, r := range got.Rows {
		names = append(names, fmt.Sprintf("%s=%v(%s)", r.Name, r.Ratio, r.Command))
	}
	if want := "pagerank=1(first) ecommerce=4(again) tasks-wide=3(first)"; strings.Join(names, " ") != want {
		t.Errorf("rows %q, want %q", strings.Join(names, " "), want)
	}
	if len(got.Merges) != 1 || got.Merges[0].Command != "again" || strings.Join(got.Merges[0].Rows, ",") != "ecommerce" || got.Command != "first" {
		t.Errorf("merges %+v, command %q", got.Merges, got.Command)
	}
}
