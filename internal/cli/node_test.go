package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"shoal/internal/pki"
	"shoal/shuffleservice"
	"shoal/shuffleservice/nodeclient"
)

func TestNodeFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "--dir is required"},
		{[]string{"--dir", t.TempDir(), "extra"}, "unexpected arguments"},
		{[]string{"--dir", t.TempDir(), "--log-level", "loud"}, "log-level"},
		{[]string{"--dir", t.TempDir(), "--listen", "256.0.0.1:1"}, "listen on"},
		{[]string{"--dir", t.TempDir(), "--cache-bytes", "lots"}, "cache-bytes"},
		{[]string{"--dir", t.TempDir(), "--cache-bytes", "-1"}, "negative"},
		{[]string{"--dir", t.TempDir(), "--max-block-bytes", "1.5"}, "max-block-bytes"},
		{[]string{"--dir", t.TempDir(), "--max-binary-bytes", "big"}, "max-binary-bytes"},
		{[]string{"--dir", t.TempDir(), "--workers", "65"}, "--workers 65"},
		{[]string{"--dir", t.TempDir(), "--workers", "0"}, "--workers 0"},
		{[]string{"--dir", t.TempDir(), "--name", "a/b", "--listen", "127.0.0.1:0"}, "--name"},
		{[]string{"--dir", t.TempDir(), "--listen", "0.0.0.0:0"}, "--cluster-secret-file"},
		{[]string{"--dir", t.TempDir(), "--cluster-secret-file", filepath.Join(t.TempDir(), "none")}, "cluster-secret-file"},
		{[]string{"--dir", t.TempDir(), "--cluster-secret-file", secretFile(t, "\n  \n", 0o600)}, "is empty"},
		{[]string{"--dir", t.TempDir(), "--cluster-secret-file", secretFile(t, "s3cr3t", 0o644)}, "readable by every user"},
		{[]string{"--dir", t.TempDir(), "--cluster-secret-file", t.TempDir()}, "not a regular file"},
	}
	for _, tc := range tests {
		err := runNode(context.Background(), tc.args, noEnv, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("shoal node %q: %v, want an error about %s", tc.args, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("shoal node %q: the error quotes the secret: %v", tc.args, err)
		}
	}
	env := map[string]string{"SHOAL_NODE_WORKERS": "many"}
	if err := runNode(context.Background(), []string{"--dir", t.TempDir()}, mapEnv(env), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "SHOAL_NODE_WORKERS") {
		t.Errorf("a bad SHOAL_NODE_WORKERS: %v", err)
	}
	if err := RunNode(context.Background(), []string{"-h"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func noEnv(string) string { return "" }

func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// secretFile writes a cluster secret file with mode perm.
func secretFile(t testing.TB, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return p
}

// startNode runs the node command in-process with args and env, and
// returns the address it printed; t.Cleanup stops it and checks it
// returned nil.
func startNode(t testing.TB, args []string, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runNode(ctx, args, mapEnv(env), w, t.Output())
		w.Close()
	}()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("no line on stdout: %v (%v)", err, <-done)
	}
	go io.Copy(io.Discard, r)
	m := regexp.MustCompile(`^shoal node listening on (\S+) pid \d+\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("stdout line %q", line)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node returned %v after its context ended", err)
		}
	})
	return m[1]
}

// TestNodeFlagsFromEnvironment: every flag can come from SHOAL_NODE_*;
// the command line wins; SHOAL_CLUSTER_SECRET is the secret.
func TestNodeFlagsFromEnvironment(t *testing.T) {
	env := map[string]string{
		"SHOAL_NODE_LISTEN":      "127.0.0.1:0",
		"SHOAL_NODE_DIR":         t.TempDir() + "/a," + t.TempDir() + "/b",
		"SHOAL_NODE_NAME":        "from-env",
		"SHOAL_NODE_ADVERTISE":   "node.example:7077",
		"SHOAL_NODE_CACHE_BYTES": "3MiB",
		"SHOAL_NODE_LOG_LEVEL":   "warn",
		"SHOAL_CLUSTER_SECRET":   "env-secret",
	}
	addr := startNode(t, []string{"--name", "from-flag"}, env)
	ctx := context.Background()
	open, err := nodeclient.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if _, err := open.Status(ctx); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Status without SHOAL_CLUSTER_SECRET's secret: %v, want Unauthenticated", err)
	}
	c, err := nodeclient.Dial(addr, nodeclient.WithClusterSecret("env-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.GetName() != "from-flag" || st.GetAddr() != "node.example:7077" || len(st.GetDirs()) != 2 || st.GetBlocks().GetMemoryLimit() != 3<<20 {
		t.Fatalf("status %v: want name from-flag (the flag wins), addr node.example:7077, 2 dirs, 3 MiB", st)
	}
}

// TestNodeOnAllInterfaces: listening on 0.0.0.0 with a secret file and a
// certificate (SHOAL_NODE_TLS_DIR), the node advertises an address others
// can dial, with its port.
func TestNodeOnAllInterfaces(t *testing.T) {
	file := secretFile(t, "  file-secret\n", 0o640)
	tlsDir := filepath.Join(t.TempDir(), "tls")
	certs, err := pki.NewEphemeral("test", tlsDir)
	if err != nil {
		t.Fatal(err)
	}
	addr := startNode(t, []string{"--listen", "0.0.0.0:0", "--dir", t.TempDir(), "--cluster-secret-file", file, "--log-level", "warn"},
		map[string]string{"SHOAL_NODE_TLS_DIR": tlsDir})
	_, port, _ := net.SplitHostPort(addr)
	c, err := nodeclient.Dial("127.0.0.1:"+port, nodeclient.WithCredentials(nodeclient.Credentials{Secret: "file-secret", TLS: certs.Client}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatalf("Status with the file's secret, trimmed: %v", err)
	}
	host, aport, err := net.SplitHostPort(st.GetAddr())
	if ip := net.ParseIP(host); err != nil || aport != port || ip == nil || ip.IsUnspecified() || ip.IsLoopback() {
		t.Fatalf("advertised %q, want this machine's address with port %s", st.GetAddr(), port)
	}
}

// TestNodeServesUntilCancelled runs the node in-process: it prints its
// line, serves, and returns nil when its context ends.
func TestNodeServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, w := io.Pipe()
	done := make(chan error, 1)
	dirs := t.TempDir() + "/a," + t.TempDir() + "/b"
	go func() {
		done <- runNode(ctx, []string{"--listen", "127.0.0.1:0", "--dir", dirs, "--app-ttl", "1m", "--cache-bytes", "3MiB", "--log-level", "warn"}, noEnv, w, t.Output())
		w.Close()
	}()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("no line on stdout: %v", err)
	}
	m := regexp.MustCompile(`^shoal node listening on (127\.0\.0\.1:\d+) pid (\d+)\n$`).FindStringSubmatch(line)
	if m == nil || m[2] != fmt.Sprint(os.Getpid()) {
		t.Fatalf("stdout line %q", line)
	}
	go io.Copy(io.Discard, r)
	c, err := nodeclient.Dial(m[1], nodeclient.WithAppToken("node-test-app-token"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.RegisterApp(ctx, "app", 0); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Addr != m[1] || len(st.Dirs) != 2 || st.GetBlocks().GetMemoryLimit() != 3<<20 || st.GetBlocks().GetMaxBlockBytes() != shuffleservice.DefaultMaxBlockBytes {
		t.Fatalf("status %v, %v", st, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("node returned %v after its context ended", err)
		}
	case <-time.After(10 * time.Second): // twice the node's graceful-stop bound
		t.Fatal("node did not stop after its context ended")
	}
}

// Every flag of shoal node has its row in docs/node.md, with its
// environment variable.
func TestNodeFlagsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "node.md"))
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("shoal node", flag.ContinueOnError)
	var c nodeConfig
	c.register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		found := false
		for _, line := range strings.Split(string(doc), "\n") {
			if strings.HasPrefix(line, "| `--"+f.Name+"`") || strings.HasPrefix(line, "| `--"+f.Name+" ") {
				found = strings.Contains(line, "`"+NodeFlagEnv(f.Name)+"`")
				break
			}
		}
		if !found {
			t.Errorf("docs/node.md has no row for shoal node's flag --%s with %s", f.Name, NodeFlagEnv(f.Name))
		}
	})
}
