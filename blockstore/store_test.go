package blockstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"shoal/internal/catalogdb"
)

// openTest opens a store on fresh directories, closed at the end of the
// test.
func openTest(t *testing.T, opts Options) *Store {
	t.Helper()
	if opts.Dirs == nil {
		root := t.TempDir()
		opts.Dirs = []string{filepath.Join(root, "d0"), filepath.Join(root, "d1")}
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// checkInvariants recomputes the accounting from the index.
func checkInvariants(t *testing.T, s *Store) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var mem, disk int64
	var nMem, nDisk int
	for id, e := range s.blocks {
		if e.id != id {
			t.Fatalf("entry %s indexed as %s", e.id, id)
		}
		switch e.state {
		case inMemory:
			mem += e.size
			nMem++
		case onDisk:
			disk += e.size
			nDisk++
		}
	}
	if mem != s.mem || nMem != s.lru.Len() || disk != s.disk || nDisk != s.nDisk {
		t.Fatalf("accounting: memory %d bytes %d blocks (index says %d, %d), disk %d bytes %d blocks (index says %d, %d)",
			s.mem, s.lru.Len(), mem, nMem, s.disk, s.nDisk, disk, nDisk)
	}
	if s.mem > s.opts.MemoryBytes {
		t.Fatalf("memory bytes %d above %d", s.mem, s.opts.MemoryBytes)
	}
}

// blockFiles lists every file under the store's blocks directories.
func blockFiles(t *testing.T, s *Store) map[string]bool {
	t.Helper()
	files := map[string]bool{}
	for _, d := range s.opts.Dirs {
		matches, err := filepath.Glob(filepath.Join(d, "*", BlocksDirName, "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			files[m] = true
		}
	}
	return files
}

func TestMemoryBoundUnderConcurrentOps(t *testing.T) {
	const memory = 1000
	s := openTest(t, Options{MemoryBytes: memory})
	ctx := context.Background()
	workers, ops := 8, 1500
	if testing.Short() {
		ops = 300
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			apps := []string{"a", "b"}
			for range ops {
				id := BlockID{App: apps[rng.IntN(2)], RDD: rng.IntN(4), Partition: rng.IntN(6)}
				switch op := rng.IntN(20); {
				case op < 9:
					level := []Level{MemorySer, MemoryAndDisk, DiskOnly}[rng.IntN(3)]
					size := rng.IntN(400)
					if rng.IntN(50) == 0 {
						size = memory + 1
					}
					stored, evicted, err := s.Put(ctx, id, level, rng.IntN(3), blockData(id, size))
					if err != nil {
						t.Errorf("put %s: %v", id, err)
						return
					}
					if level == DiskOnly && stored != DiskOnly || level == MemorySer && stored != MemorySer && stored != None {
						t.Errorf("put %s at %s: stored %s", id, level, stored)
					}
					for _, e := range evicted {
						if e.ID.sameRDD(id) {
							t.Errorf("put %s evicted %s of its own RDD", id, e.ID)
						}
					}
				case op < 17:
					data, _, found, err := s.Get(ctx, id)
					if err != nil {
						t.Errorf("get %s: %v", id, err)
						return
					}
					if found && !bytes.Equal(data, blockData(id, len(data))) {
						t.Errorf("get %s: wrong bytes", id)
						return
					}
				case op < 19:
					if _, err := s.Remove(id); err != nil {
						t.Errorf("remove %s: %v", id, err)
						return
					}
				default:
					if _, err := s.RemoveRDD(id.App, id.RDD); err != nil {
						t.Errorf("remove RDD: %v", err)
						return
					}
				}
				if m := s.Metrics(); m.MemoryBytes > memory || m.MemoryBytes < 0 {
					t.Errorf("memory bytes %d outside [0, %d]", m.MemoryBytes, memory)
					return
				}
			}
		}()
	}
	wg.Wait()
	checkInvariants(t, s)
	m := s.Metrics()
	t.Logf("%+v", m)
	if m.Hits == 0 || m.Evictions == 0 || m.EvictedToDisk == 0 {
		t.Errorf("the random workload did not exercise hits, evictions and moves to disk: %+v", m)
	}
	// Every file on disk belongs to a disk block, and vice versa: nothing
	// leaked and nothing is missing.
	files := blockFiles(t, s)
	s.mu.Lock()
	for _, e := range s.blocks {
		if e.state == onDisk {
			p := s.path(e.id, e.rec)
			if !files[p] {
				t.Errorf("%s: file %s missing", e.id, p)
			}
			delete(files, p)
		}
	}
	s.mu.Unlock()
	for f := range files {
		t.Errorf("stray file %s", f)
	}
}

func TestRestartServesDiskBlocks(t *testing.T) {
	root := t.TempDir()
	opts := Options{Dirs: []string{filepath.Join(root, "d0"), filepath.Join(root, "d1"), filepath.Join(root, "d2")}, MemoryBytes: 1 << 10}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[BlockID][]byte{}
	for p := range 40 {
		id := BlockID{App: fmt.Sprintf("app-%d", p%3), RDD: p % 5, Partition: p}
		data := make([]byte, rng.IntN(3000))
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		level := MemoryAndDisk
		if p%2 == 0 {
			level = DiskOnly
		}
		if _, _, err := s.Put(ctx, id, level, 0, data); err != nil {
			t.Fatal(err)
		}
		want[id] = data
	}
	// What is on disk now must come back; what is in memory is lost.
	wasOnDisk := map[BlockID]bool{}
	s.mu.Lock()
	for id, e := range s.blocks {
		wasOnDisk[id] = e.state == onDisk
	}
	s.mu.Unlock()
	before := s.Metrics()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	s2, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if m := s2.Metrics(); m.DiskBlocks != before.DiskBlocks || m.DiskBytes != before.DiskBytes || m.MemoryBytes != 0 {
		t.Fatalf("after restart %+v, before %+v", m, before)
	}
	for id, data := range want {
		got, level, found, err := s2.Get(ctx, id)
		switch {
		case err != nil:
			t.Fatalf("%s: %v", id, err)
		case found != wasOnDisk[id]:
			t.Fatalf("%s: found %v after restart, on disk before: %v", id, found, wasOnDisk[id])
		case found && (level != DiskOnly || !bytes.Equal(got, data)):
			t.Fatalf("%s: level %s, %d bytes, want DiskOnly and the %d bytes put", id, level, len(got), len(data))
		}
	}
	if before.DiskBlocks < 20 {
		t.Fatalf("only %d blocks on disk", before.DiskBlocks)
	}
}

func TestCorruptBlockFile(t *testing.T) {
	damage := map[string]func(p string) error{
		"flipped payload byte": func(p string) error { return flip(p, -1) },
		"flipped header byte":  func(p string) error { return flip(p, 6) },
		"bad magic":            func(p string) error { return flip(p, 0) },
		"truncated": func(p string) error {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, fi.Size()-1)
		},
		"extended": func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			f.Write([]byte{0})
			return f.Close()
		},
		"deleted": os.Remove,
	}
	for name, fn := range damage {
		t.Run(name, func(t *testing.T) {
			s := openTest(t, Options{})
			ctx := context.Background()
			id := BlockID{App: "a", RDD: 1, Partition: 2}
			if _, _, err := s.Put(ctx, id, DiskOnly, 0, blockData(id, 100)); err != nil {
				t.Fatal(err)
			}
			s.mu.Lock()
			p := s.path(id, s.blocks[id].rec)
			s.mu.Unlock()
			if err := fn(p); err != nil {
				t.Fatal(err)
			}
			data, _, found, err := s.Get(ctx, id)
			if !errors.Is(err, ErrCorrupt) || found || data != nil {
				t.Fatalf("Get: %d bytes, found %v, err %v; want ErrCorrupt and no data", len(data), found, err)
			}
			if _, _, found, err := s.Get(ctx, id); found || err != nil {
				t.Fatalf("second Get: found %v, err %v; want a miss", found, err)
			}
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Fatalf("corrupt file not removed: %v", err)
			}
			if m := s.Metrics(); m.Corrupt != 1 || m.DiskBlocks != 0 || m.DiskBytes != 0 {
				t.Fatalf("metrics %+v", m)
			}
			checkInvariants(t, s)
		})
	}
}

