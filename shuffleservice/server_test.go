package shuffleservice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"shoal/blockstore"
	"shoal/internal/poll"
	"shoal/shuffleservice/internal/nodetest"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// fixtureRecord is a record of a map output written by the tests' own
// helpers (not by the writers).
type fixtureRecord struct{ key, value string }

// testNodeOptions returns options for a node on two fresh directories
// with an in-memory catalogue.
// testToken is the application token of the applications these tests
// register by calling registerApp directly.
func testToken() tokenSum { return sha256.Sum256([]byte(nodetest.AppToken)) }

func testNodeOptions(t testing.TB) Options {
	root := t.TempDir()
	return Options{
		Dirs:      []string{filepath.Join(root, "d0"), filepath.Join(root, "d1")},
		CatalogFS: vfs.NewMem(),
		Logger:    slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// newTestServer starts a node on 127.0.0.1:0 and returns it with a client.
// Both are closed by t.Cleanup.
func newTestServer(t testing.TB, edit ...func(*Options)) (*Server, *nodeclient.Client) {
	t.Helper()
	opts := testNodeOptions(t)
	for _, e := range edit {
		e(&opts)
	}
	return startTestServer(t, opts)
}

// startTestServer opens and serves a node with opts.
func startTestServer(t testing.TB, opts Options) (*Server, *nodeclient.Client) {
	t.Helper()
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, nodetest.Serve(t, s)
}

// encodeFixtureBlock frames records, a few per frame.
func encodeFixtureBlock(t testing.TB, enc *shuffle.FrameEncoder, recs []fixtureRecord) []byte {
	t.Helper()
	var block, raw []byte
	flush := func() {
		if len(raw) == 0 {
			return
		}
		f, err := enc.Encode(raw)
		if err != nil {
			t.Fatal(err)
		}
		block = append(block, f...)
		raw = raw[:0]
	}
	for i, r := range recs {
		raw = shuffle.AppendRecord(raw, []byte(r.key), []byte(r.value))
		if i%3 == 2 {
			flush()
		}
	}
	flush()
	return block
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeSortedOutput writes the data and index files of a sorted map
// output under their final names and returns the output to commit and
// the bytes of each block.
func writeSortedOutput(t testing.TB, layout shuffle.Layout, app string, shuffleID, mapID, attempt uint32, blocks [][]fixtureRecord) (*shufflepb.MapOutput, [][]byte) {
	t.Helper()
	enc, err := shuffle.NewFrameEncoder(shuffle.CodecS2)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	out := &shufflepb.MapOutput{Shuffle: shuffleID, Map: mapID, Attempt: attempt, Kind: shufflepb.OutputKind_OUTPUT_KIND_SORTED}
	var data []byte
	encoded := make([][]byte, len(blocks))
	for r, recs := range blocks {
		encoded[r] = encodeFixtureBlock(t, enc, recs)
		data = append(data, encoded[r]...)
		out.Lengths = append(out.Lengths, uint64(len(encoded[r])))
	}
	writeFile(t, layout.DataPath(app, shuffleID, mapID, attempt), data)
	writeFile(t, layout.IndexPath(app, shuffleID, mapID, attempt), shuffle.EncodeIndex(shuffle.OffsetsOf(out.Lengths)))
	return out, encoded
}

// writeHashOutput writes the files of a hash map output.
func writeHashOutput(t testing.TB, layout shuffle.Layout, app string, shuffleID, mapID, attempt uint32, blocks [][]fixtureRecord) (*shufflepb.MapOutput, [][]byte) {
	t.Helper()
	enc, err := shuffle.NewFrameEncoder(shuffle.CodecZstd)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	out := &shufflepb.MapOutput{Shuffle: shuffleID, Map: mapID, Attempt: attempt, Kind: shufflepb.OutputKind_OUTPUT_KIND_HASH}
	encoded := make([][]byte, len(blocks))
	for r, recs := range blocks {
		encoded[r] = encodeFixtureBlock(t, enc, recs)
		writeFile(t, layout.HashPath(app, shuffleID, mapID, attempt, r), encoded[r])
		out.Lengths = append(out.Lengths, uint64(len(encoded[r])))
	}
	return out, encoded
}

// genFixtureBlocks returns r blocks of random records; some are empty and
// some hold values large enough to make frames of several KiB.
func genFixtureBlocks(seed uint64, r int) [][]fixtureRecord {
	rng := rand.New(rand.NewPCG(seed, 7))
	blocks := make([][]fixtureRecord, r)
	for i := range blocks {
		if rng.IntN(4) == 0 {
			continue
		}
		n := rng.IntN(20)
		for j := 0; j < n; j++ {
			v := make([]byte, rng.IntN(3000))
			for k := range v {
				v[k] = byte('a' + rng.IntN(4)) // compressible, but not entirely
			}
			blocks[i] = append(blocks[i], fixtureRecord{key: fmt.Sprintf("k%d-%d-%d", seed, i, j), value: string(v)})
		}
	}
	return blocks
}

type blockID struct{ mapID, reduce uint32 }

// fetchBlocks fetches ranges and returns each block's bytes, checking
// the chunking rules on the way: chunks are whole verified frames, at most
// chunkSize bytes unless a single frame, and each block ends with end set.
func fetchBlocks(t testing.TB, c *nodeclient.Client, app string, shuffleID uint32, chunkSize int, ranges ...*shufflepb.BlockRange) (map[blockID][]byte, error) {
	t.Helper()
	got := map[blockID][]byte{}
	var cur *blockID
	err := c.Fetch(context.Background(), &shufflepb.FetchRequest{App: app, Shuffle: shuffleID, Blocks: ranges}, func(ch *shufflepb.FetchChunk) error {
		id := blockID{ch.Map, ch.Reduce}
		if cur != nil && *cur != id {
			return fmt.Errorf("chunk of %v while %v is not ended", id, *cur)
		}
		if cur == nil {
			if _, dup := got[id]; dup {
				return fmt.Errorf("block %v sent twice", id)
			}
		}
		if err := shuffle.VerifyFrames(ch.Data); err != nil {
			return fmt.Errorf("chunk of %v is not whole frames: %v", id, err)
		}
		if len(ch.Data) > chunkSize {
			if _, rest, _ := shuffle.NextFrame(ch.Data); len(rest) != 0 {
				return fmt.Errorf("chunk of %d bytes > ChunkSize %d holds more than one frame", len(ch.Data), chunkSize)
			}
		}
		got[id] = append(got[id], ch.Data...)
		if ch.End {
			cur = nil
		} else {
			cur = &id
		}
		return nil
	})
	if err == nil && cur != nil {
		t.Errorf("stream ended inside block %v", *cur)
	}
	return got, err
}

func mustCommit(t testing.TB, c shuffle.Committer, app string, out *shufflepb.MapOutput) *shufflepb.MapOutput {
	t.Helper()
	got, err := c.CommitMapOutput(context.Background(), app, out)
	if err != nil {
		t.Fatalf("commit shuffle %d map %d attempt %d: %v", out.Shuffle, out.Map, out.Attempt, err)
	}
	return got
}

func TestHandlerErrors(t *testing.T) {
	s, c := newTestServer(t, func(o *Options) { o.MaxBlocksPerRequest = 100 })
	ctx := context.Background()
	nodetest.Register(t, c, "app")
	out, _ := writeSortedOutput(t, s.Layout(), "app", 1, 0, 0, genFixtureBlocks(1, 10))
	mustCommit(t, c, "app", out)

	fetch := func(app string, ranges ...*shufflepb.BlockRange) error {
		return c.Fetch(ctx, &shufflepb.FetchRequest{App: app, Shuffle: 1, Blocks: ranges}, func(*shufflepb.FetchChunk) error { return nil })
	}
	sorted := func(lengths ...uint64) *shufflepb.MapOutput {
		return &shufflepb.MapOutput{Shuffle: 2, Kind: shufflepb.OutputKind_OUTPUT_KIND_SORTED, Lengths: lengths}
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"register ../x", func() error { return c.RegisterApp(ctx, "../x", 0) }, shuffle.ErrInvalidArgument},
		{"register empty", func() error { return c.RegisterApp(ctx, "", 0) }, shuffle.ErrInvalidArgument},
		{"register a/b", func() error { return c.RegisterApp(ctx, "a/b", 0) }, shuffle.ErrInvalidArgument},
		{"register huge ttl", func() error { return c.RegisterApp(ctx, "x", 2*maxTTL) }, shuffle.ErrInvalidArgument},
		{"heartbeat unknown", func() error { return c.Heartbeat(ctx, "nope") }, shuffle.ErrUnknownApp},
		{"heartbeat bad id", func() error { return c.Heartbeat(ctx, "..") }, shuffle.ErrInvalidArgument},
		{"worker unknown app", func() error { _, err := c.RegisterWorker(ctx, "nope", "w1", 1); return err }, shuffle.ErrUnknownApp},
		{"worker bad id", func() error { _, err := c.RegisterWorker(ctx, "app", "w/1", 1); return err }, shuffle.ErrInvalidArgument},
		{"commit unknown app", func() error { _, err := c.CommitMapOutput(ctx, "nope", sorted(1)); return err }, shuffle.ErrUnknownApp},
		{"commit bad app", func() error { _, err := c.CommitMapOutput(ctx, "../x", sorted(1)); return err }, shuffle.ErrInvalidArgument},
		{"commit nil output", func() error { _, err := c.CommitMapOutput(ctx, "app", nil); return err }, shuffle.ErrInvalidArgument},
		{"commit no partitions", func() error { _, err := c.CommitMapOutput(ctx, "app", sorted()); return err }, shuffle.ErrInvalidArgument},
		{"commit bad kind", func() error {
			_, err := c.CommitMapOutput(ctx, "app", &shufflepb.MapOutput{Shuffle: 2, Lengths: []uint64{1}})
			return err
		}, shuffle.ErrInvalidArgument},
		{"commit missing files", func() error { _, err := c.CommitMapOutput(ctx, "app", sorted(1, 2)); return err }, shuffle.ErrInvalidArgument},
		{"commit overflowing lengths", func() error { _, err := c.CommitMapOutput(ctx, "app", sorted(1<<63, 1<<63)); return err }, shuffle.ErrInvalidArgument},
		{"fetch bad app", func() error { return fetch("a/b") }, shuffle.ErrInvalidArgument},
		{"fetch unknown app", func() error { return fetch("nope", &shufflepb.BlockRange{ReduceEnd: 1}) }, shuffle.ErrUnknownApp},
		{"fetch unknown map", func() error { return fetch("app", &shufflepb.BlockRange{Map: 9, ReduceEnd: 1}) }, shuffle.ErrNoMapOutput},
		{"fetch out of range", func() error { return fetch("app", &shufflepb.BlockRange{ReduceStart: 5, ReduceEnd: 11}) }, shuffle.ErrOutOfRange},
		{"fetch reversed", func() error { return fetch("app", &shufflepb.BlockRange{ReduceStart: 5, ReduceEnd: 4}) }, shuffle.ErrInvalidArgument},
		{"fetch too many", func() error {
			var rs []*shufflepb.BlockRange
			for range 11 {
				rs = append(rs, &shufflepb.BlockRange{ReduceEnd: 10})
			}
			return fetch("app", rs...)
		}, shuffle.ErrInvalidArgument},
		{"remove unknown app", func() error { return c.RemoveApp(ctx, "nope") }, shuffle.ErrUnknownApp},
		{"remove bad app", func() error { return c.RemoveApp(ctx, "../..") }, shuffle.ErrInvalidArgument},
		{"remove shuffle unknown app", func() error { return c.RemoveShuffle(ctx, "nope", 1) }, shuffle.ErrUnknownApp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), "shuffle") {
				t.Errorf("error %q does not say where it comes from", err)
			}
		})
	}
	// Nothing above broke the node.
	if _, err := fetchBlocks(t, c, "app", 1, DefaultChunkSize, &shufflepb.BlockRange{ReduceEnd: 10}); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterWorker(t *testing.T) {
	s, c := newTestServer(t)
	ctx := context.Background()
	nodetest.Register(t, c, "app")
	nodetest.Register(t, c, "app") // idempotent
	l, err := c.RegisterWorker(ctx, "app", "w-1", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(l.Dirs) != fmt.Sprint(s.Layout().Dirs) {
		t.Fatalf("dirs %v, want %v", l.Dirs, s.Layout().Dirs)
	}
	if err := c.Heartbeat(ctx, "app"); err != nil {
		t.Fatal(err)
	}
}

func TestFetchRoundTrip(t *testing.T) {
	for _, chunk := range []int{1, 300, 4 << 10, DefaultChunkSize} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) {
			s, c := newTestServer(t, func(o *Options) { o.ChunkSize = chunk })
			nodetest.Register(t, c, "app")
			const R = 40
			want := map[blockID][]byte{}
			var ranges []*shufflepb.BlockRange
			for m := uint32(0); m < 6; m++ {
				write := writeSortedOutput
				if m%2 == 1 {
					write = writeHashOutput
				}
				out, blocks := write(t, s.Layout(), "app", 3, m, 1, genFixtureBlocks(uint64(m), R))
				mustCommit(t, c, "app", out)
				for r, b := range blocks {
					want[blockID{m, uint32(r)}] = b
				}
				ranges = append(ranges, &shufflepb.BlockRange{Map: m, ReduceStart: 0, ReduceEnd: R})
			}
			got, err := fetchBlocks(t, c, "app", 3, chunk, ranges...)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d blocks, want %d", len(got), len(want))
			}
			for id, b := range want {
				if !bytes.Equal(got[id], b) {
					t.Fatalf("block %v: got %d bytes, want %d", id, len(got[id]), len(b))
				}
			}
			// Partial and empty ranges.
			got, err = fetchBlocks(t, c, "app", 3, chunk,
				&shufflepb.BlockRange{Map: 0, ReduceStart: 7, ReduceEnd: 9},
				&shufflepb.BlockRange{Map: 1, ReduceStart: 5, ReduceEnd: 5},
				&shufflepb.BlockRange{Map: 1, ReduceStart: 39, ReduceEnd: 40})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || !bytes.Equal(got[blockID{0, 8}], want[blockID{0, 8}]) || !bytes.Equal(got[blockID{1, 39}], want[blockID{1, 39}]) {
				t.Fatalf("partial ranges: got blocks %d", len(got))
			}
			m := s.Metrics()
			if m.BlocksServed != 6*R+3 || m.FetchRequests != 2 || m.IndexCacheMisses == 0 {
				t.Errorf("metrics %+v", m)
			}
		})
	}
}

