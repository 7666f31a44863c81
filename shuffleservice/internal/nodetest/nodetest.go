package nodetest

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"shoal/internal/nodeproc"
	"shoal/shuffleservice/nodeclient"
)

// AppToken is the application token the clients of Serve and
// StartProcess present: a node binds each application they register to
// it.
const AppToken = "nodetest-app-token"

// Server is a node service to serve: a *shuffleservice.Server.
type Server interface {
	Serve(net.Listener) error
	Close() error
}

// Serve serves s on 127.0.0.1:0 and returns a client of it. t.Cleanup
// closes the client and s, and fails the test if Close or Serve fails.
func Serve(t testing.TB, s Server) *nodeclient.Client {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	c, err := nodeclient.Dial(lis.Addr().String(), nodeclient.WithAppToken(AppToken))
	if err != nil {
		s.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return c
}

// StartProcess starts `shoal node` (the binary bin) on dirs, with flags
// args besides, and dials it; both are ended by t.Cleanup (the process
// with SIGKILL, if still running).
func StartProcess(t testing.TB, bin string, dirs []string, args ...string) (*nodeproc.Process, *nodeclient.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := nodeproc.Start(ctx, nodeproc.Options{Binary: bin, Dirs: dirs, Args: append([]string{"--log-level=warn"}, args...), Stderr: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	c, err := nodeclient.Dial(p.Addr(), nodeclient.WithAppToken(AppToken))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return p, c
}

// Register registers app with c's node, with the node's default TTL.
func Register(t testing.TB, c *nodeclient.Client, app string) {
	t.Helper()
	if err := c.RegisterApp(context.Background(), app, 0); err != nil {
		t.Fatalf("RegisterApp(%q): %v", app, err)
	}
}

// CorruptFile rewrites the file at path with f applied to its bytes: a
// node's file damaged on disk.
func CorruptFile(t testing.TB, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o644); err != nil {
		t.Fatal(err)
	}
}
