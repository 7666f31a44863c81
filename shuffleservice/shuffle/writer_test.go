package shuffle

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"
	"google.golang.org/protobuf/proto"

	"shoal/shuffleservice/shufflepb"
)

// memCommitter is an in-memory Committer: it keeps the first output
// committed for each (shuffle, map) and returns it to later attempts, as
// the node does for an equal epoch.
type memCommitter struct {
	mu      sync.Mutex
	outputs map[[2]uint32]*shufflepb.MapOutput
	calls   int
	err     error // returned by every call, if set
}

func (c *memCommitter) CommitMapOutput(ctx context.Context, app string, out *shufflepb.MapOutput) (*shufflepb.MapOutput, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.err != nil {
		return nil, c.err
	}
	if c.outputs == nil {
		c.outputs = make(map[[2]uint32]*shufflepb.MapOutput)
	}
	k := [2]uint32{out.Shuffle, out.Map}
	if prev, ok := c.outputs[k]; ok {
		return proto.Clone(prev).(*shufflepb.MapOutput), nil
	}
	c.outputs[k] = proto.Clone(out).(*shufflepb.MapOutput)
	return proto.Clone(out).(*shufflepb.MapOutput), nil
}

// kv is one record read back.
type kv struct{ key, value string }

// readMapOutput reads a committed map output back from disk, without the
// node: per reduce partition, its records in file order. It checks the
// index against the committed lengths.
func readMapOutput(t testing.TB, layout Layout, app string, out *shufflepb.MapOutput) [][]kv {
	t.Helper()
	r := len(out.Lengths)
	parts := make([][]kv, r)
	var dec frameDecoder
	defer dec.close()
	readBlock := func(block []byte) []kv {
		var recs []kv
		for len(block) > 0 {
			raw, rest, err := dec.decode(block)
			if err != nil {
				t.Fatalf("decode frame: %v", err)
			}
			block = rest
			if len(raw) == 0 {
				t.Fatalf("empty frame")
			}
			for len(raw) > 0 {
				k, v, rest, err := NextRecord(raw)
				if err != nil {
					t.Fatalf("decode record: %v", err)
				}
				recs = append(recs, kv{string(k), string(v)})
				raw = rest
			}
		}
		return recs
	}
	switch out.Kind {
	case shufflepb.OutputKind_OUTPUT_KIND_SORTED:
		ib, err := os.ReadFile(layout.IndexPath(app, out.Shuffle, out.Map, out.Attempt))
		if err != nil {
			t.Fatal(err)
		}
		offsets, err := DecodeIndex(ib)
		if err != nil {
			t.Fatal(err)
		}
		if want := OffsetsOf(out.Lengths); !slices.Equal(offsets, want) {
			t.Fatalf("index offsets %v, committed lengths give %v", offsets, want)
		}
		data, err := os.ReadFile(layout.DataPath(app, out.Shuffle, out.Map, out.Attempt))
		if err != nil {
			t.Fatal(err)
		}
		if uint64(len(data)) != offsets[r] {
			t.Fatalf("data file of %d bytes, index ends at %d", len(data), offsets[r])
		}
		for p := range r {
			parts[p] = readBlock(data[offsets[p]:offsets[p+1]])
		}
	case shufflepb.OutputKind_OUTPUT_KIND_HASH:
		for p := range r {
			data, err := os.ReadFile(layout.HashPath(app, out.Shuffle, out.Map, out.Attempt, p))
			if err != nil {
				t.Fatal(err)
			}
			if uint64(len(data)) != out.Lengths[p] {
				t.Fatalf("hash file %d of %d bytes, committed length %d", p, len(data), out.Lengths[p])
			}
			parts[p] = readBlock(data)
		}
	default:
		t.Fatalf("output kind %v", out.Kind)
	}
	return parts
}