func TestFetchCallbackError(t *testing.T) {
	s, c := newTestServer(t, func(o *Options) { o.ChunkSize = 64 })
	nodetest.Register(t, c, "app")
	out, _ := writeSortedOutput(t, s.Layout(), "app", 0, 0, 0, genFixtureBlocks(3, 8))
	mustCommit(t, c, "app", out)
	stop := errors.New("enough")
	err := c.Fetch(context.Background(), &shufflepb.FetchRequest{App: "app", Blocks: []*shufflepb.BlockRange{{ReduceEnd: 8}}},
		func(*shufflepb.FetchChunk) error { return stop })
	if err != stop {
		t.Fatalf("got %v, want the callback's error as is", err)
	}
}

func TestFetchCorrupt(t *testing.T) {
	flip := func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b }
	truncate := func(b []byte) []byte { return b[:len(b)-5] }
	tests := []struct {
		name string
		kind shufflepb.OutputKind
		file func(l shuffle.Layout, out *shufflepb.MapOutput) string
		edit func([]byte) []byte
	}{
		{"sorted data flipped", shufflepb.OutputKind_OUTPUT_KIND_SORTED, func(l shuffle.Layout, o *shufflepb.MapOutput) string {
			return l.DataPath("app", o.Shuffle, o.Map, o.Attempt)
		}, flip},
		{"sorted data truncated", shufflepb.OutputKind_OUTPUT_KIND_SORTED, func(l shuffle.Layout, o *shufflepb.MapOutput) string {
			return l.DataPath("app", o.Shuffle, o.Map, o.Attempt)
		}, truncate},
		{"index flipped", shufflepb.OutputKind_OUTPUT_KIND_SORTED, func(l shuffle.Layout, o *shufflepb.MapOutput) string {
			return l.IndexPath("app", o.Shuffle, o.Map, o.Attempt)
		}, flip},
		{"index truncated", shufflepb.OutputKind_OUTPUT_KIND_SORTED, func(l shuffle.Layout, o *shufflepb.MapOutput) string {
			return l.IndexPath("app", o.Shuffle, o.Map, o.Attempt)
		}, truncate},
		{"hash flipped", shufflepb.OutputKind_OUTPUT_KIND_HASH, func(l shuffle.Layout, o *shufflepb.MapOutput) string {
			return l.HashPath("app", o.Shuffle, o.Map, o.Attempt, 1)
		}, flip},
		{"hash truncated", shufflepb.OutputKind_OUTPUT_KIND_HASH, func(l shuffle.Layout, o *shufflepb.MapOutput) string {
			return l.HashPath("app", o.Shuffle, o.Map, o.Attempt, 1)
		}, truncate},
	}
	for _, chunk := range []int{100, DefaultChunkSize} {
		for _, tc := range tests {
			t.Run(fmt.Sprintf("%s/chunk=%d", tc.name, chunk), func(t *testing.T) {
				s, c := newTestServer(t, func(o *Options) { o.ChunkSize = chunk })
				nodetest.Register(t, c, "app")
				blocks := [][]fixtureRecord{
					{{"a", "1"}},
					{{"b", strings.Repeat("x", 500)}, {"c", "y"}, {"d", "zz"}, {"e", "w"}},
					{{"f", "3"}},
				}
				write := writeSortedOutput
				if tc.kind == shufflepb.OutputKind_OUTPUT_KIND_HASH {
					write = writeHashOutput
				}
				bad, _ := write(t, s.Layout(), "app", 0, 0, 0, blocks)
				good, goodBlocks := write(t, s.Layout(), "app", 0, 1, 0, blocks)
				mustCommit(t, c, "app", bad)
				mustCommit(t, c, "app", good)
				nodetest.CorruptFile(t, tc.file(s.Layout(), bad), tc.edit)

				_, err := fetchBlocks(t, c, "app", 0, chunk, &shufflepb.BlockRange{Map: 0, ReduceEnd: 3})
				if !errors.Is(err, shuffle.ErrCorrupt) {
					t.Fatalf("fetch of corrupt output: got %v, want shuffle.ErrCorrupt", err)
				}
				if !strings.Contains(err.Error(), "map 0") {
					t.Errorf("error %q does not name the map output", err)
				}
				got, err := fetchBlocks(t, c, "app", 0, chunk, &shufflepb.BlockRange{Map: 1, ReduceEnd: 3})
				if err != nil {
					t.Fatalf("fetch of a good output after a corrupt one: %v", err)
				}
				for r, b := range goodBlocks {
					if !bytes.Equal(got[blockID{1, uint32(r)}], b) {
						t.Fatalf("block %d differs", r)
					}
				}
				if s.Metrics().CorruptReads != 1 {
					t.Errorf("CorruptReads = %d", s.Metrics().CorruptReads)
				}
			})
		}
	}
}

