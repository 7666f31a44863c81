package shuffleservice

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"shoal/checkpoint"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// The checkpoint uploader (doc.go, "Checkpoints"): the node's share of
// docs/DESIGN.md §5. A task hands the encoded partition of a checkpoint
// to its node (PutCheckpoint); the uploader commits it (a file in
// DIR0/.checkpoints, fsynced, and a catalogue record, synced) and uploads
// it to the node's checkpoint store in the background, Uploads at a
// time, retrying with backoff; the driver asks CheckpointStatus until it
// is durable. Once durable the file stays as a local copy, served by
// GetCheckpoint, until the copies exceed CopyBytes (least recently used
// first). Catalogue records:
//
//	k/APP \x00 KEY    ckptRecord: size, checksum, durable, has a file, times
//
// KEY is the object's key in the store (APP2/RUN/NAME/part-NNNNN).

// ckptPrefix starts the uploader's catalogue keys.
const ckptPrefix = "k/"

// ckptDirName is the uploader's directory in Dirs[0].
const ckptDirName = ".checkpoints"

func ckptAppPrefix(app string) []byte { return []byte(ckptPrefix + app + "\x00") }

func ckptCatKey(k ckptKey) []byte { return append(ckptAppPrefix(k.app), k.key...) }

// ckptKey names a partition the uploader holds: an application's object
// key in the store.
type ckptKey struct{ app, key string }

// fileName is the partition's file in the uploader's directory: a digest,
// since a key has '/'.
func (k ckptKey) fileName() string {
	h := sha256.Sum256([]byte(k.app + "\x00" + k.key))
	return hex.EncodeToString(h[:16]) + ".part"
}

// ckptPart is a partition the uploader holds. Guarded by uploader.mu.
type ckptPart struct {
	k         ckptKey
	size      int64
	crc       uint32
	hasFile   bool
	durable   bool
	handed    time.Time
	durableAt time.Time
	// Uploads: how many failed, why the last one did, when to try again,
	// whether one runs.
	failed    int
	lastErr   string
	nextTry   time.Time
	uploading bool
	removed   bool          // dropped while its upload ran: the upload's end deletes the file
	lru       *list.Element // in uploader.copies when durable with a file
}

// ckptRecord is a ckptPart in the catalogue.
type ckptRecord struct {
	size              int64
	crc               uint32
	durable, hasFile  bool
	handed, durableAt time.Time
}

func (r ckptRecord) marshal() []byte {
	b := []byte{1, 0}
	if r.durable {
		b[1] |= 1
	}
	if r.hasFile {
		b[1] |= 2
	}
	b = binary.AppendUvarint(b, uint64(r.size))
	b = binary.LittleEndian.AppendUint32(b, r.crc)
	b = binary.AppendVarint(b, r.handed.UnixMilli())
	return binary.AppendVarint(b, r.durableAt.UnixMilli())
}

func unmarshalCkptRecord(b []byte) (ckptRecord, error) {
	if len(b) < 2 || b[0] != 1 || b[1]&^3 != 0 {
		return ckptRecord{}, errors.New("checkpoint record version unknown")
	}
	r := ckptRecord{durable: b[1]&1 != 0, hasFile: b[1]&2 != 0}
	b = b[2:]
	size, n := binary.Uvarint(b)
	if n <= 0 || size > 1<<40 || len(b) < n+4 {
		return ckptRecord{}, errors.New("checkpoint record size unreadable")
	}
	r.size, r.crc = int64(size), binary.LittleEndian.Uint32(b[n:])
	b = b[n+4:]
	handed, n := binary.Varint(b)
	if n <= 0 {
		return ckptRecord{}, errors.New("checkpoint record time unreadable")
	}
	durable, m := binary.Varint(b[n:])
	if m <= 0 || n+m != len(b) {
		return ckptRecord{}, errors.New("checkpoint record time unreadable")
	}
	r.handed, r.durableAt = time.UnixMilli(handed), time.UnixMilli(durable)
	return r, nil
}

func (p *ckptPart) record() ckptRecord {
	return ckptRecord{size: p.size, crc: p.crc, durable: p.durable, hasFile: p.hasFile, handed: p.handed, durableAt: p.durableAt}
}