// listFiles returns the names of the regular files under dirs.
func listFiles(t testing.TB, dirs ...string) []string {
	t.Helper()
	var names []string
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.IsDir() {
				names = append(names, filepath.Base(path))
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	return names
}

func countTemps(names []string) int {
	n := 0
	for _, s := range names {
		if strings.Contains(s, TempSuffix) {
			n++
		}
	}
	return n
}

// testRecord is a generated record with its partition.
type testRecord struct {
	p          int
	key, value []byte
}

// genRecords makes n records for r partitions: keys from a small alphabet
// (many duplicates, many equal 8-byte prefixes of different lengths),
// values of 0 to 300 bytes (one- and two-byte length varints).
func genRecords(seed uint64, n, r int) []testRecord {
	rng := rand.New(rand.NewPCG(seed, 7))
	alphabet := []byte{'a', 'b', 0, 0xff}
	recs := make([]testRecord, n)
	for i := range recs {
		k := make([]byte, rng.IntN(17))
		for j := range k {
			k[j] = alphabet[rng.IntN(len(alphabet))]
		}
		vl := rng.IntN(60)
		if rng.IntN(10) == 0 {
			vl = rng.IntN(300)
		}
		v := make([]byte, vl)
		for j := range v {
			v[j] = byte('A' + rng.IntN(4))
		}
		recs[i] = testRecord{p: int(xxhash.Sum64(k) % uint64(r)), key: k, value: v}
	}
	return recs
}

func testOptions(dir string, mode Mode, codec Codec, r int) WriterOptions {
	return WriterOptions{
		Layout:     Layout{Dirs: []string{filepath.Join(dir, "d0"), filepath.Join(dir, "d1")}},
		App:        "app-1",
		Shuffle:    3,
		Map:        5,
		Attempt:    0,
		Epoch:      1,
		Partitions: r,
		Mode:       mode,
		Codec:      codec,
	}
}

// writeAll writes recs and commits them.
func writeAll(t testing.TB, opts WriterOptions, recs []testRecord, c Committer) (*shufflepb.MapOutput, WriterStats) {
	t.Helper()
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range recs {
		if err := w.Write(rec.p, rec.key, rec.value); err != nil {
			t.Fatal(err)
		}
	}
	out, err := w.Commit(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return out, w.Stats()
}

func TestWriterRoundTrip(t *testing.T) {
	const n = 4000
	for _, mode := range []Mode{ModeSort, ModeBypass, ModeHash} {
		for _, codec := range []Codec{CodecNone, CodecS2, CodecZstd} {
			for _, r := range []int{1, 7, 1000} {
				for _, limit := range []int{0, 4 << 10} {
					name := fmt.Sprintf("mode=%v,codec=%v,reduces=%d,limit=%d", mode, codec, r, limit)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						dir := t.TempDir()
						opts := testOptions(dir, mode, codec, r)
						opts.MemoryLimit = limit
						if limit != 0 {
							opts.FrameSize = 1 << 10 // several frames per block
						}
						recs := genRecords(uint64(r*7+limit), n, r)
						var c memCommitter
						out, st := writeAll(t, opts, recs, &c)
						checkOutput(t, opts, out, st, recs)
					})
				}
			}
		}
	}
}