// TestFetchNeverSendsCorruptFrames flips a byte in the last block: the
// blocks before it arrive intact, and nothing of the corrupt frame does.
func TestFetchNeverSendsCorruptFrames(t *testing.T) {
	s, c := newTestServer(t, func(o *Options) { o.ChunkSize = 1 })
	nodetest.Register(t, c, "app")
	blocks := genFixtureBlocks(11, 6)
	blocks[5] = []fixtureRecord{{"a", "b"}, {"c", "d"}, {"e", "f"}, {"g", "h"}}
	out, enc := writeSortedOutput(t, s.Layout(), "app", 0, 0, 0, blocks)
	mustCommit(t, c, "app", out)
	// Damage the second frame of block 5: its first frame may be sent.
	nodetest.CorruptFile(t, s.Layout().DataPath("app", 0, 0, 0), func(b []byte) []byte { b[len(b)-1] ^= 1; return b })
	var data []byte
	err := c.Fetch(context.Background(), &shufflepb.FetchRequest{App: "app", Blocks: []*shufflepb.BlockRange{{ReduceEnd: 6}}},
		func(ch *shufflepb.FetchChunk) error {
			if ch.Reduce == 5 {
				data = append(data, ch.Data...)
			}
			return shuffle.VerifyFrames(ch.Data)
		})
	if !errors.Is(err, shuffle.ErrCorrupt) {
		t.Fatalf("got %v, want shuffle.ErrCorrupt", err)
	}
	if f, _, _ := shuffle.NextFrame(enc[5]); !bytes.Equal(data, f) {
		t.Fatalf("got %d bytes of block 5, want its first, intact frame only", len(data))
	}
}

