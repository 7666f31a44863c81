package nodeclient

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"shoal/blockstore"
	"shoal/internal/nodeproc"
	"shoal/internal/testbin"
	"shoal/internal/toxiproxy"
	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// TestNodeLinkBlackhole black-holes the link between a Client and a real
// node process (toxiproxy's timeout toxic: the connection stays open and
// every byte either way is dropped, as on a route that silently loses
// packets) and requires each call on it to fail within a bound instead
// of waiting forever: through its default deadline (callTimeout and
// getIdleTimeout, shortened here) or, for a call whose deadline is far
// away, through the transport keepalive (nodewire.KeepaliveTime, which
// gRPC does not let a client set under 10 s, and KeepaliveTimeout,
// shortened).
func TestNodeLinkBlackhole(t *testing.T) {
	bin := testbin.Shoal(t)
	tp := toxiproxy.Start(t)
	root := t.TempDir()
	direct := startNode(t, bin, filepath.Join(root, "a"))
	const app = "app"
	if err := direct.RegisterApp(context.Background(), app, 0); err != nil {
		t.Fatal(err)
	}
	block := bytes.Repeat([]byte("shoal"), 1<<20) // 5 MiB: a put of it has a second more than a unary call (minPutRate)
	held := blockstore.BlockID{App: app, RDD: 1, Partition: 0}
	if _, _, err := direct.PutBlock(context.Background(), held, blockstore.DiskOnly, 0, block); err != nil {
		t.Fatal(err)
	}
	out := &shufflepb.MapOutput{Shuffle: 1, Map: 0, Kind: shufflepb.OutputKind_OUTPUT_KIND_SORTED, Lengths: []uint64{0, 0}}

	// Deadlines: the keepalive would take over 10 s to notice.
	short := linkTimes{keepaliveTime: nodewire.KeepaliveTime, keepaliveTimeout: nodewire.KeepaliveTimeout, call: time.Second, getIdle: time.Second}
	// The keepalive: the deadlines are far away.
	keepalive := linkTimes{keepaliveTime: nodewire.KeepaliveTime, keepaliveTimeout: time.Second, call: 10 * time.Minute, getIdle: 10 * time.Minute}
	const late = 60 * time.Second // a call still running then hangs: the test fails

	for _, tc := range []struct {
		name  string
		times linkTimes
		call  func(*Client) error
		code  codes.Code    // of the error
		bound time.Duration // 3× what the call should take
	}{
		{"commit/deadline", short, func(c *Client) error {
			_, err := c.CommitMapOutput(context.Background(), app, out)
			return err
		}, codes.DeadlineExceeded, 3 * short.call},
		{"put-block/deadline", short, func(c *Client) error {
			_, _, err := c.PutBlock(context.Background(), blockstore.BlockID{App: app, RDD: 2}, blockstore.DiskOnly, 0, block)
			return err
		}, codes.DeadlineExceeded, 3 * short.put(len(block))},
		{"get-block/idle", short, func(c *Client) error {
			_, _, _, err := c.GetBlock(context.Background(), held)
			return err
		}, codes.DeadlineExceeded, 3 * short.getIdle},
		{"put-block/keepalive", keepalive, func(c *Client) error {
			_, _, err := c.PutBlock(context.Background(), blockstore.BlockID{App: app, RDD: 3}, blockstore.DiskOnly, 0, block)
			return err
		}, codes.Unavailable, 3 * (keepalive.keepaliveTime + keepalive.keepaliveTimeout)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, p := blackholed(t, tp, direct.Addr(), tc.name, tc.times)
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- tc.call(c) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(late):
				t.Fatalf("the call on a black-holed link has not returned after %v", late)
			}
			took := time.Since(start)
			if err == nil {
				t.Fatalf("the call on a black-holed link succeeded after %v", took)
			}
			t.Logf("failed after %v: %v", took.Round(time.Millisecond), err)
			if status.Code(err) != tc.code || !shuffle.IsRetryable(err) {
				t.Errorf("error code %v (retryable: %v), want %v, retryable", status.Code(err), shuffle.IsRetryable(err), tc.code)
			}
			if tc.code == codes.DeadlineExceeded && !strings.Contains(err.Error(), p.Addr()) {
				t.Errorf("the error does not name the node %s", p.Addr())
			}
			if took > tc.bound {
				t.Errorf("the call failed after %v, not within %v", took, tc.bound)
			}
		})
	}

	// An idle connection is checked too (PermitWithoutStream): it is
	// dropped, and the next call finds it gone rather than silent.
	t.Run("idle/keepalive", func(t *testing.T) {
		t.Parallel()
		c, _ := blackholed(t, tp, direct.Addr(), "idle", keepalive)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), late)
		defer cancel()
		for s := c.conn.GetState(); s == connectivity.Ready; s = c.conn.GetState() {
			if !c.conn.WaitForStateChange(ctx, s) {
				t.Fatalf("the idle black-holed connection is still ready after %v", late)
			}
		}
		took := time.Since(start)
		t.Logf("idle connection dropped after %v", took.Round(time.Millisecond))
		if bound := 3 * (keepalive.keepaliveTime + keepalive.keepaliveTimeout); took > bound {
			t.Errorf("the idle connection was dropped after %v, not within %v", took, bound)
		}
	})
}

// blackholed returns a client with times of the node at upstream through
// a new proxy of tp, connected, and then black-holes the proxy: every
// byte either way is dropped and the connection stays open.
func blackholed(t *testing.T, tp *toxiproxy.Server, upstream, name string, times linkTimes) (*Client, *toxiproxy.Proxy) {
	t.Helper()
	p := tp.Proxy(t, "blackhole-"+strings.ReplaceAll(name, "/", "-"), upstream)
	c, err := dial(p.Addr(), times, WithAppToken("link-test-token"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	p.AddToxic(t, "drop-down", "timeout", "downstream", map[string]any{"timeout": 0})
	p.AddToxic(t, "drop-up", "timeout", "upstream", map[string]any{"timeout": 0})
	return c, p
}

// startNode starts `shoal node` (the binary bin) on dir and dials it; both
// are ended by t.Cleanup. (shuffleservice/internal/nodetest has the same
// for the other packages' tests; it imports this package, so this
// package's own tests cannot use it.)
func startNode(t *testing.T, bin, dir string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := nodeproc.Start(ctx, nodeproc.Options{Binary: bin, Dirs: []string{dir}, Args: []string{"--log-level=warn"}, Stderr: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	c, err := Dial(p.Addr(), WithAppToken("link-test-token"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
