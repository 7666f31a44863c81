package shuffleservice

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/blockstore"
	"shoal/internal/testbin"
	"shoal/shuffleservice/internal/nodetest"
	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// procMemory returns a running process's resident set size and its peak
// (VmRSS and VmHWM of /proc/PID/status), in bytes.
func procMemory(t testing.TB, pid int) (rss, hwm int64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc to measure memory with: %v", err)
	}
	field := func(name string) int64 {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+":"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				if err != nil {
					t.Fatalf("/proc/%d/status: %s: %v", pid, line, err)
				}
				return kb << 10
			}
		}
		t.Fatalf("/proc/%d/status has no %s", pid, name)
		return 0
	}
	return field("VmRSS"), field("VmHWM")
}

// TestBlockMemoryBoundInNodeProcess puts 40 times the node's
// --cache-bytes of blocks into a real node process, at every level, and
// checks after every put that the block store's memory (from Status)
// stays within --cache-bytes and that the process's resident memory stays
// within a fixed allowance above what it used before the first put.
func TestBlockMemoryBoundInNodeProcess(t *testing.T) {
	const (
		cache = 8 << 20
		// allowance is what the node may hold above its resident memory
		// before the first put: the memory tier, the block being
		// received, and the garbage of the blocks before it that the Go
		// collector has not returned yet (up to the heap goal, twice the
		// live heap).
		allowance = 64 << 20
		total     = 40 * cache
	)
	bin := testbin.Shoal(t)
	root := t.TempDir()
	p, c := nodetest.StartProcess(t, bin, []string{filepath.Join(root, "a"), filepath.Join(root, "b")}, "--cache-bytes=8MiB")
	ctx := context.Background()
	nodetest.Register(t, c, "app")
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.GetBlocks().GetMemoryLimit() != cache {
		t.Fatalf("memory limit %d, want --cache-bytes %d", st.GetBlocks().GetMemoryLimit(), cache)
	}
	baseline, _ := procMemory(t, p.Pid())

	rng := rand.New(rand.NewPCG(7, 8))
	levels := []blockstore.Level{blockstore.MemorySer, blockstore.MemoryAndDisk, blockstore.DiskOnly}
	sizes := map[blockstore.BlockID]int{}
	var put, peakBlockMem, peakRSS int64
	var ids []blockstore.BlockID
	for i := 0; put < total; i++ {
		id := blockstore.BlockID{App: "app", RDD: i % 7, Partition: i}
		size := 64<<10 + rng.IntN(1<<20)
		stored, _, err := c.PutBlock(ctx, id, levels[i%3], i%3, blockBytes(id, size))
		if err != nil {
			t.Fatalf("put %d (%s, %d bytes): %v", i, id, size, err)
		}
		if stored != blockstore.None {
			sizes[id] = size
			ids = append(ids, id)
		}
		put += int64(size)
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		mem := int64(st.GetBlocks().GetMemoryBytes())
		if mem > cache {
			t.Fatalf("after put %d: block memory %d bytes, above --cache-bytes %d", i, mem, cache)
		}
		rss, _ := procMemory(t, p.Pid())
		if rss > baseline+allowance {
			t.Fatalf("after put %d (%d MiB put in all): node RSS %.1f MiB, above %.1f MiB before the first put plus %d MiB",
				i, put>>20, float64(rss)/(1<<20), float64(baseline)/(1<<20), allowance>>20)
		}
		peakBlockMem, peakRSS = max(peakBlockMem, mem), max(peakRSS, rss)
		if i%10 == 9 {
			id := ids[rng.IntN(len(ids))]
			data, _, found, err := c.GetBlock(ctx, id)
			if err != nil {
				t.Fatalf("get %s: %v", id, err)
			}
			if found && string(data) != string(blockBytes(id, sizes[id])) {
				t.Fatalf("get %s: wrong bytes", id)
			}
		}
	}
	_, hwm := procMemory(t, p.Pid())
	if hwm > baseline+allowance {
		t.Fatalf("node peak RSS (VmHWM) %.1f MiB, above %.1f MiB before the first put plus %d MiB", float64(hwm)/(1<<20), float64(baseline)/(1<<20), allowance>>20)
	}
	st, err = c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := st.GetBlocks()
	if peakBlockMem < cache/2 || b.GetEvictions() == 0 || b.GetEvictedToDisk() == 0 || b.GetDiskBlocks() == 0 {
		t.Fatalf("the memory tier was not exercised: peak %d bytes, status %v", peakBlockMem, b)
	}
	t.Logf("put %d MiB in %d blocks through --cache-bytes=8MiB: block memory peak %.2f MiB; node RSS %.1f MiB before the first put, peak %.1f MiB sampled after puts, VmHWM %.1f MiB; %d blocks (%d MiB) on disk, %d evictions",
		put>>20, b.GetPuts(), float64(peakBlockMem)/(1<<20), float64(baseline)/(1<<20), float64(peakRSS)/(1<<20), float64(hwm)/(1<<20),
		b.GetDiskBlocks(), b.GetDiskBytes()>>20, b.GetEvictions())
}