// checkOutput checks a committed output against the records written.
func checkOutput(t *testing.T, opts WriterOptions, out *shufflepb.MapOutput, st WriterStats, recs []testRecord) {
	t.Helper()
	r := opts.Partitions
	if out.Shuffle != opts.Shuffle || out.Map != opts.Map || out.Attempt != opts.Attempt || out.Epoch != opts.Epoch || len(out.Lengths) != r {
		t.Fatalf("committed %v", out)
	}
	wantKind := shufflepb.OutputKind_OUTPUT_KIND_SORTED
	wantFiles := 2
	if opts.Mode == ModeHash {
		wantKind, wantFiles = shufflepb.OutputKind_OUTPUT_KIND_HASH, r
	}
	if out.Kind != wantKind {
		t.Fatalf("kind %v, want %v", out.Kind, wantKind)
	}
	got := readMapOutput(t, opts.Layout, opts.App, out)
	want := make([][]kv, r)
	for _, rec := range recs {
		want[rec.p] = append(want[rec.p], kv{string(rec.key), string(rec.value)})
	}
	for p := range r {
		if opts.Mode == ModeSort {
			for i := 1; i < len(got[p]); i++ {
				if got[p][i-1].key > got[p][i].key {
					t.Fatalf("partition %d not sorted at %d: %q > %q", p, i, got[p][i-1].key, got[p][i].key)
				}
			}
		}
		g, w := slices.Clone(got[p]), want[p]
		less := func(a, b kv) int { return strings.Compare(a.key+"\x00"+a.value, b.key+"\x00"+b.value) }
		slices.SortFunc(g, less)
		slices.SortFunc(w, less)
		if !slices.Equal(g, w) {
			t.Fatalf("partition %d: got %d records, want %d (or they differ)", p, len(g), len(w))
		}
	}
	names := listFiles(t, opts.Layout.Dirs...)
	if countTemps(names) != 0 || len(names) != wantFiles {
		t.Fatalf("files on disk %v, want %d final files and no temporary one", names, wantFiles)
	}
	var onDisk int64
	for _, d := range opts.Layout.Dirs {
		filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				fi, _ := e.Info()
				onDisk += fi.Size()
			}
			return nil
		})
	}
	limit := opts.MemoryLimit
	if limit == 0 {
		limit = DefaultMemoryLimit
	}
	switch {
	case st.Records != int64(len(recs)):
		t.Errorf("stats: %d records, want %d", st.Records, len(recs))
	case st.FilesCreated != wantFiles:
		t.Errorf("stats: %d files, want %d", st.FilesCreated, wantFiles)
	case st.BytesWritten != onDisk:
		t.Errorf("stats: %d bytes written, %d on disk", st.BytesWritten, onDisk)
	case st.PeakMemory <= 0 || st.PeakMemory > int64(limit):
		t.Errorf("stats: peak memory %d, limit %d", st.PeakMemory, limit)
	case opts.Mode == ModeSort && limit < 64<<10 && (st.Spills == 0 || st.SpillBytes == 0):
		t.Errorf("stats: %d spills of %d bytes under a %d-byte limit", st.Spills, st.SpillBytes, limit)
	case opts.Mode != ModeSort && st.Spills != 0:
		t.Errorf("stats: %d spills in mode %v", st.Spills, opts.Mode)
	}
}

// sumCombine adds little-endian uint64 values.
func sumCombine(dst, a, b []byte) []byte {
	return binary.LittleEndian.AppendUint64(dst, binary.LittleEndian.Uint64(a)+binary.LittleEndian.Uint64(b))
}

func TestWriterCombine(t *testing.T) {
	for _, limit := range []int{0, 4 << 10} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			const r, n, keys = 7, 30000, 700
			rng := rand.New(rand.NewPCG(1, 2))
			opts := testOptions(t.TempDir(), ModeSort, CodecS2, r)
			opts.MemoryLimit = limit
			opts.Combine = sumCombine
			w, err := NewWriter(opts)
			if err != nil {
				t.Fatal(err)
			}
			want := make(map[string]uint64)
			for range n {
				k := fmt.Appendf(nil, "key-%d", rng.IntN(keys))
				v := uint64(rng.IntN(1000))
				want[string(k)] += v
				if err := w.Write(int(xxhash.Sum64(k)%r), k, binary.LittleEndian.AppendUint64(nil, v)); err != nil {
					t.Fatal(err)
				}
			}
			out, err := w.Commit(context.Background(), &memCommitter{})
			if err != nil {
				t.Fatal(err)
			}
			if st := w.Stats(); limit != 0 && st.Spills < 2 {
				t.Fatalf("%d spills, want several", st.Spills)
			}
			got := make(map[string]uint64)
			for p, recs := range readMapOutput(t, opts.Layout, opts.App, out) {
				for i, rec := range recs {
					if i > 0 && recs[i-1].key >= rec.key {
						t.Fatalf("partition %d: key %q after %q", p, rec.key, recs[i-1].key)
					}
					if q := int(xxhash.Sum64String(rec.key) % r); q != p {
						t.Fatalf("key %q in partition %d, want %d", rec.key, p, q)
					}
					got[rec.key] = binary.LittleEndian.Uint64([]byte(rec.value))
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d keys, want %d", len(got), len(want))
			}
			for k, v := range want {
				if got[k] != v {
					t.Fatalf("key %q: sum %d, want %d", k, got[k], v)
				}
			}
		})
	}
}

