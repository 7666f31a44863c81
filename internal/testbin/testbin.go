package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Shoal builds ./cmd/shoal into a temporary directory of t and returns its
// path. It skips the test under -short or when there is no go command.
func Shoal(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the shoal binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build shoal with")
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			t.Fatal("no go.mod above the test's directory")
		}
		root = parent
	}
	bin := filepath.Join(t.TempDir(), "shoal")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/shoal")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/shoal: %v\n%s", err, out)
	}
	return bin
}