// TestBlocksSurviveNodeRestart puts blocks at every level into a real
// node process, kills it with SIGKILL and starts another on the same
// directories: every block that was on disk (DiskOnly, and MemoryAndDisk
// blocks moved there) is served again byte for byte, and the blocks that
// were only in memory are gone. Then RemoveBlocks and RemoveApp delete
// what is left.
func TestBlocksSurviveNodeRestart(t *testing.T) {
	const cache = 64 << 10
	bin := testbin.Shoal(t)
	root := t.TempDir()
	dirs := []string{filepath.Join(root, "a"), filepath.Join(root, "b")}
	ctx := context.Background()
	p1, c1 := nodetest.StartProcess(t, bin, dirs, "--cache-bytes=64KiB")
	if err := c1.RegisterApp(ctx, "job", time.Hour); err != nil {
		t.Fatal(err)
	}
	layout, err := c1.RegisterWorker(ctx, "job", "w0", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	out, shuffleBlocks := writeSortedOutput(t, layout, "job", 0, 0, 0, genFixtureBlocks(3, 4))
	mustCommit(t, c1, "job", out)

	type block struct {
		level blockstore.Level // held at now
		size  int
	}
	blocks := map[blockstore.BlockID]*block{}
	put := func(id blockstore.BlockID, level blockstore.Level, size int) {
		t.Helper()
		stored, evicted := mustPutBlock(t, c1, id, level, 0, size)
		for _, e := range evicted {
			if e.ToDisk {
				blocks[e.ID].level = blockstore.DiskOnly
			} else {
				delete(blocks, e.ID)
			}
		}
		if stored != blockstore.None {
			blocks[id] = &block{level: stored, size: size}
		}
	}
	// RDD 1: DiskOnly, one block empty and one of several chunks.
	for p, size := range []int{0, 1000, 5 * nodewire.DefaultChunkSize / 2} {
		put(blockstore.BlockID{App: "job", RDD: 1, Partition: p}, blockstore.DiskOnly, size)
	}
	// RDDs 2 and 3: MemoryAndDisk, alternating, so that each evicts the
	// other's to disk; one larger than memory goes there at once.
	for p := range 8 {
		put(blockstore.BlockID{App: "job", RDD: 2 + p%2, Partition: p}, blockstore.MemoryAndDisk, 20<<10)
	}
	put(blockstore.BlockID{App: "job", RDD: 2, Partition: 100}, blockstore.MemoryAndDisk, cache+1)
	// RDD 4: MemorySer.
	for p := range 2 {
		put(blockstore.BlockID{App: "job", RDD: 4, Partition: p}, blockstore.MemorySer, 10<<10)
	}
	var onDisk, inMemory, memoryAndDiskOnDisk int
	for id, b := range blocks {
		if b.level == blockstore.DiskOnly {
			onDisk++
			if id.RDD == 2 || id.RDD == 3 {
				memoryAndDiskOnDisk++
			}
		} else {
			inMemory++
		}
	}
	if memoryAndDiskOnDisk < 2 || inMemory < 2 {
		t.Fatalf("the puts did not spread over memory and disk: %d MemoryAndDisk blocks on disk, %d blocks in memory", memoryAndDiskOnDisk, inMemory)
	}
	st, err := c1.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int(st.GetBlocks().GetDiskBlocks()) != onDisk || int(st.GetBlocks().GetMemoryBlocks()) != inMemory {
		t.Fatalf("status %v, want %d blocks on disk and %d in memory", st.GetBlocks(), onDisk, inMemory)
	}
	if err := p1.Kill(); err != nil {
		t.Fatal(err)
	}

	p2, c2 := nodetest.StartProcess(t, bin, dirs, "--cache-bytes=64KiB")
	for id, b := range blocks {
		if b.level == blockstore.DiskOnly {
			checkBlock(t, c2, id, blockstore.DiskOnly, b.size)
		} else {
			checkNoBlock(t, c2, id)
		}
	}
	got, err := fetchBlocks(t, c2, "job", 0, DefaultChunkSize, &shufflepb.BlockRange{ReduceEnd: 4})
	if err != nil {
		t.Fatal(err)
	}
	for r, want := range shuffleBlocks {
		if string(got[blockID{0, uint32(r)}]) != string(want) {
			t.Fatalf("shuffle block %d differs after the restart", r)
		}
	}
	st, err = c2.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int(st.GetBlocks().GetDiskBlocks()) != onDisk || st.GetBlocks().GetMemoryBytes() != 0 || st.GetMapOutputs() != 1 {
		t.Fatalf("status after restart %v, want %d blocks on disk", st, onDisk)
	}

	// RemoveBlocks deletes one RDD's files; RemoveApp the rest.
	n, err := c2.RemoveBlocks(ctx, "job", 1)
	if err != nil || n != 3 {
		t.Fatalf("RemoveBlocks(job, 1) = %d, %v; want 3", n, err)
	}
	files := blockFilesOf(t, layout, "job")
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "rdd-1-") {
			t.Fatalf("file of a removed RDD: %s", f)
		}
	}
	if len(files) != onDisk-3 {
		t.Fatalf("%d block files left, want %d: %v", len(files), onDisk-3, files)
	}
	if err := c2.RemoveApp(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	if files := listTree(t, layout.AppDirs("job")...); len(files) != 0 {
		t.Fatalf("files left after RemoveApp: %v", files)
	}
	if _, _, _, err := c2.GetBlock(ctx, blockstore.BlockID{App: "job", RDD: 2}); !errors.Is(err, shuffle.ErrUnknownApp) {
		t.Fatalf("get after RemoveApp: %v", err)
	}
	if st, err := c2.Status(ctx); err != nil || st.GetBlocks().GetDiskBlocks() != 0 {
		t.Fatalf("status after RemoveApp: %v, %v", st, err)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p2.Stop(sctx); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}