func flip(p string, at int) error {
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if at < 0 {
		at += len(b)
	}
	b[at] ^= 0x40
	return os.WriteFile(p, b, 0o644)
}

// A file damaged while the store was down: one of the wrong size is dropped
// at Open; one of the right size fails its checksum at Get.
func TestCorruptBlockFileAcrossRestart(t *testing.T) {
	root := t.TempDir()
	fs := vfs.NewMem()
	opts := Options{Dirs: []string{root}, CatalogFS: fs}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, b := BlockID{App: "a", RDD: 1, Partition: 0}, BlockID{App: "a", RDD: 1, Partition: 1}
	for _, id := range []BlockID{a, b} {
		if _, _, err := s.Put(ctx, id, DiskOnly, 0, blockData(id, 64)); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	pa, pb := s.path(a, s.blocks[a].rec), s.path(b, s.blocks[b].rec)
	s.mu.Unlock()
	s.Close()
	if err := os.Truncate(pa, 10); err != nil {
		t.Fatal(err)
	}
	if err := flip(pb, 30); err != nil {
		t.Fatal(err)
	}
	s, err = Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, _, found, err := s.Get(ctx, a); found || err != nil {
		t.Fatalf("truncated block: found %v err %v, want a miss", found, err)
	}
	if _, err := os.Stat(pa); !os.IsNotExist(err) {
		t.Fatalf("truncated file not swept: %v", err)
	}
	if data, _, _, err := s.Get(ctx, b); !errors.Is(err, ErrCorrupt) || data != nil {
		t.Fatalf("damaged block: %d bytes, err %v", len(data), err)
	}
}

func TestOpenSweepsStrayFiles(t *testing.T) {
	root := t.TempDir()
	opts := Options{Dirs: []string{root}}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	id := BlockID{App: "a", RDD: 0, Partition: 0}
	if _, _, err := s.Put(context.Background(), id, DiskOnly, 0, []byte("kept")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	stray := []string{
		filepath.Join(root, "a", BlocksDirName, "rdd-0-part-0-7.blk"),
		filepath.Join(root, "a", BlocksDirName, "rdd-0-part-0-8.blk"+tempSuffix),
		filepath.Join(root, "b", BlocksDirName, "rdd-3-part-1-2.blk"),
	}
	other := filepath.Join(root, "a", "shuffle-0", "map-0-0.data") // the shuffle's: not ours
	for _, p := range append(stray, other) {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err = Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, p := range stray {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("stray %s not deleted: %v", p, err)
		}
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a file outside blocks/ was touched: %v", err)
	}
	if data, _, _, err := s.Get(context.Background(), id); err != nil || string(data) != "kept" {
		t.Fatalf("got %q, %v", data, err)
	}
}

func TestOpenRefusesOtherDirs(t *testing.T) {
	root := t.TempDir()
	s, err := Open(Options{Dirs: []string{filepath.Join(root, "x"), filepath.Join(root, "y")}})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err = Open(Options{Dirs: []string{filepath.Join(root, "x"), filepath.Join(root, "z")}})
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("reopen with other dirs: %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	o := Options{Dirs: []string{"", "x", "x"}, MemoryBytes: -1}
	err := o.Validate()
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("%v", err)
	}
	for _, want := range []string{"Dirs[0] is empty", `Dirs[2] "x" is listed twice`, "MemoryBytes -1 is negative", "Logger is nil", "CatalogFS is nil"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v\nlacks %q", err, want)
		}
	}
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 5 {
		t.Errorf("%d problems reported, want 5", n)
	}
	o = Options{}
	o.EnsureDefaults()
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "Dirs is empty") {
		t.Errorf("empty Dirs: %v", err)
	}
	o.Dirs = []string{"d"}
	if err := o.Validate(); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

func TestInvalidArguments(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, Options{MemoryBytes: 0})
	good := BlockID{App: "a", RDD: 1, Partition: 1}
	for _, tc := range []struct {
		id    BlockID
		level Level
	}{
		{BlockID{App: "", RDD: 1}, DiskOnly},
		{BlockID{App: "../x", RDD: 1}, DiskOnly},
		{BlockID{App: ".hidden", RDD: 1}, DiskOnly},
		{BlockID{App: "a", RDD: -1}, DiskOnly},
		{BlockID{App: "a", RDD: 1, Partition: -1}, DiskOnly},
		{BlockID{App: "a", RDD: 1, Partition: 1 << 31}, DiskOnly},
		{good, None},
		{good, Level(9)},
		{good, MemorySer},     // no memory tier
		{good, MemoryAndDisk}, // no memory tier
	} {
		if _, _, err := s.Put(ctx, tc.id, tc.level, 0, nil); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("Put(%+v, %v): %v, want ErrInvalidArgument", tc.id, tc.level, err)
		}
	}
	if _, _, _, err := s.Get(ctx, BlockID{App: "a/b"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Get: %v", err)
	}
	if _, err := s.RemoveRDD("a", -3); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("RemoveRDD: %v", err)
	}
	if _, err := s.RemoveApp(""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("RemoveApp: %v", err)
	}
	if stored, _, err := s.Put(ctx, good, DiskOnly, 0, []byte("ok")); err != nil || stored != DiskOnly {
		t.Errorf("disk-only store: %v %v", stored, err)
	}
}

