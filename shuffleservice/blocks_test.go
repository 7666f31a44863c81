package shuffleservice

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"shoal/blockstore"
	"shoal/internal/poll"
	"shoal/shuffleservice/internal/nodetest"
	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// blockBytes is the content of a test block: a function of its ID and
// size, so that whoever gets it can check it.
func blockBytes(id blockstore.BlockID, size int) []byte {
	h := fnv.New64a()
	fmt.Fprint(h, id)
	x := h.Sum64() | 1
	b := make([]byte, size)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

func mustPutBlock(t testing.TB, c *nodeclient.Client, id blockstore.BlockID, level blockstore.Level, prio, size int) (blockstore.Level, []blockstore.Evicted) {
	t.Helper()
	stored, evicted, err := c.PutBlock(context.Background(), id, level, prio, blockBytes(id, size))
	if err != nil {
		t.Fatalf("PutBlock(%s, %v, %d bytes): %v", id, level, size, err)
	}
	return stored, evicted
}

// checkBlock gets id and checks that it is found at level with the bytes
// of blockBytes(id, size).
func checkBlock(t testing.TB, c *nodeclient.Client, id blockstore.BlockID, level blockstore.Level, size int) {
	t.Helper()
	data, got, found, err := c.GetBlock(context.Background(), id)
	switch {
	case err != nil:
		t.Fatalf("GetBlock(%s): %v", id, err)
	case !found:
		t.Fatalf("GetBlock(%s): not found", id)
	case got != level:
		t.Fatalf("GetBlock(%s): level %v, want %v", id, got, level)
	case !bytes.Equal(data, blockBytes(id, size)):
		t.Fatalf("GetBlock(%s): %d bytes differ from the %d put", id, len(data), size)
	}
}

func checkNoBlock(t testing.TB, c *nodeclient.Client, id blockstore.BlockID) {
	t.Helper()
	if data, _, found, err := c.GetBlock(context.Background(), id); found || err != nil || data != nil {
		t.Fatalf("GetBlock(%s): found %v, %d bytes, err %v; want a miss", id, found, len(data), err)
	}
}

// blockFilesOf lists the block files of app in every local directory.
func blockFilesOf(t testing.TB, l shuffle.Layout, app string) []string {
	t.Helper()
	var files []string
	for _, d := range l.AppDirs(app) {
		files = append(files, listTree(t, filepath.Join(d, blockstore.BlocksDirName))...)
	}
	return files
}

// blockKeys returns the block store's keys in the node's catalogue.
func blockKeys(t testing.TB, s *Server) []string {
	t.Helper()
	it, err := s.cat.db.NewIter(&pebble.IterOptions{LowerBound: []byte(blockstore.CatalogPrefix), UpperBound: prefixEnd([]byte(blockstore.CatalogPrefix))})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var keys []string
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, string(it.Key()))
	}
	return keys
}

