package testbin

import (
	"errors"
	"fmt"
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

// Static builds the main package pkg (a path from the module root, e.g.
// ./shuffleservice/launcher/testdata/fakeworker) statically linked
// (CGO_ENABLED=0) for goarch ("" for the host's) into a temporary
// directory of t and returns its path. It skips the test under -short or
// when there is no go command.
func Static(t testing.TB, pkg, goarch string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a binary")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build with")
	}
	bin, err := BuildStatic(t.TempDir(), pkg, goarch)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// BuildStatic is Static without a test: it builds into dir, for a
// TestMain that builds once for all its tests.
func BuildStatic(dir, pkg, goarch string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	root, ok := ModuleRoot()
	if !ok {
		return "", errors.New("no go.mod above the test's directory")
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	if goarch != "" {
		bin += "-" + goarch
	}
	cmd := exec.Command(goBin, "build", "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if goarch != "" {
		cmd.Env = append(cmd.Env, "GOARCH="+goarch)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}