func TestClosed(t *testing.T) {
	s := openTest(t, Options{MemoryBytes: 10})
	ctx := context.Background()
	id := BlockID{App: "a"}
	if _, _, err := s.Put(ctx, id, MemorySer, 0, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close twice: %v", err)
	}
	if _, _, err := s.Put(ctx, id, MemorySer, 0, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Put: %v", err)
	}
	if _, _, _, err := s.Get(ctx, id); !errors.Is(err, ErrClosed) {
		t.Errorf("Get: %v", err)
	}
	if _, err := s.Remove(id); !errors.Is(err, ErrClosed) {
		t.Errorf("Remove: %v", err)
	}
	if _, err := s.RemoveRDD("a", 0); !errors.Is(err, ErrClosed) {
		t.Errorf("RemoveRDD: %v", err)
	}
	if _, err := s.RemoveApp("a"); !errors.Is(err, ErrClosed) {
		t.Errorf("RemoveApp: %v", err)
	}
	if m := s.Metrics(); m.MemoryBytes != 0 {
		t.Errorf("memory after Close: %+v", m)
	}
}

func TestCanceledContext(t *testing.T) {
	s := openTest(t, Options{MemoryBytes: 10})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Put(ctx, BlockID{App: "a"}, MemorySer, 0, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Put: %v", err)
	}
	if _, _, _, err := s.Get(ctx, BlockID{App: "a"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Get: %v", err)
	}
}

func FuzzDecodeBlock(f *testing.F) {
	for _, d := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("block"), 100)} {
		f.Add(append(encodeHeader(d), d...))
	}
	f.Add([]byte("SHBK"))
	f.Fuzz(func(t *testing.T, b []byte) {
		data, err := decodeBlock(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if !bytes.Equal(append(encodeHeader(data), data...), b) {
			t.Fatalf("decoded %d bytes that do not re-encode to the input", len(data))
		}
	})
}