func TestBlockRoundTrip(t *testing.T) {
	const memory = 4 << 20
	s, c := newTestServer(t, func(o *Options) { o.CacheBytes = memory; o.ChunkSize = 1000 })
	nodetest.Register(t, c, "app")
	id := func(rdd, p int) blockstore.BlockID { return blockstore.BlockID{App: "app", RDD: rdd, Partition: p} }
	cases := []struct {
		id    blockstore.BlockID
		level blockstore.Level
		size  int
	}{
		{id(1, 0), blockstore.MemorySer, 0}, // an empty partition is a block too
		{id(1, 1), blockstore.MemorySer, 999},
		{id(1, 2), blockstore.MemorySer, 1000},
		{id(2, 0), blockstore.MemoryAndDisk, 1001},
		{id(2, 1), blockstore.MemoryAndDisk, 5 * nodewire.DefaultChunkSize / 2}, // several chunks each way
		{id(3, 0), blockstore.DiskOnly, 0},
		{id(3, 1), blockstore.DiskOnly, 123457},
	}
	for _, tc := range cases {
		if stored, evicted := mustPutBlock(t, c, tc.id, tc.level, 0, tc.size); stored != tc.level || len(evicted) != 0 {
			t.Fatalf("put %s: stored %v, evicted %v", tc.id, stored, evicted)
		}
	}
	for _, tc := range cases {
		checkBlock(t, c, tc.id, tc.level, tc.size)
	}
	checkNoBlock(t, c, id(9, 9))
	// A put replaces: another size, another level.
	mustPutBlock(t, c, id(1, 1), blockstore.DiskOnly, 0, 77)
	checkBlock(t, c, id(1, 1), blockstore.DiskOnly, 77)
	// Larger than memory: a MemoryAndDisk block goes to disk, a MemorySer
	// one is not stored (and the put is no error).
	if stored, _ := mustPutBlock(t, c, id(4, 0), blockstore.MemoryAndDisk, 0, memory+1); stored != blockstore.DiskOnly {
		t.Fatalf("MemoryAndDisk block larger than memory: stored %v", stored)
	}
	checkBlock(t, c, id(4, 0), blockstore.DiskOnly, memory+1)
	if stored, _ := mustPutBlock(t, c, id(4, 1), blockstore.MemorySer, 0, memory+1); stored != blockstore.None {
		t.Fatalf("MemorySer block larger than memory: stored %v", stored)
	}
	checkNoBlock(t, c, id(4, 1))

	m := s.Metrics()
	wantMem := int64(0 + 1000 + 1001 + 5*nodewire.DefaultChunkSize/2)
	if m.Blocks.MemoryBytes != wantMem || m.Blocks.MemoryBlocks != 4 || m.Blocks.DiskBlocks != 4 || m.BlockMemoryLimit != memory || m.BlockPuts != 10 {
		t.Fatalf("metrics %+v", m)
	}
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b := st.GetBlocks()
	if b.GetMemoryBytes() != uint64(wantMem) || b.GetMemoryLimit() != memory || b.GetMemoryBlocks() != 4 || b.GetDiskBlocks() != 4 ||
		b.GetMaxBlockBytes() != DefaultMaxBlockBytes || b.GetPuts() != 10 || b.GetNotStored() != 1 || b.GetSpilledPuts() != 1 ||
		b.GetHits() != 9 || b.GetMisses() != 2 || b.GetBytesServed() != m.BlockBytesOut || b.GetBytesReceived() != m.BlockBytesIn {
		t.Fatalf("status %v", b)
	}
}

// TestBlockLargerThanMessage puts and gets a block larger than the
// largest gRPC message.
func TestBlockLargerThanMessage(t *testing.T) {
	_, c := newTestServer(t, func(o *Options) { o.CacheBytes = 1 << 20 })
	nodetest.Register(t, c, "app")
	id := blockstore.BlockID{App: "app", RDD: 1, Partition: 0}
	const size = nodewire.MaxMessageSize + 3<<20
	mustPutBlock(t, c, id, blockstore.DiskOnly, 0, size)
	checkBlock(t, c, id, blockstore.DiskOnly, size)
}

// TestBlockEvictionOverRPC: the evicted blocks come back with the put
// that evicted them, and the store's rules hold across the wire.
func TestBlockEvictionOverRPC(t *testing.T) {
	s, c := newTestServer(t, func(o *Options) { o.CacheBytes = 3000 })
	nodetest.Register(t, c, "app")
	id := func(rdd, p int) blockstore.BlockID { return blockstore.BlockID{App: "app", RDD: rdd, Partition: p} }
	mustPutBlock(t, c, id(1, 0), blockstore.MemoryAndDisk, 0, 1000)
	mustPutBlock(t, c, id(1, 1), blockstore.MemorySer, 0, 1000)
	mustPutBlock(t, c, id(1, 2), blockstore.MemorySer, 5, 1000)
	// A block of RDD 1 never evicts RDD 1: it goes to disk.
	if stored, ev := mustPutBlock(t, c, id(1, 3), blockstore.MemoryAndDisk, 9, 1000); stored != blockstore.DiskOnly || len(ev) != 0 {
		t.Fatalf("same-RDD put: stored %v evicted %v", stored, ev)
	}
	// RDD 2 at priority 0 evicts the least recently used of priority 0.
	checkBlock(t, c, id(1, 0), blockstore.MemoryAndDisk, 1000) // now (1,1) is the LRU
	stored, ev := mustPutBlock(t, c, id(2, 0), blockstore.MemorySer, 0, 1500)
	want := []blockstore.Evicted{{ID: id(1, 1), Level: blockstore.MemorySer}, {ID: id(1, 0), Level: blockstore.MemoryAndDisk, ToDisk: true}}
	if stored != blockstore.MemorySer || fmt.Sprint(ev) != fmt.Sprint(want) {
		t.Fatalf("put of RDD 2: stored %v evicted %v, want %v", stored, ev, want)
	}
	checkNoBlock(t, c, id(1, 1))
	checkBlock(t, c, id(1, 0), blockstore.DiskOnly, 1000)
	checkBlock(t, c, id(1, 2), blockstore.MemorySer, 1000) // priority 5 stayed
	if m := s.Metrics().Blocks; m.MemoryBytes != 2500 || m.Evictions != 2 || m.EvictedToDisk != 1 {
		t.Fatalf("metrics %+v", m)
	}
}

