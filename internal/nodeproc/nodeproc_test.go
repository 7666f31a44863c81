package nodeproc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shoal/internal/testbin"
)

func TestStartStopKill(t *testing.T) {
	bin := testbin.Shoal(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	p, err := Start(ctx, Options{Binary: bin, Dirs: []string{dir}, Stderr: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Addr(), "127.0.0.1:") || strings.HasSuffix(p.Addr(), ":0") || p.Pid() != p.pid {
		t.Fatalf("addr %q pid %d (printed %d)", p.Addr(), p.Pid(), p.pid)
	}
	if rss := p.PeakRSS(); rss <= 0 {
		t.Errorf("PeakRSS of a running node = %d", rss)
	}
	if err := p.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !p.cmd.ProcessState.Success() {
		t.Fatalf("node exited with %v after SIGTERM", p.cmd.ProcessState)
	}

	// A second node on the same directory, killed.
	p, err = Start(ctx, Options{Binary: bin, Dirs: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("second Kill: %v", err)
	}
}

func TestStartFailures(t *testing.T) {
	bin := testbin.Shoal(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Start(ctx, Options{Binary: bin, Dirs: []string{t.TempDir()}, Args: []string{"--no-such-flag"}})
	if err == nil || !strings.Contains(err.Error(), "exited before listening") || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("bad flag: %v", err)
	}

	// A child that never prints its line is killed when ctx ends.
	script := filepath.Join(t.TempDir(), "silent")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer scancel()
	_, err = Start(sctx, Options{Binary: script, Dirs: []string{"x"}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent child: %v", err)
	}
	if _, err := Start(ctx, Options{Dirs: []string{"x"}}); err == nil {
		t.Fatal("Start without a binary succeeded")
	}
}

// TestChildRole checks the environment contract: the child is told it is
// a node service (SHOAL_ROLE=node) even when this process has another
// role, and keeps the rest of this process's environment.
func TestChildRole(t *testing.T) {
	t.Setenv("SHOAL_ROLE", "worker")
	t.Setenv("NODEPROC_TEST_INHERITED", "yes")
	script := filepath.Join(t.TempDir(), "node")
	body := `#!/bin/sh
[ "$SHOAL_ROLE" = node ] && [ "$NODEPROC_TEST_INHERITED" = yes ] && [ "$1" = node ] || { echo "role=$SHOAL_ROLE args=$*" >&2; exit 1; }
echo "shoal node listening on 127.0.0.1:1 pid $$"
exec sleep 60
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := Start(ctx, Options{Binary: script, Dirs: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
}