// uploaderOptions configure an uploader (from the node's Options).
type uploaderOptions struct {
	dir        string // where the partitions' files are
	store      string // the store's URI; "" refuses every hand-off
	open       func(ctx context.Context) (checkpoint.Store, error)
	uploads    int
	queueBytes int64
	copyBytes  int64
	putTimeout time.Duration
	maxBackoff time.Duration
}

// uploader holds the node's checkpoint partitions and uploads them. One
// value, owned by the Server, from Open to Close; its methods are safe
// for concurrent use and fail with shuffle.ErrClosed after Close.
//
// Lock order: uploader.mu is a leaf (never held across I/O, except the
// catalogue writes of ckptRecords, which are pebble calls on a local
// disk, as the Server's catMu section does).
type uploader struct {
	opts uploaderOptions
	db   *pebble.DB
	log  *slog.Logger

	ctx    context.Context // ends at close: stops uploads and opens
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{} // a part became ready to upload (buffered, 1)

	mu     sync.Mutex
	closed bool
	parts  map[ckptKey]*ckptPart
	queued int64      // bytes reserved or held by parts not yet durable
	copied int64      // bytes of durable parts' files
	copies *list.List // of *ckptPart: durable with a file, least recently used first
	st     checkpoint.Store

	m uploaderCounters
}

type uploaderCounters struct {
	handoffs, handoffsHeld, refusedFull         atomic.Uint64
	uploads, uploadFailures, bytesUploaded      atomic.Uint64
	localReads, storeReads, copiesEvicted, gets atomic.Uint64
}

// UploaderMetrics is the checkpoint uploader's part of Metrics.
type UploaderMetrics struct {
	Handoffs       uint64 // partitions committed by PutCheckpoint
	HandoffsHeld   uint64 // PutCheckpoint calls answered "held already"
	RefusedFull    uint64 // PutCheckpoint calls refused: the queue was full
	Uploads        uint64 // partitions made durable in the store
	UploadFailures uint64 // upload attempts that failed (each retried)
	BytesUploaded  uint64
	LocalReads     uint64 // GetCheckpoint served from a local copy
	StoreReads     uint64 // GetCheckpoint read through from the store
	CopiesEvicted  uint64 // local copies deleted to stay under CopyBytes
	Queued         int    // partitions not yet durable
	QueuedBytes    int64
	CopyBytes      int64 // bytes of local copies
}

func (m UploaderMetrics) pb() *shufflepb.CheckpointStats {
	return &shufflepb.CheckpointStats{
		Handoffs: m.Handoffs, HandoffsHeld: m.HandoffsHeld, RefusedFull: m.RefusedFull,
		Uploads: m.Uploads, UploadFailures: m.UploadFailures, BytesUploaded: m.BytesUploaded,
		LocalReads: m.LocalReads, StoreReads: m.StoreReads, CopiesEvicted: m.CopiesEvicted,
		Queued: uint64(m.Queued), QueuedBytes: uint64(max(m.QueuedBytes, 0)), CopyBytes: uint64(max(m.CopyBytes, 0)),
	}
}