// rawPut sends chunks on a PutBlock stream as given, on a connection of
// its own to c's node, and returns the call's error.
func rawPut(c *nodeclient.Client, chunks ...*shufflepb.PutBlockChunk) error {
	conn, err := grpc.NewClient(c.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), nodewire.AppTokenMetadataKey, nodetest.AppToken)
	stream, err := shufflepb.NewShuffleClient(conn).PutBlock(ctx)
	if err != nil {
		return nodewire.FromStatus(err)
	}
	for _, ch := range chunks {
		if err := stream.Send(ch); err != nil {
			break // the node ended the call; CloseAndRecv says why
		}
	}
	_, err = stream.CloseAndRecv()
	return nodewire.FromStatus(err)
}

func header(app string, rdd, part int64, level shufflepb.BlockLevel, data []byte) *shufflepb.PutBlockHeader {
	return &shufflepb.PutBlockHeader{
		Id:    &shufflepb.BlockId{App: app, Rdd: rdd, Partition: part},
		Level: level, Size: uint64(len(data)), Crc32C: nodewire.Checksum(data),
	}
}

func TestBlockHandlerErrors(t *testing.T) {
	const maxBlock = 1 << 20
	s, c := newTestServer(t, func(o *Options) { o.CacheBytes = 1 << 20; o.MaxBlockBytes = maxBlock })
	_, diskOnly := newTestServer(t) // CacheBytes 0
	ctx := context.Background()
	nodetest.Register(t, c, "app")
	nodetest.Register(t, diskOnly, "app")
	good := blockstore.BlockID{App: "app", RDD: 1, Partition: 1}
	mustPutBlock(t, c, good, blockstore.MemorySer, 0, 1000)

	data := []byte("0123456789")
	mem := shufflepb.BlockLevel_BLOCK_LEVEL_MEMORY_SER
	put := func(id blockstore.BlockID, level blockstore.Level) func() error {
		return func() error { _, _, err := c.PutBlock(ctx, id, level, 0, data); return err }
	}
	get := func(id blockstore.BlockID) func() error {
		return func() error { _, _, _, err := c.GetBlock(ctx, id); return err }
	}
	tests := []struct {
		name string
		call func() error
		want error
		code codes.Code
	}{
		{"put ../x", put(blockstore.BlockID{App: "../x", RDD: 1}, blockstore.MemorySer), blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put empty app", put(blockstore.BlockID{RDD: 1}, blockstore.MemorySer), blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put negative rdd", put(blockstore.BlockID{App: "app", RDD: -1}, blockstore.MemorySer), blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put partition 2^31", put(blockstore.BlockID{App: "app", Partition: 1 << 31}, blockstore.MemorySer), blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put rdd 2^32+1", put(blockstore.BlockID{App: "app", RDD: 1<<32 + 1}, blockstore.MemorySer), blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put level None", put(good, blockstore.None), blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put level 9", put(good, blockstore.Level(9)), blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put unknown app", put(blockstore.BlockID{App: "nope"}, blockstore.MemorySer), shuffle.ErrUnknownApp, codes.NotFound},
		{"put memory without memory", func() error {
			_, _, err := diskOnly.PutBlock(ctx, good, blockstore.MemoryAndDisk, 0, data)
			return err
		}, blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put oversized (header only)", func() error {
			h := header("app", 1, 2, mem, nil)
			h.Size = maxBlock + 1
			return rawPut(c, &shufflepb.PutBlockChunk{Header: h})
		}, blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put oversized (client)", func() error {
			_, _, err := c.PutBlock(ctx, good, blockstore.DiskOnly, 0, make([]byte, maxBlock+1))
			return err
		}, blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put shorter than announced", func() error {
			h := header("app", 1, 2, mem, data)
			h.Size++
			return rawPut(c, &shufflepb.PutBlockChunk{Header: h, Data: data})
		}, blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put longer than announced", func() error {
			return rawPut(c, &shufflepb.PutBlockChunk{Header: header("app", 1, 2, mem, data), Data: data}, &shufflepb.PutBlockChunk{Data: []byte("x")})
		}, blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put without header", func() error { return rawPut(c, &shufflepb.PutBlockChunk{Data: data}) }, blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put empty stream", func() error { return rawPut(c) }, blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put two headers", func() error {
			return rawPut(c, &shufflepb.PutBlockChunk{Header: header("app", 1, 2, mem, data), Data: data[:5]}, &shufflepb.PutBlockChunk{Header: header("app", 1, 2, mem, data), Data: data[5:]})
		}, blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"put damaged in flight", func() error {
			h := header("app", 1, 2, mem, data)
			return rawPut(c, &shufflepb.PutBlockChunk{Header: h, Data: []byte("0123456788")})
		}, shuffle.ErrCorrupt, codes.DataLoss},
		{"get ../x", get(blockstore.BlockID{App: "../x"}), blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"get negative partition", get(blockstore.BlockID{App: "app", Partition: -1}), blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"get unknown app", get(blockstore.BlockID{App: "nope"}), shuffle.ErrUnknownApp, codes.NotFound},
		{"remove ../x", func() error { _, err := c.RemoveBlocks(ctx, "../x", 1); return err }, blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"remove negative rdd", func() error { _, err := c.RemoveBlocks(ctx, "app", -1); return err }, blockstore.ErrInvalidArgument, codes.InvalidArgument},
		{"remove unknown app", func() error { _, err := c.RemoveBlocks(ctx, "nope", 1); return err }, shuffle.ErrUnknownApp, codes.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) || status.Code(err) != tc.code {
				t.Fatalf("got %v (code %v), want %v (%v)", err, status.Code(err), tc.want, tc.code)
			}
			if shuffle.IsRetryable(err) {
				t.Errorf("%v is retryable", err)
			}
		})
	}
	// Nothing above was stored, nothing broke the node, and every byte
	// reserved for a put was given back.
	if m := s.Metrics(); m.BlockPuts != 1 || m.Blocks.MemoryBlocks != 1 || m.Blocks.DiskBlocks != 0 {
		t.Fatalf("metrics %+v", m)
	}
	if !s.putSem.TryAcquire(s.opts.BlockBytesInFlight) {
		t.Fatal("bytes of refused puts are still reserved")
	}
	s.putSem.Release(s.opts.BlockBytesInFlight)
	checkBlock(t, c, good, blockstore.MemorySer, 1000)
	mustPutBlock(t, c, blockstore.BlockID{App: "app", RDD: 1, Partition: 2}, blockstore.MemorySer, 0, maxBlock)
}

