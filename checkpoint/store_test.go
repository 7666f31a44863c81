package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/internal/miniotest"
	"shoal/internal/poll"
)

const testBucket = "ckpt"

// backends opens a fresh, empty store of each kind: memory, a local
// directory, and a prefix of its own in a bucket of one real MinIO server
// shared by the test's subtests.
func backends(t *testing.T) map[string]func(t *testing.T) Store {
	srv := miniotest.Start(t, testBucket)
	return map[string]func(t *testing.T) Store{
		"mem": func(t *testing.T) Store {
			st, err := Open(context.Background(), "mem://"+strings.ReplaceAll(t.Name(), "/", "-"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		"dir": func(t *testing.T) Store {
			st, err := Open(context.Background(), "file://"+t.TempDir(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		"s3": func(t *testing.T) Store {
			return openS3Test(t, srv, "s3://"+testBucket+"/"+strings.ReplaceAll(t.Name(), "/", "-"), Options{})
		},
	}
}

// openS3Test opens uri on srv with its root credentials and short
// timeouts.
func openS3Test(t *testing.T, srv *miniotest.Server, uri string, opts Options) Store {
	t.Helper()
	opts.Endpoint = srv.Endpoint()
	opts.AccessKey, opts.SecretKey = miniotest.AccessKey, miniotest.SecretKey
	if opts.OpTimeout == 0 {
		opts.OpTimeout = 30 * time.Second
	}
	st, err := Open(context.Background(), uri, opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// records returns n bytes of text records, like a partition of
// (page, rank) pairs: compressible, not trivially.
func records(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, "page-%d\t%.9f\n", rng.IntN(1_000_000), rng.Float64())
	}
	return b.Bytes()[:n]
}

// writeCheckpoint writes the partitions then the manifest, as a driver
// would once every task has written its partition.
func writeCheckpoint(ctx context.Context, st Store, name string, seq int64, parts [][]byte) (Manifest, error) {
	m := Manifest{Name: name, Seq: seq, NumPartitions: len(parts),
		Partitioner: `{"kind":"hash","partitions":` + fmt.Sprint(len(parts)) + `}`,
		Lineage:     "ranks[" + fmt.Sprint(seq) + "] <- contribs <- links", Meta: map[string]string{"iteration": fmt.Sprint(seq)}}
	for i, p := range parts {
		info, err := WritePartition(ctx, st, name, i, p)
		if err != nil {
			return Manifest{}, err
		}
		m.Partitions = append(m.Partitions, info)
	}
	return m, WriteManifest(ctx, st, name, m)
}

func TestStores(t *testing.T) {
	for kind, open := range backends(t) {
		t.Run("store="+kind, func(t *testing.T) {
			t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open(t)) })
			t.Run("Corrupt", func(t *testing.T) { testCorrupt(t, open(t)) })
			t.Run("Incomplete", func(t *testing.T) { testIncomplete(t, open(t)) })
			t.Run("Prune", func(t *testing.T) { testPrune(t, open(t)) })
			t.Run("ConcurrentSamePartition", func(t *testing.T) { testConcurrentSamePartition(t, open(t)) })
			t.Run("Objects", func(t *testing.T) { testObjects(t, open(t)) })
			t.Run("Close", func(t *testing.T) { testClose(t, kind, open(t)) })
			t.Run("RunsIsolated", func(t *testing.T) { testRunsIsolated(t, open(t)) })
			t.Run("PruneRuns", func(t *testing.T) { testPruneRuns(t, open(t)) })
		})
	}
}

// testClose: an S3 store holds connections, which Close releases; it
// works on afterwards (a call made meanwhile is not broken by it), and
// Close again is harmless. The other stores hold nothing to close.
func testClose(t *testing.T, kind string, st Store) {
	c, ok := st.(io.Closer)
	if ok != (kind == "s3") {
		t.Fatalf("the %s store is an io.Closer: %v", kind, ok)
	}
	if !ok {
		return
	}
	ctx := context.Background()
	if err := st.Put(ctx, "before", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := st.Get(ctx, "before"); err != nil || string(got) != "v" {
		t.Errorf("Get after Close: %q, %v", got, err)
	}
	if err := st.Put(ctx, "after", []byte("w")); err != nil {
		t.Errorf("Put after Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func testRoundTrip(t *testing.T, st Store) {
	ctx := context.Background()
	parts := [][]byte{records(1, 300_000), {}, records(2, 10), bytes.Repeat([]byte{0}, 1<<20)}
	want, err := writeCheckpoint(ctx, st, "ranks-000030", 30, parts)
	if err != nil {
		t.Fatal(err)
	}
	if want.Partitions[0].Size >= want.Partitions[0].RawSize {
		t.Errorf("partition 0 not compressed: %d bytes for %d raw", want.Partitions[0].Size, want.Partitions[0].RawSize)
	}
	m, err := ReadManifest(ctx, st, "ranks-000030")
	if err != nil {
		t.Fatal(err)
	}
	if m.Seq != 30 || m.NumPartitions != 4 || m.Meta["iteration"] != "30" || m.Partitioner != want.Partitioner ||
		m.Lineage != want.Lineage || m.Created.IsZero() || !m.Created.Equal(want.Created) && !want.Created.IsZero() {
		t.Errorf("manifest read back %+v", m)
	}
	if !slices.Equal(m.Partitions, want.Partitions) {
		t.Errorf("partitions read back %+v, want %+v", m.Partitions, want.Partitions)
	}
	for i, p := range parts {
		got, err := ReadPartition(ctx, st, m, i)
		if err != nil {
			t.Fatalf("partition %d: %v", i, err)
		}
		if !bytes.Equal(got, p) {
			t.Errorf("partition %d: read %d bytes, wrote %d, different", i, len(got), len(p))
		}
	}
	ms, err := List(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].Name != "ranks-000030" {
		t.Errorf("List = %v, want ranks-000030", names(ms))
	}
	if got, want := PartitionURI(st, "ranks-000030", 2), st.String()+"/ranks-000030/part-00002"; got != want {
		t.Errorf("PartitionURI = %q, want %q", got, want)
	}
	if _, err := ReadPartition(ctx, st, m, 4); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("ReadPartition out of range: %v, want ErrInvalidArgument", err)
	}
}

func names(ms []Manifest) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

func testCorrupt(t *testing.T, st Store) {
	ctx := context.Background()
	parts := [][]byte{records(3, 100_000), records(4, 100_000)}
	m, err := writeCheckpoint(ctx, st, "c", 1, parts)
	if err != nil {
		t.Fatal(err)
	}
	key := PartKey("c", 1)
	orig, err := st.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mangle func([]byte) []byte
	}{
		{"payload bit", func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b }},
		{"header raw length", func(b []byte) []byte { b[8]++; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"extended", func(b []byte) []byte { return append(b, 0) }},
		{"empty", func(b []byte) []byte { return nil }},
		// A valid partition object, but not the one the manifest describes.
		{"replaced", func([]byte) []byte { return encodePartition(records(5, 100_000)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := st.Put(ctx, key, tc.mangle(slices.Clone(orig))); err != nil {
				t.Fatal(err)
			}
			got, err := ReadPartition(ctx, st, m, 1)
			if !errors.Is(err, ErrCorrupt) || got != nil {
				t.Fatalf("ReadPartition of a corrupt object = %d bytes, %v; want ErrCorrupt", len(got), err)
			}
			if !strings.Contains(err.Error(), PartitionURI(st, "c", 1)) {
				t.Errorf("error %q does not name the partition's URI", err)
			}
		})
	}
	if err := st.Put(ctx, key, orig); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadPartition(ctx, st, m, 1); err != nil || !bytes.Equal(got, parts[1]) {
		t.Fatalf("restored partition: %v", err)
	}

	// A corrupt manifest is refused too.
	mb, err := st.Get(ctx, ManifestKey("c"))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(mb, []byte(`"seq": 1`), []byte(`"seq": 7`), 1)
	if bytes.Equal(bad, mb) {
		t.Fatalf("manifest has no seq to alter:\n%s", mb)
	}
	if err := st.Put(ctx, ManifestKey("c"), bad); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadManifest(ctx, st, "c"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadManifest of an altered manifest: %v, want ErrCorrupt", err)
	}
	if _, err := List(ctx, st); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("List with an altered manifest: %v, want ErrCorrupt", err)
	}
}

func testIncomplete(t *testing.T, st Store) {
	ctx := context.Background()
	if _, err := writeCheckpoint(ctx, st, "done", 1, [][]byte{records(1, 1000)}); err != nil {
		t.Fatal(err)
	}
	// Partitions written, no manifest: the writer died before the end.
	for i := range 3 {
		if _, err := WritePartition(ctx, st, "half", i, records(uint64(i), 1000)); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := List(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(ms); !slices.Equal(got, []string{"done"}) {
		t.Errorf("List = %v, want [done]", got)
	}
	if _, err := ReadManifest(ctx, st, "half"); !errors.Is(err, ErrIncomplete) {
		t.Errorf("ReadManifest of a checkpoint without manifest: %v, want ErrIncomplete", err)
	}
	if _, err := ReadManifest(ctx, st, "never"); !errors.Is(err, ErrIncomplete) {
		t.Errorf("ReadManifest of an absent checkpoint: %v, want ErrIncomplete", err)
	}
	// A manifest that names a partition not in the store is not written.
	m := Manifest{Name: "half", NumPartitions: 4}
	for i := range 4 {
		m.Partitions = append(m.Partitions, PartInfo{Part: i, Key: PartKey("half", i), Size: 100, RawSize: 1000})
	}
	if err := WriteManifest(ctx, st, "half", m); err == nil {
		t.Fatal("WriteManifest with a partition missing from the store succeeded")
	}
	if _, err := ReadManifest(ctx, st, "half"); !errors.Is(err, ErrIncomplete) {
		t.Errorf("after a refused WriteManifest: %v, want ErrIncomplete", err)
	}
}

// waitClockPast returns once st's clock, as seen in the ModTime of a
// probe object it writes, is past ts (S3 services keep ModTime to the
// millisecond or second).
func waitClockPast(t *testing.T, st Store, ts time.Time) {
	t.Helper()
	ctx := context.Background()
	poll.WaitFor(t, 5*time.Second, fmt.Sprintf("the store's clock to pass %v", ts), func() bool {
		if err := st.Put(ctx, "clock-probe", nil); err != nil {
			t.Fatal(err)
		}
		objs, err := st.List(ctx, "clock-probe")
		if err != nil {
			t.Fatal(err)
		}
		return len(objs) == 1 && objs[0].ModTime.After(ts)
	})
}

// newestModTime is the newest ModTime of the objects of a checkpoint.
func newestModTime(t *testing.T, st Store, name string) time.Time {
	t.Helper()
	objs, err := st.List(context.Background(), name+"/")
	if err != nil || len(objs) == 0 {
		t.Fatalf("list %s: %d objects, %v", name, len(objs), err)
	}
	var ts time.Time
	for _, o := range objs {
		if o.ModTime.After(ts) {
			ts = o.ModTime
		}
	}
	return ts
}

func testPrune(t *testing.T, st Store) {
	ctx := context.Background()
	write := func(name string, seq int64) {
		t.Helper()
		if _, err := writeCheckpoint(ctx, st, name, seq, [][]byte{records(uint64(seq), 5000), records(uint64(seq+1), 5000)}); err != nil {
			t.Fatal(err)
		}
		waitClockPast(t, st, newestModTime(t, st, name))
	}
	leftover := func(name string) {
		t.Helper()
		if _, err := WritePartition(ctx, st, name, 0, records(9, 5000)); err != nil {
			t.Fatal(err)
		}
		waitClockPast(t, st, newestModTime(t, st, name))
	}
	if _, err := Prune(ctx, st, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Prune keep=0: %v, want ErrInvalidArgument", err)
	}
	// Names do not sort as Seq does: Prune must go by Seq.
	write("it-10", 10)
	leftover("failed-early") // before the oldest checkpoint that will be kept
	write("it-9", 20)
	write("it-30", 30)
	write("it-4", 40)
	leftover("in-progress") // after every kept checkpoint

	deleted, err := Prune(ctx, st, 2)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(deleted)
	if want := []string{"failed-early", "it-10", "it-9"}; !slices.Equal(deleted, want) {
		t.Errorf("Prune deleted %v, want %v", deleted, want)
	}
	ms, err := List(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(ms), []string{"it-30", "it-4"}; !slices.Equal(got, want) {
		t.Errorf("after Prune, List = %v, want %v", got, want)
	}
	objs, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, o := range objs {
		if name := checkpointOf(o.Key); name != "" && !slices.Contains(left, name) {
			left = append(left, name)
		}
	}
	if want := []string{"in-progress", "it-30", "it-4"}; !slices.Equal(left, want) {
		t.Errorf("after Prune the store holds %v, want %v (every object of a deleted checkpoint gone, the one in progress kept)", left, want)
	}
	// The kept checkpoints are intact.
	for _, m := range ms {
		if _, err := ReadPartition(ctx, st, m, 1); err != nil {
			t.Error(err)
		}
	}
	// Pruning again deletes nothing.
	if deleted, err := Prune(ctx, st, 2); err != nil || len(deleted) != 0 {
		t.Errorf("second Prune deleted %v, %v", deleted, err)
	}
}

func testConcurrentSamePartition(t *testing.T, st Store) {
	ctx := context.Background()
	const parts, attempts = 4, 4
	data := make([][]byte, parts)
	for i := range data {
		data[i] = records(uint64(100+i), 200_000)
	}
	// Every partition written by several attempts at once, as retried and
	// speculative tasks would.
	infos := make([][]PartInfo, parts)
	for i := range infos {
		infos[i] = make([]PartInfo, attempts)
	}
	var wg sync.WaitGroup
	errs := make(chan error, parts*attempts)
	for p := range parts {
		for a := range attempts {
			wg.Go(func() {
				info, err := WritePartition(ctx, st, "conc", p, data[p])
				if err != nil {
					errs <- err
					return
				}
				infos[p][a] = info
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	m := Manifest{Name: "conc", Seq: 1, NumPartitions: parts}
	for p := range parts {
		for a := 1; a < attempts; a++ {
			if infos[p][a] != infos[p][0] {
				t.Fatalf("partition %d: attempts wrote %+v and %+v", p, infos[p][0], infos[p][a])
			}
		}
		m.Partitions = append(m.Partitions, infos[p][attempts-1])
	}
	if err := WriteManifest(ctx, st, "conc", m); err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(ctx, st, "conc")
	if err != nil {
		t.Fatal(err)
	}
	for p := range parts {
		got, err := ReadPartition(ctx, st, m, p)
		if err != nil || !bytes.Equal(got, data[p]) {
			t.Fatalf("partition %d: %v (equal %v)", p, err, bytes.Equal(got, data[p]))
		}
	}
	objs, err := st.List(ctx, "conc/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != parts+1 {
		t.Errorf("store holds %d objects of the checkpoint, want %d partitions + manifest: %v", len(objs), parts, objs)
	}
	if d, ok := st.(*DirStore); ok { // no temporary file left behind
		entries, err := os.ReadDir(filepath.Join(d.root, "conc"))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != parts+1 {
			t.Errorf("directory holds %d files, want %d", len(entries), parts+1)
		}
	}
}

// testObjects checks the Store contract itself.
func testObjects(t *testing.T, st Store) {
	ctx := context.Background()
	if _, err := st.Get(ctx, "a/missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a missing key: %v, want ErrNotFound", err)
	}
	for _, k := range []string{"a/x", "a/y", "ab/z", "b"} {
		if err := st.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Put(ctx, "a/x", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, err := st.Get(ctx, "a/x"); err != nil || string(b) != "new" {
		t.Errorf("Get after replace = %q, %v", b, err)
	}
	list := func(prefix string) []string {
		objs, err := st.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range objs {
			keys = append(keys, o.Key)
			if o.Size != int64(len(o.Key)) && o.Key != "a/x" || o.ModTime.IsZero() {
				t.Errorf("List info %+v", o)
			}
		}
		return keys
	}
	if got, want := list("a"), []string{"a/x", "a/y", "ab/z"}; !slices.Equal(got, want) {
		t.Errorf("List(a) = %v, want %v", got, want)
	}
	if got, want := list("a/"), []string{"a/x", "a/y"}; !slices.Equal(got, want) {
		t.Errorf("List(a/) = %v, want %v", got, want)
	}
	if err := st.Delete(ctx, "a/x", "a/y", "a/never"); err != nil {
		t.Fatal(err)
	}
	if got, want := list(""), []string{"ab/z", "b"}; !slices.Equal(got, want) {
		t.Errorf("after Delete, List = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "/a", "a/", "a//b", "../a", "a/../b", "a/./b", `a\b`, "a/.tmp-x"} {
		if err := st.Put(ctx, bad, nil); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Put(%q): %v, want ErrInvalidArgument", bad, err)
		}
		if _, err := st.Get(ctx, bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Get(%q): %v, want ErrInvalidArgument", bad, err)
		}
	}
	if _, err := st.List(ctx, "../"); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("List(../): %v, want ErrInvalidArgument", err)
	}
	for _, bad := range []string{"", "a/b", "..", ".hidden", "-x", strings.Repeat("x", 129)} {
		if _, err := WritePartition(ctx, st, bad, 0, nil); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("WritePartition name %q: %v, want ErrInvalidArgument", bad, err)
		}
		if _, err := ReadManifest(ctx, st, bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ReadManifest name %q: %v, want ErrInvalidArgument", bad, err)
		}
	}
	if _, err := WritePartition(ctx, st, "x", -1, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("WritePartition part -1: %v, want ErrInvalidArgument", err)
	}
}

// A local directory's temporary files left by crashed writes are removed by
// Prune once they are an hour old, with the directories that leaves empty;
// younger ones (writes in progress) and the checkpoints stay.
func TestPruneRemovesStaleTemps(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	st, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writeCheckpoint(ctx, st, "it-10", 10, [][]byte{records(1, 5000)}); err != nil {
		t.Fatal(err)
	}
	temp := func(rel string, age time.Duration) string {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("half a partition"), 0o644); err != nil {
			t.Fatal(err)
		}
		when := time.Now().Add(-age)
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crashedAlone := temp("it-20/"+tmpPrefix+"part-00000-1", 2*time.Hour)  // a checkpoint with nothing but the crashed write
	crashedBeside := temp("it-10/"+tmpPrefix+"part-00000-2", 2*time.Hour) // beside a complete checkpoint's objects
	inProgress := temp("it-30/"+tmpPrefix+"part-00000-3", 10*time.Minute) // a write in progress
	if _, err := Prune(ctx, st, 1); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{crashedAlone, crashedBeside, filepath.Dir(crashedAlone)} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after Prune (%v)", p, err)
		}
	}
	if _, err := os.Stat(inProgress); err != nil {
		t.Errorf("the temporary file of a write in progress: %v", err)
	}
	ms, err := List(ctx, st)
	if err != nil || len(ms) != 1 {
		t.Fatalf("after Prune: %v, %v; want the one checkpoint", names(ms), err)
	}
	if _, err := ReadPartition(ctx, st, ms[0], 0); err != nil {
		t.Error(err)
	}
}