// openUploader loads the uploader's records from db, re-queues the
// partitions that were not durable and starts the uploads. Records of
// applications not in apps, and files no record names, are deleted.
func openUploader(opts uploaderOptions, db *pebble.DB, log *slog.Logger, apps map[string]bool) (*uploader, error) {
	if err := os.MkdirAll(opts.dir, 0o755); err != nil {
		return nil, fmt.Errorf("shuffle: checkpoint directory: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	u := &uploader{opts: opts, db: db, log: log.With("part", "checkpoints"), ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), parts: map[ckptKey]*ckptPart{}, copies: list.New()}
	if err := u.load(apps); err != nil {
		cancel()
		return nil, err
	}
	for range opts.uploads {
		u.wg.Add(1)
		go u.run()
	}
	return u, nil
}

// load rebuilds the parts from the catalogue and sweeps the directory.
func (u *uploader) load(apps map[string]bool) error {
	it, err := u.db.NewIter(&pebble.IterOptions{LowerBound: []byte(ckptPrefix), UpperBound: prefixEnd([]byte(ckptPrefix))})
	if err != nil {
		return fmt.Errorf("shuffle: read catalogue: %w", err)
	}
	var bad [][]byte
	now := time.Now()
	for ok := it.First(); ok; ok = it.Next() {
		k := bytes.Clone(it.Key())
		app, key, found := strings.Cut(string(k[len(ckptPrefix):]), "\x00")
		r, err := unmarshalCkptRecord(it.Value())
		switch {
		case !found || shuffle.ValidateID("application", app) != nil || checkpoint.CheckKey(key) != nil || err != nil:
			u.log.Warn("dropping unreadable checkpoint record", "key", fmt.Sprintf("%q", k), "err", err)
			bad = append(bad, k)
			continue
		case !apps[app]:
			bad = append(bad, k)
			continue
		}
		p := &ckptPart{k: ckptKey{app, key}, size: r.size, crc: r.crc, durable: r.durable, hasFile: r.hasFile, handed: r.handed, durableAt: r.durableAt, nextTry: now}
		if p.hasFile {
			if fi, err := os.Stat(u.path(p.k)); err != nil || fi.Size() != p.size {
				u.log.Warn("checkpoint partition file missing or damaged", "app", app, "key", key, "err", err)
				p.hasFile = false
			}
		}
		if !p.durable && !p.hasFile {
			bad = append(bad, k) // lost before it was uploaded: the driver recomputes it
			continue
		}
		u.parts[p.k] = p
		if p.durable {
			if p.hasFile {
				p.lru = u.copies.PushBack(p)
				u.copied += p.size
			}
		} else {
			u.queued += p.size
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("shuffle: read catalogue: %w", err)
	}
	if len(bad) > 0 {
		b := u.db.NewBatch()
		for _, k := range bad {
			_ = b.Delete(k, nil)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("shuffle: clean catalogue: %w", err)
		}
	}
	keep := map[string]bool{}
	for k, p := range u.parts {
		if p.hasFile {
			keep[k.fileName()] = true
		}
	}
	entries, err := os.ReadDir(u.opts.dir)
	if err != nil {
		return fmt.Errorf("shuffle: sweep checkpoint directory: %w", err)
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			_ = os.Remove(filepath.Join(u.opts.dir, e.Name()))
		}
	}
	if n := len(u.parts); n > 0 {
		u.log.Info("checkpoint partitions recovered", "partitions", n, "queued_bytes", u.queued, "copy_bytes", u.copied)
	}
	return nil
}

func (u *uploader) path(k ckptKey) string { return filepath.Join(u.opts.dir, k.fileName()) }

// checkStore fails unless store is the node's checkpoint store.
func (u *uploader) checkStore(store string) error {
	switch {
	case u.opts.store == "":
		return fmt.Errorf("%w: this node has no checkpoint store: start it with --checkpoint-dir %s (and the store's --s3-endpoint and AWS_ credentials)", shuffle.ErrNoCheckpointStore, store)
	case store != u.opts.store:
		return fmt.Errorf("%w: this node's checkpoint store is %s, not %s (start the node with --checkpoint-dir %s)", shuffle.ErrNoCheckpointStore, u.opts.store, store, store)
	}
	return nil
}

// reserve makes room in the queue for a hand-off of size bytes, or says
// that the node holds that partition already (held). The caller then
// commits (commit) or releases the reservation (release).
func (u *uploader) reserve(k ckptKey, size int64, crc uint32) (held bool, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return false, shuffle.ErrClosed
	}
	if p := u.parts[k]; p != nil && p.size == size && p.crc == crc {
		u.m.handoffsHeld.Add(1)
		return true, nil
	}
	if u.queued+size > u.opts.queueBytes {
		u.m.refusedFull.Add(1)
		return false, fmt.Errorf("%w: the node's checkpoint upload queue holds %d bytes, %d more would exceed its limit of %d (--checkpoint-queue-bytes): try again once uploads have finished",
			shuffle.ErrQueueFull, u.queued, size, u.opts.queueBytes)
	}
	u.queued += size
	return false, nil
}

func (u *uploader) release(size int64) {
	u.mu.Lock()
	u.queued -= size
	u.mu.Unlock()
}

// commit writes a reserved hand-off durably (file, fsync, rename,
// record) and queues its upload. A partition of the same key held
// before with other bytes (a non-deterministic partition) is replaced.
// On error the reservation is released and nothing is left.
func (u *uploader) commit(k ckptKey, crc uint32, data []byte) error {
	size := int64(len(data))
	final := u.path(k)
	tmp := final + shuffle.TempSuffix + fmt.Sprint(time.Now().UnixNano())
	if err := writeFileSync(tmp, data); err != nil {
		u.release(size)
		return fmt.Errorf("shuffle: checkpoint partition %s: %w", k.key, err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		u.queued -= size
		_ = os.Remove(tmp)
		return shuffle.ErrClosed
	}
	if old := u.parts[k]; old != nil {
		u.forgetLocked(old, false)
	}
	p := &ckptPart{k: k, size: size, crc: crc, hasFile: true, handed: time.Now(), nextTry: time.Now()}
	if err := os.Rename(tmp, final); err != nil {
		u.queued -= size
		_ = os.Remove(tmp)
		return fmt.Errorf("shuffle: checkpoint partition %s: %w", k.key, err)
	}
	if err := u.db.Set(ckptCatKey(k), p.record().marshal(), pebble.Sync); err != nil {
		u.queued -= size
		_ = os.Remove(final)
		return fmt.Errorf("shuffle: write catalogue: %w", err)
	}
	u.parts[k] = p
	u.m.handoffs.Add(1)
	u.signal()
	return nil
}

// forgetLocked removes p from the uploader's memory and accounting;
// deleteFile also deletes its file, unless an upload reads it (the
// upload's end does).
func (u *uploader) forgetLocked(p *ckptPart, deleteFile bool) {
	delete(u.parts, p.k)
	p.removed = true
	if p.lru != nil {
		u.copies.Remove(p.lru)
		p.lru = nil
		u.copied -= p.size
	} else if !p.durable {
		u.queued -= p.size
	}
	if deleteFile && p.hasFile && !p.uploading {
		_ = os.Remove(u.path(p.k))
	}
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
	}
	return err
}

func (u *uploader) signal() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// run uploads ready partitions until close.
func (u *uploader) run() {
	defer u.wg.Done()
	for {
		p := u.next()
		if p == nil {
			return
		}
		err := u.upload(p)
		u.finish(p, err)
	}
}

// next waits for a partition ready to upload (queued, not being
// uploaded, its backoff over), marks it uploading and returns it; nil at
// close.
func (u *uploader) next() *ckptPart {
	for {
		if u.ctx.Err() != nil {
			return nil
		}
		u.mu.Lock()
		var best *ckptPart
		var wait time.Duration = -1
		now := time.Now()
		for _, p := range u.parts {
			if p.durable || p.uploading || !p.hasFile {
				continue
			}
			if d := p.nextTry.Sub(now); d > 0 {
				if wait < 0 || d < wait {
					wait = d
				}
				continue
			}
			if best == nil || p.handed.Before(best.handed) {
				best = p
			}
		}
		if best != nil {
			best.uploading = true
			u.mu.Unlock()
			return best
		}
		u.mu.Unlock()
		var timer <-chan time.Time
		var t *time.Timer
		if wait >= 0 {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-u.ctx.Done():
		case <-u.wake:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
		if u.ctx.Err() != nil {
			return nil
		}
	}
}

// upload puts p's file into the store.
func (u *uploader) upload(p *ckptPart) error {
	data, err := os.ReadFile(u.path(p.k))
	if err != nil {
		return fmt.Errorf("read the local file: %w", err)
	}
	if err := checkpoint.CheckObject(data, p.size, p.crc); err != nil {
		return fmt.Errorf("the local file is damaged: %w", err)
	}
	st, err := u.store()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(u.ctx, u.opts.putTimeout)
	defer cancel()
	return st.Put(ctx, p.k.key, data)
}

// store opens the node's checkpoint store the first time it is needed
// (and again after a failed open).
func (u *uploader) store() (checkpoint.Store, error) {
	u.mu.Lock()
	st := u.st
	u.mu.Unlock()
	if st != nil {
		return st, nil
	}
	ctx, cancel := context.WithTimeout(u.ctx, u.opts.putTimeout)
	defer cancel()
	st, err := u.opts.open(ctx)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.st != nil || u.closed {
		if c, ok := st.(io.Closer); ok {
			c.Close()
		}
		if u.closed {
			return nil, shuffle.ErrClosed
		}
		return u.st, nil
	}
	u.st = st
	return st, nil
}

// finish records the end of p's upload.
func (u *uploader) finish(p *ckptPart, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	p.uploading = false
	if p.removed {
		// Dropped (its application removed), or replaced by another
		// attempt's bytes, whose file has the same name: the file is
		// deleted only if no part of that name holds it now.
		if u.parts[p.k] == nil {
			_ = os.Remove(u.path(p.k))
		}
		return
	}
	if u.closed && err != nil {
		return // cut by close: still queued in the catalogue, uploaded after a restart
	}
	if err != nil {
		p.failed++
		p.lastErr = err.Error()
		p.nextTry = time.Now().Add(backoff(p.failed, u.opts.maxBackoff))
		u.m.uploadFailures.Add(1)
		u.log.Warn("checkpoint upload failed; retrying", "app", p.k.app, "key", p.k.key, "store", u.opts.store, "attempt", p.failed, "retry_in", time.Until(p.nextTry).Round(time.Millisecond), "err", err)
		return
	}
	p.durable, p.durableAt = true, time.Now()
	u.queued -= p.size
	u.copied += p.size
	p.lru = u.copies.PushBack(p)
	u.m.uploads.Add(1)
	u.m.bytesUploaded.Add(uint64(p.size))
	if err := u.db.Set(ckptCatKey(p.k), p.record().marshal(), pebble.Sync); err != nil {
		u.log.Warn("cannot record a durable checkpoint partition (it is uploaded again after a restart)", "key", p.k.key, "err", err)
	}
	u.evictLocked()
}

// evictLocked deletes the least recently used local copies until they
// fit in copyBytes. The parts stay known as durable, without a file.
func (u *uploader) evictLocked() {
	for u.copied > u.opts.copyBytes && u.copies.Len() > 0 {
		p := u.copies.Remove(u.copies.Front()).(*ckptPart)
		p.lru = nil
		u.copied -= p.size
		p.hasFile = false
		_ = os.Remove(u.path(p.k))
		u.m.copiesEvicted.Add(1)
		if err := u.db.Set(ckptCatKey(p.k), p.record().marshal(), pebble.NoSync); err != nil {
			u.log.Warn("cannot record an evicted checkpoint copy", "key", p.k.key, "err", err)
		}
	}
}

// backoff is the pause after n failed uploads: 100 ms doubling, at most
// max.
func backoff(n int, max time.Duration) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// ckptState is what CheckpointStatus reports of one partition.
type ckptState struct {
	known, durable    bool
	size              int64
	crc               uint32
	failed            int
	lastErr           string
	handed, durableAt time.Time
}

func (u *uploader) status(app string, keys []string) []ckptState {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]ckptState, len(keys))
	for i, key := range keys {
		if p := u.parts[ckptKey{app, key}]; p != nil {
			out[i] = ckptState{known: true, durable: p.durable, size: p.size, crc: p.crc, failed: p.failed, lastErr: p.lastErr, handed: p.handed, durableAt: p.durableAt}
		}
	}
	return out
}