func TestCommitIdempotentReuseReplace(t *testing.T) {
	s, c := newTestServer(t)
	nodetest.Register(t, c, "app")
	l := s.Layout()
	blocks := genFixtureBlocks(5, 4)

	a0, enc0 := writeSortedOutput(t, l, "app", 0, 0, 0, blocks)
	a0.Epoch = 1
	if got := mustCommit(t, c, "app", a0); got.Attempt != 0 {
		t.Fatalf("committed attempt %d", got.Attempt)
	}
	// Same attempt again: an idempotent retry.
	if got := mustCommit(t, c, "app", a0); got.Attempt != 0 || got.Epoch != 1 {
		t.Fatalf("retry returned %v", got)
	}
	// Same attempt with other lengths: refused.
	bad := cloneOutput(a0)
	bad.Lengths[0]++
	if _, err := c.CommitMapOutput(context.Background(), "app", bad); !errors.Is(err, shuffle.ErrInvalidArgument) {
		t.Fatalf("conflicting retry: %v", err)
	}

	// Another attempt, same epoch: the committed one is reused; through
	// gRPC, reused is reported.
	a1, _ := writeHashOutput(t, l, "app", 0, 0, 1, blocks)
	a1.Epoch = 1
	resp, err := s.CommitMapOutput(context.Background(), &shufflepb.CommitRequest{App: "app", Output: a1})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Reused || resp.Committed.Attempt != 0 {
		t.Fatalf("got %v, want attempt 0 reused", resp)
	}
	for _, f := range outputFiles(l, "app", a1) { // the node leaves them to the writer
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("the node removed the loser's file: %v", err)
		}
	}
	got, err := fetchBlocks(t, c, "app", 0, DefaultChunkSize, &shufflepb.BlockRange{ReduceEnd: 4})
	if err != nil || !bytes.Equal(got[blockID{0, 2}], enc0[2]) {
		t.Fatalf("after reuse: %v", err)
	}

	// A higher epoch replaces it, and the old files go.
	a2, enc2 := writeHashOutput(t, l, "app", 0, 0, 2, genFixtureBlocks(6, 4))
	a2.Epoch = 2
	if got := mustCommit(t, s.Committer(), "app", a2); got.Attempt != 2 {
		t.Fatalf("replace returned attempt %d", got.Attempt)
	}
	for _, f := range outputFiles(l, "app", a0) {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("old attempt's file %s: %v", f, err)
		}
	}
	got, err = fetchBlocks(t, c, "app", 0, DefaultChunkSize, &shufflepb.BlockRange{ReduceEnd: 4})
	if err != nil {
		t.Fatal(err)
	}
	for r, b := range enc2 {
		if !bytes.Equal(got[blockID{0, uint32(r)}], b) {
			t.Fatalf("block %d is not the replacement's", r)
		}
	}
	m := s.Metrics()
	if m.MapOutputs != 1 || m.CommitsReused != 1 || m.CommitsReplaced != 1 || m.Commits != 2 {
		t.Errorf("metrics %+v", m)
	}
	if want := outputSize(a2); m.BytesOnDisk != want {
		t.Errorf("BytesOnDisk %d, want %d", m.BytesOnDisk, want)
	}
}