func TestWriterOptionsValidate(t *testing.T) {
	opts := WriterOptions{App: "../x", Partitions: 0, Mode: ModeBypass, Combine: sumCombine}
	_, err := NewWriter(opts)
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("got %v, want ErrInvalidArgument", err)
	}
	for _, want := range []string{"application ID", "no local directories", "partitions 0", "combine needs mode sort"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
	opts = testOptions(t.TempDir(), ModeSort, CodecS2, 3)
	opts.MemoryLimit = 1 << 10
	w, err := NewWriter(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Discard()
	if err := w.Write(3, nil, nil); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("partition 3 of 3: got %v, want ErrOutOfRange", err)
	}
	if err := w.Write(0, nil, make([]byte, 2<<10)); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("record above the limit: got %v, want ErrInvalidArgument", err)
	}
	// The largest record that fits is accepted, even after small ones.
	for range 10 {
		if err := w.Write(1, []byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	big := make([]byte, opts.MemoryLimit-sortEntrySize-recordSize([]byte("k"), nil)-1)
	if err := w.Write(2, []byte("k"), big); err != nil {
		t.Fatalf("record of the limit: %v", err)
	}
	out, err := w.Commit(context.Background(), &memCommitter{})
	if err != nil {
		t.Fatal(err)
	}
	parts := readMapOutput(t, opts.Layout, opts.App, out)
	if len(parts[1]) != 10 || len(parts[2]) != 1 || len(parts[2][0].value) != len(big) {
		t.Fatalf("read back %d and %d records", len(parts[1]), len(parts[2]))
	}
	if w.Stats().PeakMemory > int64(opts.MemoryLimit) {
		t.Fatalf("peak memory %d above %d", w.Stats().PeakMemory, opts.MemoryLimit)
	}
}

func TestWriterDiscard(t *testing.T) {
	for _, mode := range []Mode{ModeSort, ModeBypass, ModeHash} {
		t.Run("mode="+mode.String(), func(t *testing.T) {
			recs := genRecords(3, 2000, 7)

			// Discard after partial writes (with spills and partition files).
			opts := testOptions(t.TempDir(), mode, CodecS2, 7)
			opts.MemoryLimit = 2 << 10
			w, err := NewWriter(opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				if err := w.Write(rec.p, rec.key, rec.value); err != nil {
					t.Fatal(err)
				}
			}
			if names := listFiles(t, opts.Layout.Dirs...); len(names) == 0 {
				t.Fatalf("no file written before Discard")
			}
			if err := w.Discard(); err != nil {
				t.Fatal(err)
			}
			if names := listFiles(t, opts.Layout.Dirs...); len(names) != 0 {
				t.Fatalf("files left after Discard: %v", names)
			}
			if err := w.Discard(); err != nil {
				t.Fatalf("second Discard: %v", err)
			}
			if err := w.Write(0, nil, nil); !errors.Is(err, ErrClosed) {
				t.Fatalf("Write after Discard: %v, want ErrClosed", err)
			}
			if _, err := w.Commit(context.Background(), &memCommitter{}); !errors.Is(err, ErrClosed) {
				t.Fatalf("Commit after Discard: %v, want ErrClosed", err)
			}

			// A failed commit call leaves the final files (the outcome is
			// unknown) and no temporary file.
			opts = testOptions(t.TempDir(), mode, CodecS2, 7)
			opts.MemoryLimit = 2 << 10
			w, err = NewWriter(opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				w.Write(rec.p, rec.key, rec.value)
			}
			boom := errors.New("node unreachable")
			if _, err := w.Commit(context.Background(), &memCommitter{err: boom}); !errors.Is(err, boom) {
				t.Fatalf("Commit: %v, want %v", err, boom)
			}
			w.Discard()
			names := listFiles(t, opts.Layout.Dirs...)
			finals := 2
			if mode == ModeHash {
				finals = 7
			}
			if countTemps(names) != 0 || len(names) != finals {
				t.Fatalf("after a failed commit call: %v", names)
			}

			// A cancelled context fails before the call: nothing is left.
			opts = testOptions(t.TempDir(), mode, CodecS2, 7)
			w, err = NewWriter(opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				w.Write(rec.p, rec.key, rec.value)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			c := &memCommitter{}
			if _, err := w.Commit(ctx, c); !errors.Is(err, context.Canceled) || c.calls != 0 {
				t.Fatalf("Commit with a cancelled context: %v (%d calls)", err, c.calls)
			}
			w.Discard()
			if names := listFiles(t, opts.Layout.Dirs...); len(names) != 0 {
				t.Fatalf("files left after a failed Commit: %v", names)
			}

			// A second attempt reuses the first: its own files go, the
			// first attempt's stay, and Discard after Commit does nothing.
			opts = testOptions(t.TempDir(), mode, CodecS2, 7)
			c = &memCommitter{}
			first, _ := writeAll(t, opts, recs, c)
			before := listFiles(t, opts.Layout.Dirs...)
			opts.Attempt = 1
			w, err = NewWriter(opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs[:100] {
				w.Write(rec.p, rec.key, rec.value)
			}
			got, err := w.Commit(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, first) {
				t.Fatalf("second attempt committed %v, want the first %v", got, first)
			}
			if err := w.Discard(); err != nil {
				t.Fatal(err)
			}
			after := listFiles(t, opts.Layout.Dirs...)
			slices.Sort(before)
			slices.Sort(after)
			if !slices.Equal(before, after) {
				t.Fatalf("files %v after the reused attempt, want %v", after, before)
			}
			if n := len(readMapOutput(t, opts.Layout, opts.App, first)[recs[0].p]); n == 0 {
				t.Fatalf("first attempt unreadable")
			}
		})
	}
}

// nopCommitter accepts every output without allocating.
type nopCommitter struct{}

func (nopCommitter) CommitMapOutput(_ context.Context, _ string, out *shufflepb.MapOutput) (*shufflepb.MapOutput, error) {
	return out, nil
}

// TestWriterAllocs checks that the sort writer allocates nothing per
// record: its Write calls and Commit (spills and merge included) make at
// most one allocation per 1000 records.
func TestWriterAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	if testing.Short() {
		t.Skip("short")
	}
	const n = 100_000
	recs := benchRecords(n, 256)
	for _, limit := range []int{0, 4 << 20} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			dir := t.TempDir()
			var spills int
			measure := func(m uint32) uint64 {
				opts := testOptions(dir, ModeSort, CodecS2, 256)
				opts.MemoryLimit = limit
				opts.Map = m
				w, err := NewWriter(opts)
				if err != nil {
					t.Fatal(err)
				}
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for _, rec := range recs {
					if err := w.Write(rec.p, rec.key, rec.value); err != nil {
						t.Fatal(err)
					}
				}
				if _, err := w.Commit(context.Background(), nopCommitter{}); err != nil {
					t.Fatal(err)
				}
				runtime.ReadMemStats(&after)
				spills = w.Stats().Spills
				return after.Mallocs - before.Mallocs
			}
			measure(0) // warm up
			allocs := max(measure(1), measure(2), measure(3))
			t.Logf("%d allocations for %d records, %d spills", allocs, n, spills)
			if limit != 0 && spills < 2 {
				t.Errorf("%d spills, want several", spills)
			}
			if allocs > n/1000 {
				t.Errorf("%d allocations for %d records, want at most %d", allocs, n, n/1000)
			}
		})
	}
}