// local returns the local copy of a partition if the node has one with
// that size and checksum.
func (u *uploader) local(k ckptKey, size int64, crc uint32) ([]byte, bool) {
	u.mu.Lock()
	p := u.parts[k]
	if p == nil || !p.hasFile || p.size != size || p.crc != crc {
		u.mu.Unlock()
		return nil, false
	}
	if p.lru != nil {
		u.copies.MoveToBack(p.lru)
	}
	u.mu.Unlock()
	// The file may be evicted between the unlock and the read: a miss.
	data, err := os.ReadFile(u.path(k))
	if err != nil || checkpoint.CheckObject(data, size, crc) != nil {
		return nil, false
	}
	return data, true
}

// get returns a partition object: the local copy, or the store's, which
// it then keeps as a local copy (read through).
func (u *uploader) get(ctx context.Context, k ckptKey, size int64, crc uint32) (data []byte, fromStore bool, err error) {
	u.m.gets.Add(1)
	if data, ok := u.local(k, size, crc); ok {
		u.m.localReads.Add(1)
		return data, false, nil
	}
	st, err := u.store()
	if err != nil {
		return nil, false, fmt.Errorf("%w: checkpoint store %s: %w", shuffle.ErrCheckpointStore, u.opts.store, err)
	}
	ctx, cancel := context.WithTimeout(ctx, u.opts.putTimeout)
	defer cancel()
	data, err = st.Get(ctx, k.key)
	if err != nil {
		return nil, false, fmt.Errorf("%w: checkpoint store %s: %w", shuffle.ErrCheckpointStore, u.opts.store, err)
	}
	if err := checkpoint.CheckObject(data, size, crc); err != nil {
		return nil, false, fmt.Errorf("%w: %s/%s: %w", shuffle.ErrCorrupt, u.opts.store, k.key, err)
	}
	u.m.storeReads.Add(1)
	u.keepCopy(k, crc, data)
	return data, true, nil
}

