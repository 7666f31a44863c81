package shuffle_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"shoal/shuffleservice"
	"shoal/shuffleservice/internal/nodetest"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// readerCluster is several in-process node services holding the outputs
// of one shuffle, written by the real writers.
type readerCluster struct {
	app     string
	nodes   []*nodeclient.Client
	layouts []shuffle.Layout
	maps    []shuffle.MapLocation
	want    [][]string // want[r]: every record of partition r, "key=value", sorted
	clients map[string]*nodeclient.Client
}

func (c *readerCluster) client(addr string) (shuffle.Fetcher, error) {
	if cl, ok := c.clients[addr]; ok {
		return cl, nil
	}
	return nil, fmt.Errorf("no client for %s", addr)
}

// startNode opens a node service on two fresh directories, with an
// in-memory catalogue, serves it on 127.0.0.1:0 and returns a client of
// it; t.Cleanup ends both.
func startNode(t testing.TB) *nodeclient.Client {
	t.Helper()
	root := t.TempDir()
	s, err := shuffleservice.Open(shuffleservice.Options{
		Dirs:      []string{filepath.Join(root, "d0"), filepath.Join(root, "d1")},
		CatalogFS: vfs.NewMem(),
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return nodetest.Serve(t, s)
}

// newReaderCluster starts k nodes and writes m map outputs of r
// partitions, map i on node i mod k, alternating sort and hash writers.
func newReaderCluster(t *testing.T, k, m, r int) *readerCluster {
	t.Helper()
	ctx := context.Background()
	c := &readerCluster{app: "reader-app", want: make([][]string, r), clients: map[string]*nodeclient.Client{}}
	for range k {
		cl := startNode(t)
		nodetest.Register(t, cl, c.app)
		layout, err := cl.RegisterWorker(ctx, c.app, "w-1", os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, cl)
		c.layouts = append(c.layouts, layout)
		c.clients[cl.Addr()] = cl
	}
	for i := range m {
		node := i % k
		mode := []shuffle.Mode{shuffle.ModeSort, shuffle.ModeHash, shuffle.ModeBypass}[i%3]
		w, err := shuffle.NewWriter(shuffle.WriterOptions{
			Layout: c.layouts[node], App: c.app, Shuffle: 1, Map: uint32(i), Partitions: r,
			Mode: mode, Codec: shuffle.CodecS2, MemoryLimit: 16 << 10,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range shuffle.GenRecords(uint64(i), 3000, r) {
			if err := w.Write(rec.P, rec.Key, rec.Value); err != nil {
				t.Fatal(err)
			}
			c.want[rec.P] = append(c.want[rec.P], fmt.Sprintf("%x=%x", rec.Key, rec.Value))
		}
		out, err := w.Commit(ctx, c.nodes[node])
		if err != nil {
			t.Fatal(err)
		}
		c.maps = append(c.maps, shuffle.MapLocation{Node: c.nodes[node].Addr(), Output: out})
	}
	for _, w := range c.want {
		slices.Sort(w)
	}
	return c
}

// readAll reads partitions [start, end) and returns "key=value" sorted.
func readAll(ctx context.Context, opts shuffle.ReaderOptions) ([]string, shuffle.ReaderStats, error) {
	rd, err := shuffle.NewReader(ctx, opts)
	if err != nil {
		return nil, shuffle.ReaderStats{}, err
	}
	defer rd.Close()
	var got []string
	for rd.Next() {
		got = append(got, fmt.Sprintf("%x=%x", rd.Key(), rd.Value()))
	}
	slices.Sort(got)
	return got, rd.Stats(), rd.Err()
}

func TestReaderReadsEveryRecordOnce(t *testing.T) {
	const k, m, r = 3, 7, 11
	c := newReaderCluster(t, k, m, r)
	for _, tc := range []struct {
		name   string
		local  bool
		edit   func(*shuffle.ReaderOptions)
		ranges [][2]int
		cut    bool // each read is given the outputs cut to its range, as a driver sends them
	}{
		{name: "local+remote", local: true},
		{name: "remote-only"},
		{name: "one-byte-in-flight", local: true, edit: func(o *shuffle.ReaderOptions) { o.MaxBytesInFlight = 1 }},
		{name: "one-fetcher", edit: func(o *shuffle.ReaderOptions) { o.Fetchers = 1; o.MaxBytesInFlight = 4096 }},
		{name: "ranges", local: true, ranges: [][2]int{{0, 4}, {4, 5}, {5, 11}, {3, 3}}},
		{name: "cut", local: true, cut: true, ranges: [][2]int{{0, 4}, {4, 5}, {5, 11}, {3, 3}, {10, 11}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ranges := tc.ranges
			if ranges == nil {
				for p := range r {
					ranges = append(ranges, [2]int{p, p + 1})
				}
			}
			var local, remote int64
			for i, pr := range ranges {
				opts := shuffle.ReaderOptions{App: c.app, Shuffle: 1, ReduceStart: pr[0], ReduceEnd: pr[1], Maps: c.maps, Clients: c.client}
				if tc.local {
					node := i % k
					opts.LocalNode, opts.LocalLayout = c.nodes[node].Addr(), c.layouts[node]
				}
				if tc.edit != nil {
					tc.edit(&opts)
				}
				if tc.cut {
					opts.Maps = cutMaps(c.maps, pr[0], pr[1])
				}
				got, st, err := readAll(context.Background(), opts)
				if err != nil {
					t.Fatalf("partitions %v: %v", pr, err)
				}
				var want []string
				for p := pr[0]; p < pr[1]; p++ {
					want = append(want, c.want[p]...)
				}
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("partitions %v: read %d records, want %d (or different ones)", pr, len(got), len(want))
				}
				if st.Records != int64(len(want)) {
					t.Fatalf("stats count %d records, read %d", st.Records, len(want))
				}
				local += st.LocalBytes
				remote += st.RemoteBytes
			}
			if tc.local != (local > 0) || remote == 0 {
				t.Fatalf("local bytes %d, remote bytes %d (local reads on: %v)", local, remote, tc.local)
			}
		})
	}
}

// cutMaps is maps with each output's lengths cut to blocks [lo, hi).
func cutMaps(maps []shuffle.MapLocation, lo, hi int) []shuffle.MapLocation {
	out := make([]shuffle.MapLocation, len(maps))
	for i, m := range maps {
		o := proto.CloneOf(m.Output)
		var off int64
		for _, n := range o.Lengths[:lo] {
			off += int64(n)
		}
		o.Lengths = o.Lengths[lo:hi]
		out[i] = shuffle.MapLocation{Node: m.Node, Output: o, Start: lo, Offset: off}
	}
	return out
}

func TestReaderRefusesPartitionsOutsideCutOutputs(t *testing.T) {
	c := newReaderCluster(t, 1, 2, 6)
	for _, pr := range [][2]int{{1, 4}, {2, 5}, {0, 2}} {
		_, err := shuffle.NewReader(context.Background(), shuffle.ReaderOptions{
			App: c.app, Shuffle: 1, ReduceStart: pr[0], ReduceEnd: pr[1], Maps: cutMaps(c.maps, 2, 4), Clients: c.client,
		})
		if !errors.Is(err, shuffle.ErrOutOfRange) {
			t.Errorf("partitions %v of outputs cut to [2, 4): err %v, want ErrOutOfRange", pr, err)
		}
	}
}

func TestReaderFetchFailedWhenNodeIsGone(t *testing.T) {
	c := newReaderCluster(t, 2, 2, 3)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := lis.Addr().String()
	lis.Close() // nothing listens there any more
	dead, err := nodeclient.Dial(gone, nodeclient.WithAppToken(nodetest.AppToken))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	c.clients[gone] = dead
	maps := slices.Clone(c.maps)
	maps[1] = shuffle.MapLocation{Node: gone, Output: maps[1].Output}

	start := time.Now()
	_, st, err := readAll(context.Background(), shuffle.ReaderOptions{
		App: c.app, Shuffle: 1, ReduceStart: 0, ReduceEnd: 3, Maps: maps, Clients: c.client,
		Retries: 2, RetryBackoff: 10 * time.Millisecond,
	})
	var ff *shuffle.FetchFailedError
	if !errors.As(err, &ff) {
		t.Fatalf("err = %v, want *shuffle.FetchFailedError", err)
	}
	if ff.Node != gone || ff.Map != 1 || ff.Shuffle != 1 || ff.App != c.app {
		t.Fatalf("fetch failure names %+v, want map 1 on %s", ff, gone)
	}
	if st.Retries != 2 {
		t.Fatalf("%d retries, want 2", st.Retries)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("gave up after %v", d)
	}
}

func TestReaderCorruptBlockOnDisk(t *testing.T) {
	for _, local := range []bool{false, true} {
		t.Run(fmt.Sprintf("local=%v", local), func(t *testing.T) {
			c := newReaderCluster(t, 1, 1, 2) // map 0 is a sort output
			out := c.maps[0].Output
			nodetest.CorruptFile(t, c.layouts[0].DataPath(c.app, 1, 0, out.Attempt), func(b []byte) []byte {
				b[len(b)-3] ^= 0x40 // inside the last block's last frame
				return b
			})
			opts := shuffle.ReaderOptions{App: c.app, Shuffle: 1, ReduceStart: 1, ReduceEnd: 2, Maps: c.maps, Clients: c.client, Retries: 1, RetryBackoff: time.Millisecond}
			if local {
				opts.LocalNode, opts.LocalLayout = c.nodes[0].Addr(), c.layouts[0]
			}
			got, _, err := readAll(context.Background(), opts)
			var ff *shuffle.FetchFailedError
			if !errors.As(err, &ff) || !errors.Is(err, shuffle.ErrCorrupt) || ff.Map != 0 || ff.Reduce != 1 {
				t.Fatalf("err = %v, want a shuffle.FetchFailedError for map 0 reduce 1 wrapping shuffle.ErrCorrupt", err)
			}
			if len(got) != 0 {
				t.Fatalf("%d records of a corrupt block were returned", len(got))
			}
		})
	}
}

// damagingProxy serves Fetch by forwarding to a node and flips one byte of
// the first chunk it forwards: the wire damaging a block.
type damagingProxy struct {
	shufflepb.UnimplementedShuffleServer
	upstream *nodeclient.Client
	damaged  atomic.Bool
}

func (p *damagingProxy) Fetch(req *shufflepb.FetchRequest, stream grpc.ServerStreamingServer[shufflepb.FetchChunk]) error {
	return p.upstream.Fetch(stream.Context(), req, func(ch *shufflepb.FetchChunk) error {
		if len(ch.Data) > 20 && !p.damaged.Swap(true) {
			ch.Data = bytes.Clone(ch.Data)
			ch.Data[20] ^= 0x01
		}
		return stream.Send(ch)
	})
}

func TestReaderRefetchesBlockDamagedInFlight(t *testing.T) {
	c := newReaderCluster(t, 1, 3, 4)
	proxy := &damagingProxy{upstream: c.nodes[0]}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	shufflepb.RegisterShuffleServer(g, proxy)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	pc, err := nodeclient.Dial(lis.Addr().String(), nodeclient.WithAppToken(nodetest.AppToken))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })

	got, st, err := readAll(context.Background(), shuffle.ReaderOptions{
		App: c.app, Shuffle: 1, ReduceStart: 0, ReduceEnd: 4, Maps: c.maps,
		Clients:      func(string) (shuffle.Fetcher, error) { return pc, nil },
		RetryBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, w := range c.want {
		want = append(want, w...)
	}
	slices.Sort(want)
	if !proxy.damaged.Load() || st.Retries != 1 || !slices.Equal(got, want) {
		t.Fatalf("damaged %v, retries %d, %d records (want %d)", proxy.damaged.Load(), st.Retries, len(got), len(want))
	}
}

func TestReaderCloseEarly(t *testing.T) {
	c := newReaderCluster(t, 2, 4, 2)
	rd, err := shuffle.NewReader(context.Background(), shuffle.ReaderOptions{
		App: c.app, Shuffle: 1, ReduceStart: 0, ReduceEnd: 2, Maps: c.maps, Clients: c.client, MaxBytesInFlight: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !rd.Next() {
		t.Fatal(rd.Err())
	}
	if err := rd.Close(); err != nil { // must not wait for the rest to be consumed
		t.Fatal(err)
	}
	if rd.Next() || rd.Close() != nil {
		t.Fatal("Next after Close returned a record, or a second Close failed")
	}
}

func TestReaderRejectsBadRanges(t *testing.T) {
	c := newReaderCluster(t, 1, 1, 2)
	for _, pr := range [][2]int{{-1, 1}, {2, 1}, {0, 3}} {
		_, err := shuffle.NewReader(context.Background(), shuffle.ReaderOptions{App: c.app, Shuffle: 1, ReduceStart: pr[0], ReduceEnd: pr[1], Maps: c.maps, Clients: c.client})
		if !errors.Is(err, shuffle.ErrInvalidArgument) && !errors.Is(err, shuffle.ErrOutOfRange) {
			t.Errorf("range %v: err = %v", pr, err)
		}
	}
}
