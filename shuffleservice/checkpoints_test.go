package shuffleservice

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"shoal/checkpoint"
	"shoal/internal/poll"
	"shoal/shuffleservice/internal/nodetest"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// flakyStore is a checkpoint store that refuses every Put and Get while
// down is set, and counts them.
type flakyStore struct {
	checkpoint.Store
	down       atomic.Bool
	puts, gets atomic.Int64
}

var errStoreDown = errors.New("test store is down")

func (s *flakyStore) Put(ctx context.Context, key string, data []byte) error {
	if s.down.Load() {
		return fmt.Errorf("%w: %w", checkpoint.ErrUnavailable, errStoreDown)
	}
	s.puts.Add(1)
	return s.Store.Put(ctx, key, data)
}

func (s *flakyStore) Get(ctx context.Context, key string) ([]byte, error) {
	if s.down.Load() {
		return nil, fmt.Errorf("%w: %w", checkpoint.ErrUnavailable, errStoreDown)
	}
	s.gets.Add(1)
	return s.Store.Get(ctx, key)
}

const testCkptStore = "s3://test-bucket/ckpt"

// ckptOptions gives a node the checkpoint store st, with fast retries.
func ckptOptions(st checkpoint.Store) func(*Options) {
	return func(o *Options) {
		o.CheckpointDir = testCkptStore
		o.OpenCheckpointStore = func(context.Context) (checkpoint.Store, error) { return st, nil }
		o.CheckpointMaxBackoff = 50 * time.Millisecond
	}
}

