package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// ModuleRoot is the directory of the go.mod above the working directory
// (go test runs a package's tests in its directory), where make installs
// the test servers under bin/.
func ModuleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

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
	root, ok := ModuleRoot()
	if !ok {
		t.Fatal("no go.mod above the test's directory")
	}
	bin := filepath.Join(t.TempDir(), "shoal")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/shoal")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/shoal: %v\n%s", err, out)
	}
	return bin
}