// TestPutBlockWaitsForBytesInFlight: a put whose size does not fit in
// BlockBytesInFlight waits for the puts before it, and gives up with its
// context.
func TestPutBlockWaitsForBytesInFlight(t *testing.T) {
	s, c := newTestServer(t, func(o *Options) { o.MaxBlockBytes = 1000; o.BlockBytesInFlight = 1000 })
	nodetest.Register(t, c, "app")
	if !s.putSem.TryAcquire(1) { // as a put being received would
		t.Fatal("semaphore busy")
	}
	id := blockstore.BlockID{App: "app", RDD: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.PutBlock(ctx, id, blockstore.DiskOnly, 0, make([]byte, 1000)); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("put with no room: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := c.PutBlock(context.Background(), id, blockstore.DiskOnly, 0, blockBytes(id, 1000))
		done <- err
	}()
	poll.WaitFor(t, 10*time.Second, "the put to wait for room", func() bool {
		// 999 bytes are free, so TryAcquire(1) fails only while a put
		// waits in line.
		if s.putSem.TryAcquire(1) {
			s.putSem.Release(1)
			return false
		}
		return true
	})
	if len(done) != 0 {
		t.Fatalf("the put did not wait: %v", <-done)
	}
	s.putSem.Release(1)
	if err := <-done; err != nil {
		t.Fatalf("put after room was made: %v", err)
	}
	checkBlock(t, c, id, blockstore.DiskOnly, 1000)
}

func TestRemoveBlocks(t *testing.T) {
	s, c := newTestServer(t, func(o *Options) { o.CacheBytes = 1 << 20 })
	ctx := context.Background()
	nodetest.Register(t, c, "app")
	l := s.Layout()
	for p := range 4 {
		mustPutBlock(t, c, blockstore.BlockID{App: "app", RDD: 1, Partition: p}, blockstore.MemorySer, 0, 10000)
		mustPutBlock(t, c, blockstore.BlockID{App: "app", RDD: 1, Partition: 10 + p}, blockstore.DiskOnly, 0, 10000)
		mustPutBlock(t, c, blockstore.BlockID{App: "app", RDD: 2, Partition: p}, blockstore.MemoryAndDisk, 0, 3000)
		mustPutBlock(t, c, blockstore.BlockID{App: "app", RDD: 2, Partition: 10 + p}, blockstore.DiskOnly, 0, 3000)
	}
	if files := blockFilesOf(t, l, "app"); len(files) != 8 {
		t.Fatalf("block files %v", files)
	}
	n, err := c.RemoveBlocks(ctx, "app", 1)
	if err != nil || n != 8 {
		t.Fatalf("RemoveBlocks(app, 1) = %d, %v; want 8", n, err)
	}
	// Freed at once: the next status shows it.
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b := st.GetBlocks(); b.GetMemoryBytes() != 4*3000 || b.GetMemoryBlocks() != 4 || b.GetDiskBlocks() != 4 || b.GetDiskBytes() != 4*3000 {
		t.Fatalf("status after RemoveBlocks: %v", b)
	}
	files := blockFilesOf(t, l, "app")
	for _, f := range files {
		if strings.Contains(filepath.Base(f), "rdd-1-") {
			t.Fatalf("file of a removed RDD left: %s", f)
		}
	}
	if len(files) != 4 {
		t.Fatalf("block files %v", files)
	}
	checkNoBlock(t, c, blockstore.BlockID{App: "app", RDD: 1, Partition: 0})
	checkNoBlock(t, c, blockstore.BlockID{App: "app", RDD: 1, Partition: 10})
	checkBlock(t, c, blockstore.BlockID{App: "app", RDD: 2, Partition: 0}, blockstore.MemoryAndDisk, 3000)
	checkBlock(t, c, blockstore.BlockID{App: "app", RDD: 2, Partition: 10}, blockstore.DiskOnly, 3000)
	if n, err := c.RemoveBlocks(ctx, "app", 1); err != nil || n != 0 {
		t.Fatalf("second RemoveBlocks = %d, %v", n, err)
	}
	if keys := blockKeys(t, s); len(keys) != 4 {
		t.Fatalf("catalogue keys %q", keys)
	}
}

// TestRemoveAppRemovesBlocks: RemoveApp and the TTL janitor remove an
// application's blocks with its shuffle files: memory freed, files and
// records gone, nothing served again if the application comes back.
func TestRemoveAppRemovesBlocks(t *testing.T) {
	s, c := newTestServer(t, func(o *Options) { o.CacheBytes = 1 << 20; o.JanitorInterval = 5 * time.Millisecond })
	ctx := context.Background()
	l := s.Layout()
	nodetest.Register(t, c, "app")
	nodetest.Register(t, c, "other")
	out, _ := writeSortedOutput(t, l, "app", 0, 0, 0, genFixtureBlocks(1, 3))
	mustCommit(t, c, "app", out)
	for _, app := range []string{"app", "other", "short"} {
		if app == "short" {
			// Its puts must come within its TTL: neither puts nor gets
			// keep an application alive, only heartbeats.
			if err := c.RegisterApp(ctx, "short", time.Second); err != nil {
				t.Fatal(err)
			}
		}
		for p := range 3 {
			mustPutBlock(t, c, blockstore.BlockID{App: app, RDD: 1, Partition: p}, blockstore.MemorySer, 0, 1000)
			mustPutBlock(t, c, blockstore.BlockID{App: app, RDD: 2, Partition: p}, blockstore.DiskOnly, 0, 1000)
		}
	}
	// Poll with Status: a put or a heartbeat would keep "short" alive.
	poll.WaitFor(t, 10*time.Second, "app short to expire with its blocks", func() bool {
		st, err := c.Status(ctx)
		// Expiry moves the app's directories to the trash, then empties
		// it: done when both are gone.
		return err == nil && st.Apps == 2 && st.GetBlocks().GetMemoryBlocks() == 6 && len(listTree(t, l.AppDirs("short")...)) == 0 &&
			len(listTree(t, filepath.Join(l.Dirs[0], ".trash"), filepath.Join(l.Dirs[1], ".trash"))) == 0
	})
	if err := c.RemoveApp(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if files := listTree(t, l.AppDirs("app")...); len(files) != 0 {
		t.Fatalf("files left: %v", files)
	}
	if files := listTree(t, filepath.Join(l.Dirs[0], ".trash"), filepath.Join(l.Dirs[1], ".trash")); len(files) != 0 {
		t.Fatalf("trash left: %v", files)
	}
	m := s.Metrics().Blocks
	if m.MemoryBytes != 3000 || m.MemoryBlocks != 3 || m.DiskBlocks != 3 {
		t.Fatalf("metrics after removals: %+v", m)
	}
	for _, k := range blockKeys(t, s) {
		if !strings.HasPrefix(k, blockstore.CatalogPrefix+"other\x00") {
			t.Fatalf("catalogue key %q of a removed application", k)
		}
	}
	if _, _, _, err := c.GetBlock(ctx, blockstore.BlockID{App: "app", RDD: 2}); !errors.Is(err, shuffle.ErrUnknownApp) {
		t.Fatalf("get of a removed app: %v", err)
	}
	for _, app := range []string{"app", "short"} {
		nodetest.Register(t, c, app)
		checkNoBlock(t, c, blockstore.BlockID{App: app, RDD: 1})
		checkNoBlock(t, c, blockstore.BlockID{App: app, RDD: 2})
	}
	checkBlock(t, c, blockstore.BlockID{App: "other", RDD: 2, Partition: 2}, blockstore.DiskOnly, 1000)
}

// TestBlocksRaceRemoveApp puts and gets blocks while their application
// is removed and registered again, over and over, and removed for good.
// Puts fail only with shuffle.ErrUnknownApp, and when the dust settles none of the
// application's blocks is left: not in memory, not in the catalogue, not
// on disk.
func TestBlocksRaceRemoveApp(t *testing.T) {
	s, c := newTestServer(t, func(o *Options) { o.CacheBytes = 64 << 10 })
	ctx := context.Background()
	nodetest.Register(t, c, "app")
	nodetest.Register(t, c, "other")
	stop := make(chan struct{})
	var refused, stored atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 4 {
		wg.Go(func() {
			levels := []blockstore.Level{blockstore.MemorySer, blockstore.MemoryAndDisk, blockstore.DiskOnly}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				app := []string{"app", "other"}[i%2]
				id := blockstore.BlockID{App: app, RDD: g, Partition: i % 50}
				_, _, err := c.PutBlock(ctx, id, levels[i%3], 0, blockBytes(id, 1000+i%7000))
				if errors.Is(err, shuffle.ErrUnknownApp) {
					refused.Add(1)
				} else {
					stored.Add(1)
				}
				if err != nil && !errors.Is(err, shuffle.ErrUnknownApp) {
					errs <- fmt.Errorf("put %s: %w", id, err)
					return
				}
				data, _, found, err := c.GetBlock(ctx, id)
				if err != nil && !errors.Is(err, shuffle.ErrUnknownApp) {
					errs <- fmt.Errorf("get %s: %w", id, err)
					return
				}
				if found && len(data) > 0 && !bytes.Equal(data, blockBytes(id, len(data))) {
					errs <- fmt.Errorf("get %s: wrong bytes", id)
					return
				}
			}
		})
	}
	for range 30 {
		if err := c.RemoveApp(ctx, "app"); err != nil {
			t.Fatal(err)
		}
		nodetest.Register(t, c, "app")
	}
	// The last removal too races the puts: one received before it must
	// not leave its block behind.
	if err := c.RemoveApp(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	close(errs)
	t.Logf("%d puts stored, %d refused for an unknown application", stored.Load(), refused.Load())
	for err := range errs {
		t.Error(err)
	}
	for _, a := range s.blocks.Apps() {
		if a == "app" {
			t.Fatal("the block store still holds blocks of the removed application")
		}
	}
	for _, k := range blockKeys(t, s) {
		if strings.HasPrefix(k, blockstore.CatalogPrefix+"app\x00") {
			t.Fatalf("catalogue key %q of the removed application", k)
		}
	}
	if files := blockFilesOf(t, s.Layout(), "app"); len(files) != 0 {
		t.Fatalf("block files of the removed application: %v", files)
	}
	if m := s.Metrics().Blocks; m.MemoryBytes > s.opts.CacheBytes {
		t.Fatalf("memory %d above %d", m.MemoryBytes, s.opts.CacheBytes)
	}
}

// TestStartupKeepsCataloguedBlocks: a node restarted on its directories
// serves its disk blocks again (the shuffle catalogue's loader leaves the
// block store's records alone, the sweep leaves their files alone), drops
// stray block files, and removes the blocks of an application its
// catalogue no longer knows.
func TestStartupKeepsCataloguedBlocks(t *testing.T) {
	opts := testNodeOptions(t)
	opts.CacheBytes = 1 << 20
	s, c := startTestServer(t, opts)
	l := s.Layout()
	nodetest.Register(t, c, "app")
	nodetest.Register(t, c, "gone")
	out, _ := writeSortedOutput(t, l, "app", 0, 0, 0, genFixtureBlocks(1, 3))
	mustCommit(t, c, "app", out)
	kept := blockstore.BlockID{App: "app", RDD: 1, Partition: 3}
	mustPutBlock(t, c, kept, blockstore.DiskOnly, 0, 5000)
	mustPutBlock(t, c, blockstore.BlockID{App: "app", RDD: 2}, blockstore.MemoryAndDisk, 0, 5000)
	mustPutBlock(t, c, blockstore.BlockID{App: "gone", RDD: 1}, blockstore.DiskOnly, 0, 5000)
	// As if the node died between RemoveApp's catalogue writes: the
	// application's record is gone, its blocks' are not.
	if err := s.cat.db.Delete(appKey("gone"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(l.Dirs[1], "app", blockstore.BlocksDirName, "rdd-7-part-0-99.blk")
	writeFile(t, stray, []byte("stray"))
	// The directory of an application nobody knows: a shuffle and a block
	// that no catalogue lists.
	unknown := filepath.Join(l.Dirs[0], "unknown")
	writeFile(t, filepath.Join(unknown, "shuffle-0", "map-0-0.data"), []byte("data"))
	writeFile(t, filepath.Join(unknown, blockstore.BlocksDirName, "rdd-1-part-0-5.blk"), []byte("block"))

	s2, c2 := startTestServer(t, opts)
	checkBlock(t, c2, kept, blockstore.DiskOnly, 5000)
	checkNoBlock(t, c2, blockstore.BlockID{App: "app", RDD: 2})
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Fatalf("stray block file: %v", err)
	}
	if files := listTree(t, l.AppDirs("gone")...); len(files) != 0 {
		t.Fatalf("files of an application the catalogue lost: %v", files)
	}
	for _, d := range l.AppDirs("gone") {
		if _, err := os.Stat(filepath.Join(d, blockstore.BlocksDirName)); !os.IsNotExist(err) {
			t.Fatalf("blocks directory of an application the catalogue lost: %s (%v)", d, err)
		}
	}
	if _, err := os.Stat(unknown); !os.IsNotExist(err) {
		t.Fatalf("directory of an unknown application left: %s (%v)", unknown, err)
	}
	if keys := blockKeys(t, s2); len(keys) != 1 {
		t.Fatalf("catalogue keys %q, want the kept block's only", keys)
	}
	if m := s2.Metrics(); m.Apps != 1 || m.MapOutputs != 1 || m.Blocks.DiskBlocks != 1 || m.Blocks.MemoryBlocks != 0 {
		t.Fatalf("metrics after restart %+v", m)
	}
	if _, err := fetchBlocks(t, c2, "app", 0, DefaultChunkSize, &shufflepb.BlockRange{ReduceEnd: 3}); err != nil {
		t.Fatal(err)
	}
}