func TestCommitChecksFiles(t *testing.T) {
	s, c := newTestServer(t)
	nodetest.Register(t, c, "app")
	l := s.Layout()
	ctx := context.Background()

	out, _ := writeSortedOutput(t, l, "app", 0, 0, 0, genFixtureBlocks(1, 5))
	wrong := cloneOutput(out)
	wrong.Lengths[0]++
	wrong.Lengths[1]--
	_, err := c.CommitMapOutput(ctx, "app", wrong)
	if !errors.Is(err, shuffle.ErrInvalidArgument) || !strings.Contains(err.Error(), ".index") {
		t.Fatalf("lengths that disagree with the index: %v", err)
	}
	nodetest.CorruptFile(t, l.IndexPath("app", 0, 0, 0), func(b []byte) []byte { b[0] = 'X'; return b })
	if _, err := c.CommitMapOutput(ctx, "app", out); !errors.Is(err, shuffle.ErrCorrupt) {
		t.Fatalf("corrupt index: %v", err)
	}
	h, _ := writeHashOutput(t, l, "app", 0, 1, 0, genFixtureBlocks(2, 5))
	h.Lengths[3]++
	_, err = c.CommitMapOutput(ctx, "app", h)
	if !errors.Is(err, shuffle.ErrInvalidArgument) || !strings.Contains(err.Error(), "r-3.data") {
		t.Fatalf("hash file of the wrong size: %v", err)
	}
	if n := s.Metrics().MapOutputs; n != 0 {
		t.Fatalf("%d outputs committed", n)
	}
}

