package dockertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"shoal/internal/tail"
)

// Label marks every resource this package creates: Sweep removes the
// leftovers that carry it.
const (
	LabelKey   = "shoal-test"
	LabelValue = "1"
	Label      = LabelKey + "=" + LabelValue
	// TestLabel holds the name of the test that created a resource.
	TestLabel = "shoal-test.test"
)

// RequireEnv names the environment variable that makes Require fail a
// test, instead of skipping it, when Docker is not available.
const RequireEnv = "SHOAL_REQUIRE_DOCKER"

// CommandTimeout bounds one docker command whose context has no deadline
// of its own.
const CommandTimeout = 2 * time.Minute

// maxStderr is how much of a failing command's stderr an error quotes.
const maxStderr = 4 << 10

// docker runs `docker args...` and returns its stdout without the final
// newline. The error of a failed command quotes the command and the end of
// its stderr; the arguments never hold secrets (environments go in a
// file).
func docker(ctx context.Context, args ...string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, CommandTimeout)
		defer cancel()
	}
	var stdout strings.Builder
	stderr := &tail.Buffer{Max: maxStderr}
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return "", &CommandError{Args: args, Err: err, Stderr: strings.TrimSpace(stderr.String())}
	}
	return strings.TrimSuffix(stdout.String(), "\n"), nil
}

// CommandError is a docker command that failed.
type CommandError struct {
	Args   []string
	Err    error  // the exec error: exit status, or the context's
	Stderr string // the end of its stderr
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("docker %s: %v", strings.Join(e.Args, " "), e.Err)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (e *CommandError) Unwrap() error { return e.Err }

// isNotFound reports whether err is docker's answer about a container,
// network or volume that does not exist. The CLI says so only in words:
// this is the one place that reads them.
func isNotFound(err error) bool {
	var ce *CommandError
	if !errors.As(err, &ce) {
		return false
	}
	s := strings.ToLower(ce.Stderr)
	return strings.Contains(s, "no such container") || strings.Contains(s, "no such network") ||
		strings.Contains(s, "no such volume") || strings.Contains(s, "not found")
}

// Available reports whether the docker command works and reaches a
// daemon: nil, or why not.
func Available(ctx context.Context) error {
	if _, err := exec.LookPath("docker"); err != nil {
		return fmt.Errorf("no docker command: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := docker(ctx, "info", "--format", "{{.ServerVersion}}"); err != nil {
		return fmt.Errorf("docker does not answer: %w", err)
	}
	return nil
}

// Require skips t when Docker is not available, saying why, or fails it
// when $SHOAL_REQUIRE_DOCKER is 1; under -short it skips t. Then it
// sweeps what killed test binaries left behind (Sweep). Call it first in
// every test that uses Docker.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Docker containers (not under -short)")
	}
	if err := Available(context.Background()); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("Docker is required (%s=1) but not available: %v", RequireEnv, err)
		}
		t.Skipf("Docker is not available (%v); set %s=1 to fail instead of skipping", err, RequireEnv)
	}
	if err := Sweep(context.Background()); err != nil {
		t.Logf("removing the leftovers of earlier tests: %v", err)
	}
}

// uniqueName returns shoal-test-NAME-RANDOM, a name no parallel test
// picks. NAME is reduced to the characters docker accepts.
func uniqueName(name string) string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // it never fails (crypto/rand, Go 1.24)
	n := "shoal-test-"
	if s := sanitize(name); s != "" {
		n += s + "-"
	}
	return n + hex.EncodeToString(b[:])
}

// sanitize keeps letters, digits, '-', '_' and '.' of s, and at most 40 of
// them: what docker allows in names and label values of any origin.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		case r == '/' || r == ' ':
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-_.")
}

// labelArgs returns the --label flags of a resource created for t.
func labelArgs(t TB, extra map[string]string) []string {
	args := []string{"--label", Label, "--label", TestLabel + "=" + sanitize(t.Name())}
	for k, v := range extra {
		args = append(args, "--label", k+"="+v)
	}
	return args
}

// cleanupContext is the context of a cleanup, which runs after the test's
// own contexts may have ended.
func cleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), CommandTimeout)
}
