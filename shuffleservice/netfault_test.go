package shuffleservice

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"shoal/blockstore"
	"shoal/internal/poll"
	"shoal/internal/testbin"
	"shoal/internal/toxiproxy"
	"shoal/shuffleservice/shufflepb"
)

// proxied puts a toxiproxy proxy in front of a reader cluster's single
// node and returns map locations that point at the proxy, and a client
// source that dials it.
func proxied(t *testing.T, c *readerCluster, tp *toxiproxy.Server, name string) ([]MapLocation, *toxiproxy.Proxy, ClientSource) {
	t.Helper()
	p := tp.Proxy(t, name, c.nodes[0].Addr())
	pc, err := Dial(p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	maps := make([]MapLocation, len(c.maps))
	for i, m := range c.maps {
		maps[i] = MapLocation{Node: p.Addr(), Output: m.Output}
	}
	return maps, p, func(string) (*Client, error) { return pc, nil }
}

func allRecords(c *readerCluster) []string {
	var want []string
	for _, w := range c.want {
		want = append(want, w...)
	}
	slices.Sort(want)
	return want
}

// Network faults between a reader and a node service: the read finishes
// with every record, or fails with a FetchFailedError naming the node,
// within a bounded time; it never hangs.
func TestReaderNetworkFaults(t *testing.T) {
	tp := toxiproxy.Start(t)
	c := newReaderCluster(t, 1, 4, 6)
	want := allRecords(c)

	t.Run("latency", func(t *testing.T) {
		maps, p, clients := proxied(t, c, tp, "latency")
		p.AddToxic(t, "lat", "latency", "downstream", map[string]any{"latency": 50, "jitter": 20})
		got, _, err := readAll(context.Background(), ReaderOptions{App: c.app, Shuffle: 1, ReduceStart: 0, ReduceEnd: 6, Maps: maps, Clients: clients})
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("read %d records (want %d): %v", len(got), len(want), err)
		}
	})

	for _, tc := range []struct {
		name, toxic string
		attrs       map[string]any
	}{
		{"reset", "reset_peer", map[string]any{"timeout": 0}},  // connections reset at once
		{"blackhole", "timeout", map[string]any{"timeout": 0}}, // data stops, connections stay open
	} {
		t.Run(tc.name, func(t *testing.T) {
			maps, p, clients := proxied(t, c, tp, tc.name)
			p.AddToxic(t, tc.name, tc.toxic, "downstream", tc.attrs)
			start := time.Now()
			_, st, err := readAll(context.Background(), ReaderOptions{
				App: c.app, Shuffle: 1, ReduceStart: 0, ReduceEnd: 6, Maps: maps, Clients: clients,
				Retries: 2, RetryBackoff: 50 * time.Millisecond, IdleTimeout: time.Second,
			})
			var ff *FetchFailedError
			if !errors.As(err, &ff) || ff.Node != p.Addr() {
				t.Fatalf("err = %v, want a FetchFailedError naming %s", err, p.Addr())
			}
			if st.Retries != 2 {
				t.Fatalf("%d retries, want 2", st.Retries)
			}
			// Three attempts of at most IdleTimeout each, plus backoff.
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("gave up after %v", d)
			}
		})
	}

	t.Run("unreachable-then-back", func(t *testing.T) {
		maps, p, clients := proxied(t, c, tp, "flap")
		p.SetEnabled(t, false)
		rd, err := NewReader(context.Background(), ReaderOptions{
			App: c.app, Shuffle: 1, ReduceStart: 0, ReduceEnd: 6, Maps: maps, Clients: clients,
			Retries: 8, RetryBackoff: 100 * time.Millisecond, IdleTimeout: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		// Bring the node back once the reader has seen it unreachable.
		poll.WaitFor(t, 10*time.Second, "the reader to retry", func() bool { return rd.Stats().Retries > 0 })
		p.SetEnabled(t, true)
		var got []string
		for rd.Next() {
			got = append(got, string(rd.Key())+"="+string(rd.Value()))
		}
		if err := rd.Err(); err != nil || len(got) != len(want) {
			t.Fatalf("read %d records (want %d) after the node came back: %v", len(got), len(want), err)
		}
	})
}

// TestNodeLinkBlackhole black-holes the link between a Client and a real
// node process (toxiproxy's timeout toxic: the connection stays open and
// every byte either way is dropped, as on a route that silently loses
// packets) and requires each call on it to fail within a bound instead
// of waiting forever: through its default deadline (callTimeout and
// getIdleTimeout, shortened here) or, for a call whose deadline is far
// away, through the transport keepalive (keepaliveTime, which gRPC does
// not let a client set under 10 s, and keepaliveTimeout, shortened).
func TestNodeLinkBlackhole(t *testing.T) {
	bin := testbin.Shoal(t)
	tp := toxiproxy.Start(t)
	root := t.TempDir()
	_, direct := startNode(t, bin, []string{filepath.Join(root, "a")})
	const app = "app"
	mustRegister(t, direct, app)
	block := bytes.Repeat([]byte("shoal"), 1<<20) // 5 MiB: a put of it has a second more than a unary call (minPutRate)
	held := blockstore.BlockID{App: app, RDD: 1, Partition: 0}
	if _, _, err := direct.PutBlock(context.Background(), held, blockstore.DiskOnly, 0, block); err != nil {
		t.Fatal(err)
	}
	out := &shufflepb.MapOutput{Shuffle: 1, Map: 0, Kind: shufflepb.OutputKind_OUTPUT_KIND_SORTED, Lengths: []uint64{0, 0}}

	// Deadlines: the keepalive would take over 10 s to notice.
	short := linkTimes{keepaliveTime: keepaliveTime, keepaliveTimeout: keepaliveTimeout, call: time.Second, getIdle: time.Second}
	// The keepalive: the deadlines are far away.
	keepalive := linkTimes{keepaliveTime: keepaliveTime, keepaliveTimeout: time.Second, call: 10 * time.Minute, getIdle: 10 * time.Minute}
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
			if status.Code(err) != tc.code || !IsRetryable(err) {
				t.Errorf("error code %v (retryable: %v), want %v, retryable", status.Code(err), IsRetryable(err), tc.code)
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
	c, err := dial(p.Addr(), times)
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