// keepCopy keeps an object read from the store as a durable local copy,
// if the uploader holds nothing of that key, or knows it durable without
// a copy (evicted); failures only cost the copy.
func (u *uploader) keepCopy(k ckptKey, crc uint32, data []byte) {
	if int64(len(data)) > u.opts.copyBytes {
		return
	}
	size := int64(len(data))
	wanted := func() bool {
		p := u.parts[k]
		return !u.closed && (p == nil || p.durable && !p.hasFile && p.size == size && p.crc == crc)
	}
	u.mu.Lock()
	ok := wanted()
	u.mu.Unlock()
	if !ok {
		return
	}
	final := u.path(k)
	tmp := final + shuffle.TempSuffix + fmt.Sprint(time.Now().UnixNano())
	if err := writeFileSync(tmp, data); err != nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !wanted() {
		_ = os.Remove(tmp)
		return
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.Remove(tmp)
		return
	}
	p := u.parts[k]
	if p == nil {
		now := time.Now()
		p = &ckptPart{k: k, size: size, crc: crc, durable: true, handed: now, durableAt: now}
	}
	p.hasFile = true
	if err := u.db.Set(ckptCatKey(k), p.record().marshal(), pebble.NoSync); err != nil {
		p.hasFile = false
		_ = os.Remove(final)
		return
	}
	u.parts[k] = p
	p.lru = u.copies.PushBack(p)
	u.copied += p.size
	u.evictLocked()
}