// TestSharedCatalogue runs a store on a database it does not own, as the
// node service does: the store writes only under CatalogPrefix, leaves
// the other keys alone, does not close the database, serves its disk
// blocks again from it, and DropApp forgets an application's blocks
// without deleting their files.
func TestSharedCatalogue(t *testing.T) {
	root := t.TempDir()
	dirs := []string{filepath.Join(root, "d0"), filepath.Join(root, "d1")}
	db, err := catalogdb.Open(vfs.NewMem(), "/catalog", dirs, slog.New(slog.DiscardHandler), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	foreign := map[string]string{"a/app": "1", "m/app\x00\x00\x00\x00\x01\x00\x00\x00\x02": "2", "w/app\x00w1": "3", "z": "4"}
	for k, v := range foreign {
		if err := db.Set([]byte(k), []byte(v), pebble.Sync); err != nil {
			t.Fatal(err)
		}
	}
	// keys returns every key of the database but catalogdb's.
	keys := func() map[string]string {
		t.Helper()
		out := map[string]string{}
		it, err := db.NewIter(nil)
		if err != nil {
			t.Fatal(err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			if !catalogdb.Reserved(it.Key()) {
				out[string(it.Key())] = string(it.Value())
			}
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	opts := Options{Dirs: dirs, MemoryBytes: 1 << 10, DB: db}
	s := openTest(t, opts)
	ctx := context.Background()
	var ids []BlockID
	for p := range 6 {
		id := BlockID{App: []string{"x", "y"}[p%2], RDD: 1, Partition: p}
		if _, _, err := s.Put(ctx, id, DiskOnly, 0, blockData(id, 100+p)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	mem := BlockID{App: "x", RDD: 2, Partition: 0}
	if stored, _, err := s.Put(ctx, mem, MemorySer, 0, blockData(mem, 10)); err != nil || stored != MemorySer {
		t.Fatalf("memory put: %v %v", stored, err)
	}
	ours := 0
	for k, v := range keys() {
		switch {
		case strings.HasPrefix(k, CatalogPrefix):
			ours++
		case foreign[k] != v:
			t.Errorf("key %q = %q, want %q", k, v, foreign[k])
		}
	}
	if ours != len(ids) {
		t.Fatalf("%d keys under %q, want one per disk block (%d)", ours, CatalogPrefix, len(ids))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, closer, err := db.Get([]byte("z")); err != nil {
		t.Fatalf("the store closed a database it does not own: %v", err)
	} else {
		closer.Close()
	}

	s = openTest(t, opts)
	if apps := s.Apps(); !slices.Equal(slices.Sorted(slices.Values(apps)), []string{"x", "y"}) {
		t.Fatalf("Apps() = %v", apps)
	}
	for _, id := range ids {
		got, level, found, err := s.Get(ctx, id)
		if err != nil || !found || level != DiskOnly || !bytes.Equal(got, blockData(id, 100+id.Partition)) {
			t.Fatalf("%s after reopen: found %v level %v err %v", id, found, level, err)
		}
	}
	if _, _, found, _ := s.Get(ctx, mem); found {
		t.Fatalf("memory block %s survived a reopen", mem)
	}
	filesBefore := blockFiles(t, s)
	if n, err := s.DropApp("x"); err != nil || n != 3 {
		t.Fatalf("DropApp(x) = %d, %v; want 3", n, err)
	}
	if files := blockFiles(t, s); len(files) != len(filesBefore) {
		t.Fatalf("DropApp deleted files: %d left of %d", len(files), len(filesBefore))
	}
	for k := range keys() {
		if strings.HasPrefix(k, string(appPrefix("x"))) {
			t.Fatalf("record %q of a dropped application left", k)
		}
	}
	if _, _, found, err := s.Get(ctx, ids[0]); found || err != nil {
		t.Fatalf("dropped block: found %v err %v", found, err)
	}
	if apps := s.Apps(); !slices.Equal(apps, []string{"y"}) {
		t.Fatalf("Apps() after DropApp = %v", apps)
	}
	if m := s.Metrics(); m.DiskBlocks != 3 {
		t.Fatalf("metrics after DropApp: %+v", m)
	}
	checkInvariants(t, s)
}

// TestDiskBlocksDurableWhenPutReturns: the catalogue records of the disk
// blocks a Put reports (its own, and the blocks it moved to disk) are
// synced before it returns, and a removal's before it returns: a crash
// right after (the catalogue reduced to what was synced, as a killed
// process leaves it) loses neither.
func TestDiskBlocksDurableWhenPutReturns(t *testing.T) {
	root := t.TempDir()
	fs := vfs.NewCrashableMem()
	opts := Options{Dirs: []string{filepath.Join(root, "d0"), filepath.Join(root, "d1")}, MemoryBytes: 1000, CatalogFS: fs}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	onDisk := map[BlockID]int{}
	put := func(id BlockID, level Level, size int) {
		t.Helper()
		stored, evicted, err := s.Put(ctx, id, level, 0, blockData(id, size))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evicted {
			if e.ToDisk {
				onDisk[e.ID] = 400
			}
		}
		if stored == DiskOnly {
			onDisk[id] = size
		}
	}
	put(BlockID{App: "a", RDD: 1, Partition: 0}, DiskOnly, 100)
	put(BlockID{App: "a", RDD: 1, Partition: 1}, DiskOnly, 100)
	put(BlockID{App: "a", RDD: 2, Partition: 0}, MemoryAndDisk, 400)
	put(BlockID{App: "a", RDD: 2, Partition: 1}, MemoryAndDisk, 400)
	put(BlockID{App: "a", RDD: 3, Partition: 0}, MemoryAndDisk, 400) // evicts (2, 0) to disk
	put(BlockID{App: "a", RDD: 4, Partition: 0}, MemoryAndDisk, 2000)
	if len(onDisk) != 4 {
		t.Fatalf("on disk: %v", onDisk)
	}
	if n, err := s.RemoveRDD("a", 1); err != nil || n != 2 {
		t.Fatalf("RemoveRDD = %d, %v", n, err)
	}
	delete(onDisk, BlockID{App: "a", RDD: 1, Partition: 0})
	delete(onDisk, BlockID{App: "a", RDD: 1, Partition: 1})

	crashed := fs.CrashClone(vfs.CrashCloneCfg{}) // only what was synced
	s.Close()
	opts.CatalogFS = crashed
	s = openTest(t, opts)
	if m := s.Metrics(); m.DiskBlocks != len(onDisk) {
		t.Fatalf("after the crash %d disk blocks, want %d", m.DiskBlocks, len(onDisk))
	}
	for id, size := range onDisk {
		got, level, found, err := s.Get(ctx, id)
		if err != nil || !found || level != DiskOnly || !bytes.Equal(got, blockData(id, size)) {
			t.Fatalf("%s after the crash: found %v level %v err %v", id, found, level, err)
		}
	}
	for p := range 2 {
		if _, _, found, _ := s.Get(ctx, BlockID{App: "a", RDD: 1, Partition: p}); found {
			t.Fatalf("removed block rdd 1 partition %d came back", p)
		}
	}
}