func listTree(t testing.TB, dirs ...string) []string {
	t.Helper()
	var files []string
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() && !strings.Contains(p, catalogDirName) {
				files = append(files, p)
			}
			return nil
		})
	}
	return files
}

func TestRemoveShuffleAndApp(t *testing.T) {
	s, c := newTestServer(t)
	ctx := context.Background()
	l := s.Layout()
	nodetest.Register(t, c, "app")
	nodetest.Register(t, c, "other")
	for sh := uint32(0); sh < 2; sh++ {
		for m := uint32(0); m < 4; m++ {
			out, _ := writeSortedOutput(t, l, "app", sh, m, 0, genFixtureBlocks(uint64(m), 3))
			mustCommit(t, c, "app", out)
		}
	}
	out, _ := writeHashOutput(t, l, "other", 0, 0, 0, genFixtureBlocks(9, 3))
	mustCommit(t, c, "other", out)

	if err := c.RemoveShuffle(ctx, "app", 0); err != nil {
		t.Fatal(err)
	}
	for _, d := range l.ShuffleDirs("app", 0) {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s still there: %v", d, err)
		}
	}
	if _, err := fetchBlocks(t, c, "app", 0, DefaultChunkSize, &shufflepb.BlockRange{ReduceEnd: 1}); !errors.Is(err, shuffle.ErrNoMapOutput) {
		t.Fatalf("fetch of a removed shuffle: %v", err)
	}
	if _, err := fetchBlocks(t, c, "app", 1, DefaultChunkSize, &shufflepb.BlockRange{Map: 3, ReduceEnd: 3}); err != nil {
		t.Fatalf("fetch of the shuffle left: %v", err)
	}
	if err := c.RemoveApp(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if files := listTree(t, l.AppDirs("app")...); len(files) != 0 {
		t.Fatalf("files left: %v", files)
	}
	if err := c.Heartbeat(ctx, "app"); !errors.Is(err, shuffle.ErrUnknownApp) {
		t.Fatalf("heartbeat of a removed app: %v", err)
	}
	if files := listTree(t, l.AppDirs("other")...); len(files) != 3 {
		t.Fatalf("other app's files: %v", files)
	}
	m := s.Metrics()
	if m.Apps != 1 || m.MapOutputs != 1 || m.BytesOnDisk != outputSize(out) {
		t.Fatalf("metrics %+v", m)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Apps != 1 || st.MapOutputs != 1 || st.Pid != int64(os.Getpid()) || st.PeakRssBytes == 0 || st.Addr != c.Addr() || len(st.Dirs) != 2 {
		t.Fatalf("status %v", st)
	}
}

func TestAppTTLExpiry(t *testing.T) {
	s, c := newTestServer(t, func(o *Options) { o.JanitorInterval = 5 * time.Millisecond })
	ctx := context.Background()
	if err := c.RegisterApp(ctx, "short", 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := c.RegisterApp(ctx, "long", time.Hour); err != nil {
		t.Fatal(err)
	}
	out, _ := writeSortedOutput(t, s.Layout(), "short", 0, 0, 0, genFixtureBlocks(1, 2))
	mustCommit(t, c, "short", out)

	// Poll with Status: a heartbeat would keep the app alive.
	poll.WaitFor(t, 10*time.Second, "app short to expire and its files to go", func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.Apps == 1 && len(listTree(t, s.Layout().AppDirs("short")...)) == 0
	})
	if err := c.Heartbeat(ctx, "short"); !errors.Is(err, shuffle.ErrUnknownApp) {
		t.Fatalf("heartbeat of an expired app: %v", err)
	}
	if err := c.Heartbeat(ctx, "long"); err != nil {
		t.Fatalf("app with a long TTL: %v", err)
	}
	if m := s.Metrics(); m.AppsExpired != 1 || m.MapOutputs != 0 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestStartupSweep(t *testing.T) {
	opts := testNodeOptions(t)
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Committer()
	l := s.Layout()
	if err := s.registerApp("app", 0, testToken(), true); err != nil {
		t.Fatal(err)
	}
	kept, keptBlocks := writeSortedOutput(t, l, "app", 0, 0, 0, genFixtureBlocks(1, 3))
	mustCommit(t, c, "app", kept)
	keptHash, _ := writeHashOutput(t, l, "app", 0, 1, 0, genFixtureBlocks(2, 3))
	mustCommit(t, c, "app", keptHash)
	damaged, _ := writeSortedOutput(t, l, "app", 0, 2, 0, genFixtureBlocks(3, 3))
	mustCommit(t, c, "app", damaged)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// While the node is down: a writer's temporary file, a final file never
	// committed, a stale attempt, a truncated committed file, and the
	// directory of an application the node never knew.
	strays := []string{
		l.DataPath("app", 0, 0, 0) + shuffle.TempSuffix + "123",
		l.DataPath("app", 0, 7, 0),
		l.IndexPath("app", 0, 7, 0),
		l.HashPath("app", 0, 1, 5, 0),
		l.DataPath("app", 3, 0, 0),
		l.HashPath("ghost", 0, 0, 0, 0),
	}
	for _, f := range strays {
		writeFile(t, f, []byte("stray"))
	}
	nodetest.CorruptFile(t, l.DataPath("app", 0, 2, 0), func(b []byte) []byte { return b[:len(b)-1] })
	unrelated := filepath.Join(opts.Dirs[0], "notes", "readme.txt")
	writeFile(t, unrelated, []byte("not ours"))

	s2, cl := startTestServer(t, opts)
	for _, f := range append(strays, outputFiles(l, "app", damaged)...) {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived the sweep: %v", f, err)
		}
	}
	for _, f := range append(outputFiles(l, "app", kept), append(outputFiles(l, "app", keptHash), unrelated)...) {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("committed file %s was swept: %v", f, err)
		}
	}
	if m := s2.Metrics(); m.Apps != 1 || m.MapOutputs != 2 {
		t.Fatalf("after restart: %+v", m)
	}
	got, err := fetchBlocks(t, cl, "app", 0, DefaultChunkSize, &shufflepb.BlockRange{Map: 0, ReduceEnd: 3}, &shufflepb.BlockRange{Map: 1, ReduceEnd: 3})
	if err != nil {
		t.Fatal(err)
	}
	for r, b := range keptBlocks {
		if !bytes.Equal(got[blockID{0, uint32(r)}], b) {
			t.Fatalf("block %d differs after restart", r)
		}
	}
	if _, err := fetchBlocks(t, cl, "app", 0, DefaultChunkSize, &shufflepb.BlockRange{Map: 2, ReduceEnd: 1}); !errors.Is(err, shuffle.ErrNoMapOutput) {
		t.Fatalf("damaged output: %v", err)
	}
}