// dropApp forgets everything the uploader holds for app: queued uploads
// are abandoned, copies deleted.
func (u *uploader) dropApp(app string) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return 0, shuffle.ErrClosed
	}
	n := 0
	for k, p := range u.parts {
		if k.app == app {
			u.forgetLocked(p, true)
			n++
		}
	}
	p := ckptAppPrefix(app)
	if err := u.db.DeleteRange(p, prefixEnd(p), pebble.Sync); err != nil {
		return n, fmt.Errorf("shuffle: write catalogue: %w", err)
	}
	return n, nil
}

func (u *uploader) metrics() UploaderMetrics {
	u.mu.Lock()
	m := UploaderMetrics{QueuedBytes: u.queued, CopyBytes: u.copied}
	for _, p := range u.parts {
		if !p.durable {
			m.Queued++
		}
	}
	u.mu.Unlock()
	m.Handoffs = u.m.handoffs.Load()
	m.HandoffsHeld = u.m.handoffsHeld.Load()
	m.RefusedFull = u.m.refusedFull.Load()
	m.Uploads = u.m.uploads.Load()
	m.UploadFailures = u.m.uploadFailures.Load()
	m.BytesUploaded = u.m.bytesUploaded.Load()
	m.LocalReads = u.m.localReads.Load()
	m.StoreReads = u.m.storeReads.Load()
	m.CopiesEvicted = u.m.copiesEvicted.Load()
	return m
}

// close stops the uploads (one cut short stays queued in the catalogue:
// a restarted node uploads it) and closes the store. Safe to call more
// than once; the catalogue must still be open.
func (u *uploader) close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	u.mu.Unlock()
	u.cancel()
	u.wg.Wait()
	u.mu.Lock()
	st := u.st
	u.st = nil
	u.mu.Unlock()
	if c, ok := st.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
