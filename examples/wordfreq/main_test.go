package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDistributed builds the example and runs it as a user would: one
// process, which starts its own node services and workers (copies of
// itself), counts a generated text and writes the counts. The expected
// counts come from the generator, not from the example's code.
func TestDistributed(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example and runs it as real processes")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the example with")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "wordfreq")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// Words in varied case and punctuation; "a", "of" and "on" are
	// shorter than --min-length 3.
	vocab := []string{"shoal", "river", "fish", "stone", "current", "a", "of", "on", "don't"}
	decorate := []func(string) string{
		func(w string) string { return w },
		strings.ToUpper,
		func(w string) string { return strings.ToUpper(w[:1]) + w[1:] },
		func(w string) string { return w + "," },
		func(w string) string { return "(" + w + ")." },
		func(w string) string { return `"` + w + `"!` },
	}
	want := map[string]int64{}
	rng := rand.New(rand.NewPCG(1, 2))
	var text strings.Builder
	for range 3000 {
		for range rng.IntN(12) {
			w := vocab[rng.IntN(len(vocab))]
			if len(w) < 3 {
				want["(short)"]++
			} else {
				want[w]++
			}
			text.WriteString(decorate[rng.IntN(len(decorate))](w) + strings.Repeat(" ", 1+rng.IntN(2)))
		}
		text.WriteString(" -- \n")
	}
	input := filepath.Join(dir, "input.txt")
	if err := os.WriteFile(input, []byte(text.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	output := filepath.Join(dir, "counts")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--input", input, "--output", output,
		"--nodes", "2", "--workers-per-node", "1", "--top", "3", "--min-length", "3")
	cmd.Stderr = t.Output()
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("wordfreq: %v\nstdout:\n%s", err, stdout)
	}

	got := map[string]int64{}
	parts, err := filepath.Glob(filepath.Join(output, "part-*"))
	if err != nil || len(parts) == 0 {
		t.Fatalf("no part files in %s (%v)", output, err)
	}
	for _, p := range parts {
		for word, n := range readCounts(t, p) {
			if _, dup := got[word]; dup {
				t.Errorf("%q appears in two part files", word)
			}
			got[word] = n
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}

	// The top 3, most frequent first, ties by word.
	words := slices.Collect(maps.Keys(want))
	slices.SortFunc(words, func(a, b string) int { return cmp.Or(cmp.Compare(want[b], want[a]), cmp.Compare(a, b)) })
	var wantTop strings.Builder
	for _, w := range words[:3] {
		fmt.Fprintf(&wantTop, "%s\t%d\n", w, want[w])
	}
	if string(stdout) != wantTop.String() {
		t.Fatalf("stdout:\n%s\nwant:\n%s", stdout, wantTop.String())
	}
}

// readCounts reads a part file of word<TAB>count lines.
func readCounts(t *testing.T, path string) map[string]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		word, count, ok := strings.Cut(sc.Text(), "\t")
		n, err := strconv.ParseInt(count, 10, 64)
		if !ok || err != nil {
			t.Fatalf("%s: line %q is not word<TAB>count", path, sc.Text())
		}
		out[word] = n
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return out
}
