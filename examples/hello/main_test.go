package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReadmeShowsThisProgram keeps the README's first program and this
// one the same: the README shows main.go from `func main` on.
func TestReadmeShowsThisProgram(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(src), "func main() {")
	if i < 0 {
		t.Fatal("main.go has no func main")
	}
	want := string(src[i:])
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "```go\n")
	if !ok {
		t.Fatal("README.md has no ```go block")
	}
	block, _, _ = strings.Cut(block, "```")
	if block != want {
		t.Errorf("README.md's first Go block differs from examples/hello/main.go (from func main on):\n--- README.md\n%s--- main.go\n%s", block, want)
	}
}

// TestHello builds the program and runs it as the README says.
func TestHello(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example and runs it as real processes")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the example with")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "hello")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	in := filepath.Join(dir, "in.txt")
	if err := os.WriteFile(in, []byte("the cat\nthe dog  the\n\nend\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "counts")
	if b, err := exec.Command(bin, in, out).CombinedOutput(); err != nil {
		t.Fatalf("hello: %v\n%s", err, b)
	}
	parts, err := filepath.Glob(filepath.Join(out, "part-*"))
	if err != nil || len(parts) == 0 {
		t.Fatalf("no part files in %s: %v", out, err)
	}
	var lines []string
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.Fields(strings.ReplaceAll(string(b), "\t", "="))...)
	}
	slices.Sort(lines)
	if want := []string{"cat=1", "dog=1", "end=1", "the=3"}; !slices.Equal(lines, want) {
		t.Errorf("counts %q, want %q", lines, want)
	}
}