func newFlakyStore(t *testing.T) *flakyStore {
	mem, err := checkpoint.NewMem(t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return &flakyStore{Store: mem}
}

// testPartition encodes partition part of checkpoint "ck" of run a/r.
func testPartition(t testing.TB, part, n int) (nodeclient.CheckpointPart, []byte) {
	t.Helper()
	// Random bytes, which s2 does not shrink: the object is n bytes and
	// a header.
	raw := make([]byte, n)
	rng := rand.New(rand.NewPCG(uint64(part), 1))
	for i := range raw {
		raw[i] = byte(rng.Uint32())
	}
	obj, info, err := checkpoint.EncodePartition("ck", part, raw)
	if err != nil {
		t.Fatal(err)
	}
	return nodeclient.CheckpointPart{Store: testCkptStore, Key: "app/r/" + info.Key, Size: info.Size, CRC32C: info.CRC32C}, obj
}

func partState(t testing.TB, c *nodeclient.Client, app string, key string) *shufflepb.CheckpointPartState {
	t.Helper()
	st, err := c.CheckpointStatus(context.Background(), app, testCkptStore, []string{key})
	if err != nil {
		t.Fatal(err)
	}
	return st[0]
}

func waitDurable(t testing.TB, c *nodeclient.Client, app, key string) {
	t.Helper()
	poll.WaitFor(t, 10*time.Second, key+" durable", func() bool {
		return partState(t, c, app, key).GetState() == shufflepb.CheckpointState_CHECKPOINT_STATE_DURABLE
	})
}

// TestCheckpointHandOff: a partition handed to the node is committed,
// uploaded to the store byte for byte, reported durable, and then served
// from the node's local copy; handed again, it is answered held.
func TestCheckpointHandOff(t *testing.T) {
	st := newFlakyStore(t)
	s, c := newTestServer(t, ckptOptions(st))
	nodetest.Register(t, c, "app")
	ctx := context.Background()
	part, obj := testPartition(t, 3, 1000)
	if held, err := c.PutCheckpoint(ctx, "app", part, obj); err != nil || held {
		t.Fatalf("PutCheckpoint: held %v, %v", held, err)
	}
	waitDurable(t, c, "app", part.Key)
	got, err := st.Store.Get(ctx, part.Key)
	if err != nil || !bytes.Equal(got, obj) {
		t.Fatalf("the store holds %d bytes (%v), want the %d handed over", len(got), err, len(obj))
	}
	if held, err := c.PutCheckpoint(ctx, "app", part, obj); err != nil || !held {
		t.Fatalf("PutCheckpoint again: held %v, %v; want held", held, err)
	}
	data, fromStore, err := c.GetCheckpoint(ctx, "app", part)
	if err != nil || fromStore || !bytes.Equal(data, obj) {
		t.Fatalf("GetCheckpoint: %d bytes, from store %v, %v; want the local copy", len(data), fromStore, err)
	}
	m := s.Metrics().Checkpoints
	if m.Handoffs != 1 || m.HandoffsHeld != 1 || m.Uploads != 1 || m.LocalReads != 1 || m.StoreReads != 0 || st.puts.Load() != 1 || st.gets.Load() != 0 {
		t.Fatalf("metrics %+v, store puts %d gets %d", m, st.puts.Load(), st.gets.Load())
	}
	// Another application's token is refused before the handler.
	other, err := nodeclient.Dial(c.Addr(), nodeclient.WithAppToken("another"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, _, err := other.GetCheckpoint(ctx, "app", part); !errors.Is(err, shuffle.ErrPermissionDenied) {
		t.Fatalf("GetCheckpoint with another token: %v, want ErrPermissionDenied", err)
	}
}

// TestCheckpointRefusals: bad hand-offs are refused with errors that say
// why, and leave nothing behind.
func TestCheckpointRefusals(t *testing.T) {
	st := newFlakyStore(t)
	s, c := newTestServer(t, ckptOptions(st))
	nodetest.Register(t, c, "app")
	ctx := context.Background()
	part, obj := testPartition(t, 0, 100)
	other := part
	other.Store = "s3://elsewhere/x"
	if _, err := c.PutCheckpoint(ctx, "app", other, obj); !errors.Is(err, shuffle.ErrNoCheckpointStore) {
		t.Errorf("another store: %v, want ErrNoCheckpointStore", err)
	}
	damaged := bytes.Clone(obj)
	damaged[len(damaged)-1] ^= 1
	if _, err := c.PutCheckpoint(ctx, "app", part, damaged); !errors.Is(err, shuffle.ErrCorrupt) {
		t.Errorf("damaged: %v, want ErrCorrupt", err)
	}
	if _, err := c.PutCheckpoint(ctx, "app", part, obj[:len(obj)-1]); !errors.Is(err, shuffle.ErrInvalidArgument) && !errors.Is(err, shuffle.ErrCorrupt) {
		t.Errorf("short: %v, want ErrInvalidArgument or ErrCorrupt", err)
	}
	bad := part
	bad.Key = "a/../x"
	if _, err := c.PutCheckpoint(ctx, "app", bad, obj); !errors.Is(err, shuffle.ErrInvalidArgument) {
		t.Errorf("bad key: %v, want ErrInvalidArgument", err)
	}
	nobody := part
	nobody.Key = strings.Replace(part.Key, "app/", "nobody/", 1)
	if _, err := c.PutCheckpoint(ctx, "nobody", nobody, obj); !errors.Is(err, shuffle.ErrUnknownApp) {
		t.Errorf("unknown application: %v, want ErrUnknownApp", err)
	}
	// Another application's runs: it may read them, not write them.
	theirs := part
	theirs.Key = strings.Replace(part.Key, "app/", "other/", 1)
	if _, err := c.PutCheckpoint(ctx, "app", theirs, obj); !errors.Is(err, shuffle.ErrPermissionDenied) || !strings.Contains(err.Error(), "writes only under app/") {
		t.Errorf("a partition under another application's runs: %v, want ErrPermissionDenied", err)
	}
	if m := s.Metrics().Checkpoints; m.Handoffs != 0 || m.QueuedBytes != 0 {
		t.Fatalf("after refusals: %+v", m)
	}
	entries, _ := os.ReadDir(filepath.Join(s.opts.Dirs[0], ckptDirName))
	if len(entries) != 0 {
		t.Fatalf("files left after refusals: %v", entries)
	}
	// A node without a checkpoint store refuses every hand-off.
	_, c2 := newTestServer(t)
	nodetest.Register(t, c2, "app")
	if _, err := c2.PutCheckpoint(ctx, "app", part, obj); !errors.Is(err, shuffle.ErrNoCheckpointStore) {
		t.Errorf("node without a store: %v, want ErrNoCheckpointStore", err)
	}
}

// TestCheckpointBackPressureAndRetry: while the store is down, uploads
// fail and are retried (the status says why); once the queue's bytes are
// taken, a hand-off is refused with ErrQueueFull; when the store comes
// back, every queued partition becomes durable and the queue has room
// again.
func TestCheckpointBackPressureAndRetry(t *testing.T) {
	st := newFlakyStore(t)
	st.down.Store(true)
	part0, obj0 := testPartition(t, 0, 4000)
	s, c := newTestServer(t, ckptOptions(st), func(o *Options) {
		o.MaxBlockBytes = int64(len(obj0)) + 1024
		o.CheckpointQueueBytes = 2*int64(len(obj0)) + 1024
	})
	nodetest.Register(t, c, "app")
	ctx := context.Background()
	part1, obj1 := testPartition(t, 1, 4000)
	part2, obj2 := testPartition(t, 2, 4000)
	for _, p := range []struct {
		part nodeclient.CheckpointPart
		obj  []byte
	}{{part0, obj0}, {part1, obj1}} {
		if _, err := c.PutCheckpoint(ctx, "app", p.part, p.obj); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PutCheckpoint(ctx, "app", part2, obj2); !errors.Is(err, shuffle.ErrQueueFull) || !shuffle.IsRetryable(err) {
		t.Fatalf("third hand-off with the queue full: %v, want ErrQueueFull (retryable)", err)
	}
	poll.WaitFor(t, 10*time.Second, "failed uploads reported", func() bool {
		ps := partState(t, c, "app", part0.Key)
		return ps.GetFailedAttempts() >= 2 && ps.GetState() == shufflepb.CheckpointState_CHECKPOINT_STATE_QUEUED && bytes.Contains([]byte(ps.GetLastError()), []byte(errStoreDown.Error()))
	})
	st.down.Store(false)
	waitDurable(t, c, "app", part0.Key)
	waitDurable(t, c, "app", part1.Key)
	if _, err := c.PutCheckpoint(ctx, "app", part2, obj2); err != nil {
		t.Fatalf("hand-off once the queue emptied: %v", err)
	}
	waitDurable(t, c, "app", part2.Key)
	if m := s.Metrics().Checkpoints; m.Uploads != 3 || m.RefusedFull != 1 || m.QueuedBytes != 0 || m.UploadFailures < 2 {
		t.Fatalf("metrics %+v", m)
	}
}

// TestCheckpointSurvivesRestart: partitions handed over while the store
// is down are still queued after the node is closed and opened again on
// its directories and catalogue, and are uploaded then; a durable one
// keeps its local copy.
func TestCheckpointSurvivesRestart(t *testing.T) {
	st := newFlakyStore(t)
	opts := testNodeOptions(t)
	ckptOptions(st)(&opts)
	s1, c1 := startTestServer(t, opts)
	nodetest.Register(t, c1, "app")
	ctx := context.Background()
	done, objDone := testPartition(t, 0, 500)
	if _, err := c1.PutCheckpoint(ctx, "app", done, objDone); err != nil {
		t.Fatal(err)
	}
	waitDurable(t, c1, "app", done.Key)
	st.down.Store(true)
	queued, objQueued := testPartition(t, 1, 500)
	if _, err := c1.PutCheckpoint(ctx, "app", queued, objQueued); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	st.down.Store(false)
	s2, c2 := startTestServer(t, opts)
	waitDurable(t, c2, "app", queued.Key)
	got, err := st.Store.Get(ctx, queued.Key)
	if err != nil || !bytes.Equal(got, objQueued) {
		t.Fatalf("after the restart the store holds %d bytes (%v), want the %d handed over before", len(got), err, len(objQueued))
	}
	if _, fromStore, err := c2.GetCheckpoint(ctx, "app", done); err != nil || fromStore {
		t.Fatalf("GetCheckpoint of the copy kept across the restart: from store %v, %v", fromStore, err)
	}
	if m := s2.Metrics().Checkpoints; m.Uploads != 1 || m.StoreReads != 0 {
		t.Fatalf("after the restart: %+v, want 1 upload (the queued one) and no store read", m)
	}
}

// TestCheckpointReadThroughAndEviction: a partition the node does not
// hold is read from the store and kept; copies beyond CopyBytes are
// evicted, least recently used first, and read through again; removing
// the application deletes its copies.
func TestCheckpointReadThroughAndEviction(t *testing.T) {
	st := newFlakyStore(t)
	ctx := context.Background()
	var parts []nodeclient.CheckpointPart
	var objs [][]byte
	for i := range 3 {
		p, obj := testPartition(t, i, 2000)
		if err := st.Store.Put(ctx, p.Key, obj); err != nil {
			t.Fatal(err)
		}
		parts, objs = append(parts, p), append(objs, obj)
	}
	s, c := newTestServer(t, ckptOptions(st), func(o *Options) { o.CheckpointCopyBytes = 2*parts[0].Size + 100 })
	nodetest.Register(t, c, "app")
	get := func(i int, wantFromStore bool) {
		t.Helper()
		data, fromStore, err := c.GetCheckpoint(ctx, "app", parts[i])
		if err != nil || !bytes.Equal(data, objs[i]) || fromStore != wantFromStore {
			t.Fatalf("GetCheckpoint %d: %d bytes, from store %v, %v; want from store %v", i, len(data), fromStore, err, wantFromStore)
		}
	}
	get(0, true)
	get(0, false)
	get(1, true)
	get(0, false) // 1 is now the least recently used
	get(2, true)  // evicts 1
	get(0, false)
	get(1, true)
	if m := s.Metrics().Checkpoints; m.CopiesEvicted != 2 || m.StoreReads != 4 || m.CopyBytes > 2*parts[0].Size+100 {
		t.Fatalf("metrics %+v", m)
	}
	damaged := parts[2]
	damaged.CRC32C ^= 1
	if _, _, err := c.GetCheckpoint(ctx, "app", damaged); !errors.Is(err, shuffle.ErrCorrupt) {
		t.Fatalf("GetCheckpoint with a checksum the object does not have: %v, want ErrCorrupt", err)
	}
	st.down.Store(true)
	missing, _ := testPartition(t, 9, 10)
	if _, _, err := c.GetCheckpoint(ctx, "app", missing); !errors.Is(err, shuffle.ErrCheckpointStore) {
		t.Fatalf("GetCheckpoint with the store down: %v, want ErrCheckpointStore", err)
	}
	if err := c.RemoveApp(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if m := s.Metrics().Checkpoints; m.CopyBytes != 0 {
		t.Fatalf("after RemoveApp: %+v", m)
	}
	entries, _ := os.ReadDir(filepath.Join(s.opts.Dirs[0], ckptDirName))
	if len(entries) != 0 {
		t.Fatalf("files left after RemoveApp: %v", entries)
	}
}