func TestReopenWithOtherDirs(t *testing.T) {
	opts := testNodeOptions(t)
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	opts.Dirs = append(opts.Dirs, filepath.Join(filepath.Dir(opts.Dirs[0]), "d2"))
	if _, err := Open(opts); !errors.Is(err, shuffle.ErrInvalidArgument) || !strings.Contains(err.Error(), "same --dir") {
		t.Fatalf("reopen with another directory list: %v", err)
	}
}

func TestClosed(t *testing.T) {
	s, err := Open(testNodeOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := s.registerApp("app", 0, testToken(), true); !errors.Is(err, shuffle.ErrClosed) {
		t.Fatalf("register after Close: %v", err)
	}
	if _, err := s.Committer().CommitMapOutput(context.Background(), "app", &shufflepb.MapOutput{Kind: shufflepb.OutputKind_OUTPUT_KIND_HASH, Lengths: []uint64{0}}); !errors.Is(err, shuffle.ErrClosed) {
		t.Fatalf("commit after Close: %v", err)
	}
	ctx := context.Background()
	if _, err := s.putBlock(ctx, func() (*shufflepb.PutBlockChunk, error) { panic("received after Close") }); !errors.Is(err, shuffle.ErrClosed) {
		t.Fatalf("put block after Close: %v", err)
	}
	id := &shufflepb.BlockId{App: "app"}
	if err := s.getBlock(ctx, &shufflepb.GetBlockRequest{Id: id}, func(*shufflepb.GetBlockChunk) error { panic("sent after Close") }); !errors.Is(err, shuffle.ErrClosed) {
		t.Fatalf("get block after Close: %v", err)
	}
	if _, err := s.removeBlocks("app", 1); !errors.Is(err, shuffle.ErrClosed) {
		t.Fatalf("remove blocks after Close: %v", err)
	}
	if _, _, err := s.blocks.Put(ctx, blockstore.BlockID{App: "app"}, blockstore.DiskOnly, 0, nil); !errors.Is(err, blockstore.ErrClosed) {
		t.Fatalf("the block store is open after Close: %v", err)
	}
	// Serve after Close is a clean stop: TestServeAfterStop.
}

func TestOptionsValidate(t *testing.T) {
	o := Options{Dirs: []string{"a", "a", ""}, ChunkSize: maxChunkSize + 1, AppTTL: -1, MaxBlocksPerRequest: -1,
		CacheBytes: -1, MaxBlockBytes: 2 << 30, BlockBytesInFlight: 1 << 30,
		Name: "bad name", MaxBinaryBytes: -1, MaxBinaries: -1, Workers: MaxWorkers + 1}
	o.EnsureDefaults()
	err := o.Validate()
	for _, want := range []string{"listed twice", "Dirs[2] is empty", "ChunkSize", "AppTTL", "MaxBlocksPerRequest", "CacheBytes -1", "BlockBytesInFlight 1073741824 is below MaxBlockBytes 2147483648",
		`Name "bad name"`, "MaxBinaryBytes -1", "MaxBinaries -1", "Workers 65"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	if !errors.Is(err, shuffle.ErrInvalidArgument) {
		t.Errorf("Validate() = %v, want shuffle.ErrInvalidArgument", err)
	}
	o = Options{Dirs: []string{"x"}}
	o.EnsureDefaults()
	if err := o.Validate(); err != nil || o.JanitorInterval != DefaultAppTTL/4 || o.ChunkSize != DefaultChunkSize ||
		o.CacheBytes != 0 || o.MaxBlockBytes != DefaultMaxBlockBytes || o.BlockBytesInFlight != DefaultBlockBytesInFlight ||
		o.Workers != DefaultWorkers || o.MaxBinaries != DefaultMaxBinaries || o.MaxBinaryBytes != DefaultMaxBinaryBytes || o.Name == "" {
		t.Fatalf("defaults: %v %+v", err, o)
	}
	o = Options{Dirs: []string{"x"}, MaxBlockBytes: 3 << 30}
	o.EnsureDefaults()
	if err := o.Validate(); err != nil || o.BlockBytesInFlight != 3<<30 {
		t.Fatalf("defaults with a large MaxBlockBytes: %v %+v", err, o)
	}
}

func TestRecoverInterceptor(t *testing.T) {
	s, _ := newTestServer(t)
	_, err := s.recoverUnary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x/Boom"},
		func(context.Context, any) (any, error) { panic("boom") })
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("unary panic: %v", err)
	}
	err = s.recoverStream(nil, nil, &grpc.StreamServerInfo{FullMethod: "/x/Boom"},
		func(any, grpc.ServerStream) error { panic("boom") })
	if status.Code(err) != codes.Internal {
		t.Fatalf("stream panic: %v", err)
	}
}

