package shuffle_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"shoal/internal/poll"
	"shoal/internal/toxiproxy"
	"shoal/shuffleservice/internal/nodetest"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shuffle"
)

// proxied puts a toxiproxy proxy in front of a reader cluster's single
// node and returns map locations that point at the proxy, and a client
// source that dials it.
func proxied(t *testing.T, c *readerCluster, tp *toxiproxy.Server, name string) ([]shuffle.MapLocation, *toxiproxy.Proxy, shuffle.ClientSource) {
	t.Helper()
	p := tp.Proxy(t, name, c.nodes[0].Addr())
	pc, err := nodeclient.Dial(p.Addr(), nodeclient.WithAppToken(nodetest.AppToken))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	maps := make([]shuffle.MapLocation, len(c.maps))
	for i, m := range c.maps {
		maps[i] = shuffle.MapLocation{Node: p.Addr(), Output: m.Output}
	}
	return maps, p, func(string) (shuffle.Fetcher, error) { return pc, nil }
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
// with every record, or fails with a shuffle.FetchFailedError naming the node,
// within a bounded time; it never hangs.
func TestReaderNetworkFaults(t *testing.T) {
	tp := toxiproxy.Start(t)
	c := newReaderCluster(t, 1, 4, 6)
	want := allRecords(c)

	t.Run("latency", func(t *testing.T) {
		maps, p, clients := proxied(t, c, tp, "latency")
		p.AddToxic(t, "lat", "latency", "downstream", map[string]any{"latency": 50, "jitter": 20})
		got, _, err := readAll(context.Background(), shuffle.ReaderOptions{App: c.app, Shuffle: 1, ReduceStart: 0, ReduceEnd: 6, Maps: maps, Clients: clients})
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
			_, st, err := readAll(context.Background(), shuffle.ReaderOptions{
				App: c.app, Shuffle: 1, ReduceStart: 0, ReduceEnd: 6, Maps: maps, Clients: clients,
				Retries: 2, RetryBackoff: 50 * time.Millisecond, IdleTimeout: time.Second,
			})
			var ff *shuffle.FetchFailedError
			if !errors.As(err, &ff) || ff.Node != p.Addr() {
				t.Fatalf("err = %v, want a shuffle.FetchFailedError naming %s", err, p.Addr())
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
		rd, err := shuffle.NewReader(context.Background(), shuffle.ReaderOptions{
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
