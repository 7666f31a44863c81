package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

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
	}
	for _, tc := range tests {
		err := RunNode(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("shoal node %q: %v, want an error about %s", tc.args, err, tc.want)
		}
	}
	if err := RunNode(context.Background(), []string{"-h"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
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
		done <- RunNode(ctx, []string{"--listen", "127.0.0.1:0", "--dir", dirs, "--app-ttl", "1m", "--cache-bytes", "3MiB", "--log-level", "warn"}, w, t.Output())
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
	c, err := nodeclient.Dial(m[1])
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