// TestConcurrentCommitsAndFetches races attempts of one map task with
// rising epochs against fetches: every fetch succeeds with whole blocks of
// one attempt, and the highest epoch wins.
func TestConcurrentCommitsAndFetches(t *testing.T) {
	s, c := newTestServer(t, func(o *Options) { o.ChunkSize = 512 })
	nodetest.Register(t, c, "app")
	const attempts, R = 8, 6
	outs := make([]*shufflepb.MapOutput, attempts)
	blocks := make([][][]byte, attempts)
	valid := map[string]bool{}
	for a := range attempts {
		write := writeSortedOutput
		if a%2 == 1 {
			write = writeHashOutput
		}
		outs[a], blocks[a] = write(t, s.Layout(), "app", 0, 0, uint32(a), genFixtureBlocks(uint64(100+a), R))
		outs[a].Epoch = uint64(a)
		for _, b := range blocks[a] {
			valid[string(b)] = true
		}
	}
	mustCommit(t, c, "app", outs[0])

	stop := make(chan struct{})
	fetched := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				fetched <- nil
				return
			default:
			}
			got, err := fetchBlocks(t, c, "app", 0, 512, &shufflepb.BlockRange{ReduceEnd: R})
			if err != nil {
				fetched <- err
				return
			}
			for id, b := range got {
				if !valid[string(b)] {
					fetched <- fmt.Errorf("block %v is not whole from any attempt", id)
					return
				}
			}
		}
	}()
	errs := make(chan error, attempts)
	for a := 1; a < attempts; a++ {
		go func() {
			_, err := c.CommitMapOutput(context.Background(), "app", outs[a])
			errs <- err
		}()
	}
	for a := 1; a < attempts; a++ {
		if err := <-errs; err != nil {
			t.Errorf("commit: %v", err)
		}
	}
	close(stop)
	if err := <-fetched; err != nil {
		t.Fatalf("fetch during commits: %v", err)
	}
	got, err := fetchBlocks(t, c, "app", 0, 512, &shufflepb.BlockRange{ReduceEnd: R})
	if err != nil {
		t.Fatal(err)
	}
	for r, b := range blocks[attempts-1] {
		if !bytes.Equal(got[blockID{0, uint32(r)}], b) {
			t.Fatalf("block %d is not from the highest epoch", r)
		}
	}
	if m := s.Metrics(); m.MapOutputs != 1 || m.BytesOnDisk != outputSize(outs[attempts-1]) {
		t.Fatalf("metrics %+v", m)
	}
}

// TestServeAfterStop: a stop that wins the race with Serve's start is a
// clean stop, as one that comes later is: Serve closes the listener and
// returns nil.
func TestServeAfterStop(t *testing.T) {
	for _, stop := range []string{"close", "shutdown"} {
		s, err := Open(Options{Dirs: []string{t.TempDir()}})
		if err != nil {
			t.Fatal(err)
		}
		if stop == "close" {
			s.Close()
		} else {
			s.Shutdown(context.Background())
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Serve(lis); err != nil {
			t.Errorf("%s then Serve: %v", stop, err)
		}
		if _, err := lis.Accept(); err == nil {
			t.Errorf("%s then Serve: listener left open", stop)
		}
		s.Close()
	}
}
