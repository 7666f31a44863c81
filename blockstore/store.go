package blockstore

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// Store holds the cached partition blocks of a node's applications, in a
// memory tier bounded by Options.MemoryBytes and a disk tier in
// Options.Dirs (see the package documentation). Its methods are safe for
// concurrent use.
type Store struct {
	opts Options
	log  *slog.Logger
	cat  *catalog

	// syncMu is held shared while the catalogue is synced (syncCatalog,
	// without mu), exclusively by Close before it closes the catalogue:
	// pebble must not be used once closed. Taken before mu.
	syncMu sync.RWMutex
	// mu guards everything below, and orders the catalogue's writes with
	// the index. No file is read or written while it is held.
	mu     sync.Mutex
	closed bool
	blocks map[BlockID]*entry
	lru    *list.List // *entry in memory; front = most recently used
	seq    uint64     // last file sequence number handed out
	mem    int64      // bytes of entries in memory
	disk   int64      // bytes of entries on disk
	// diskByDir[i] is the part of disk in Options.Dirs[i].
	diskByDir []int64
	nDisk     int
	counts    counters
}

type counters struct {
	hits, misses, evictions, evictedToDisk, notStored, spilledPuts, corrupt int64
}

type state uint8

const (
	// inMemory: data is held and counted in Store.mem; elem is in lru.
	inMemory state = iota
	// spilling: evicted from memory, its file being written by the Put
	// that evicted it. Still served from data, no longer counted in
	// Store.mem.
	spilling
	// onDisk: rec names the file.
	onDisk
)

type entry struct {
	id    BlockID
	level Level // held at now: MemorySer, MemoryAndDisk or DiskOnly
	prio  int
	size  int64
	state state
	data  []byte        // inMemory, spilling
	elem  *list.Element // inMemory
	rec   diskRecord    // onDisk, spilling (once its seq is chosen)
}

// Metrics is a snapshot of a Store's state and counters.
type Metrics struct {
	MemoryBytes  int64 // bytes of blocks in memory; never above Options.MemoryBytes
	MemoryBlocks int
	DiskBytes    int64 // bytes of blocks on disk (without file headers)
	// DiskBytesByDir[i] is the part of DiskBytes in Options.Dirs[i].
	DiskBytesByDir []int64
	DiskBlocks     int
	Hits           int64 // Gets that returned a block
	Misses         int64 // Gets that did not (absent, or corrupt)
	// Evictions counts blocks pushed out of memory to make room;
	// EvictedToDisk those of them moved to disk.
	Evictions     int64
	EvictedToDisk int64
	// NotStored counts MemorySer Puts that did not fit (stored None);
	// SpilledPuts MemoryAndDisk Puts that went straight to disk.
	NotStored   int64
	SpilledPuts int64
	// Corrupt counts disk blocks found damaged (and removed) by Get.
	Corrupt int64
}

// Open opens the store on opts.Dirs, creating the directories and, unless
// opts.DB is given, the catalogue if needed. Every block the catalogue
// lists whose file is present with the right size is served again;
// catalogue records without their file, and files under DIR/APP/blocks/
// that no record names (temporary files, blocks removed or evicted during
// a crash), are deleted.
func Open(opts Options) (*Store, error) {
	opts.Dirs = slices.Clone(opts.Dirs)
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	for _, d := range opts.Dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("blockstore: create local directory: %w", err)
		}
	}
	log := opts.Logger.With("component", "blockstore")
	cat := &catalog{db: opts.DB}
	if opts.DB == nil {
		var err error
		if cat, err = openCatalog(opts.CatalogFS, filepath.Join(opts.Dirs[0], catalogDirName), opts.Dirs, log); err != nil {
			return nil, err
		}
	}
	s := &Store{opts: opts, log: log, cat: cat, blocks: map[BlockID]*entry{}, lru: list.New(), diskByDir: make([]int64, len(opts.Dirs))}
	keep := map[string]bool{}
	err := cat.load(log, func(id BlockID, r diskRecord) error {
		if r.dir >= len(opts.Dirs) {
			return fmt.Errorf("directory index %d out of range", r.dir)
		}
		path := s.path(id, r)
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("block file: %w", err)
		}
		if fi.Size() != fileHeaderSize+r.size {
			return fmt.Errorf("block file %s has %d bytes, want %d", path, fi.Size(), fileHeaderSize+r.size)
		}
		s.blocks[id] = &entry{id: id, level: DiskOnly, prio: r.prio, size: r.size, state: onDisk, rec: r}
		s.disk += r.size
		s.diskByDir[r.dir] += r.size
		s.nDisk++
		s.seq = max(s.seq, r.seq)
		keep[path] = true
		return nil
	})
	if err != nil {
		cat.close()
		return nil, err
	}
	s.sweep(keep)
	log.Info("block store open", "disk_blocks", s.nDisk, "disk_bytes", s.disk, "memory_bytes", opts.MemoryBytes)
	return s, nil
}

// sweep deletes the files under every DIR/APP/blocks/ that keep lacks.
func (s *Store) sweep(keep map[string]bool) {
	for _, d := range s.opts.Dirs {
		apps, err := os.ReadDir(d)
		if err != nil {
			s.log.Warn("cannot list local directory", "dir", d, "err", err)
			continue
		}
		for _, a := range apps {
			if !a.IsDir() || validateApp(a.Name()) != nil {
				continue
			}
			bdir := filepath.Join(d, a.Name(), BlocksDirName)
			files, err := os.ReadDir(bdir)
			if err != nil {
				continue
			}
			removed := 0
			for _, f := range files {
				p := filepath.Join(bdir, f.Name())
				if keep[p] || f.IsDir() {
					continue
				}
				if err := os.Remove(p); err != nil {
					s.log.Warn("cannot delete stray block file", "file", p, "err", err)
					continue
				}
				removed++
			}
			if removed > 0 {
				s.log.Info("deleted stray block files", "dir", bdir, "files", removed)
			}
		}
	}
}

// path is the file of block id described by r.
func (s *Store) path(id BlockID, r diskRecord) string {
	return filepath.Join(s.opts.Dirs[r.dir], id.App, BlocksDirName, blockFileName(id, r.seq))
}

// newRecordLocked chooses the directory and a fresh sequence number for a
// file of block id.
func (s *Store) newRecordLocked(id BlockID, prio int, size int64) diskRecord {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%d\x00%d", id.App, id.RDD, id.Partition)
	s.seq++
	return diskRecord{dir: int(h.Sum64() % uint64(len(s.opts.Dirs))), seq: s.seq, size: size, prio: prio}
}

// Put stores data as block id at level, with the persistence priority of
// its RDD, replacing any block of that ID. The store keeps data (in
// memory): the caller must not modify it afterwards.
//
// stored is the level the block is held at now: level itself if it went
// where asked; DiskOnly for a MemoryAndDisk block that could not be given
// room in memory; None (with a nil error) for a MemorySer block that could
// not. evicted lists the blocks pushed out of memory to make room, once
// those moving to disk are written. The catalogue records of the disk
// blocks it reports (its own, and those evicted to disk) are synced before
// it returns, so they survive the process. An error means the block is not
// stored (a MemoryAndDisk or DiskOnly block whose file could not be
// written, a closed store, a bad argument).
func (s *Store) Put(ctx context.Context, id BlockID, level Level, priority int, data []byte) (stored Level, evicted []Evicted, err error) {
	if err := ctx.Err(); err != nil {
		return None, nil, err
	}
	if err := id.Validate(); err != nil {
		return None, nil, err
	}
	switch {
	case level.inMemory() && s.opts.MemoryBytes == 0:
		return None, nil, fmt.Errorf("%w: block %s at %v: this store has no memory tier (MemoryBytes is 0)", ErrInvalidArgument, id, level)
	case level != MemorySer && level != MemoryAndDisk && level != DiskOnly:
		return None, nil, fmt.Errorf("%w: block %s: level %v (want MemorySer, MemoryAndDisk or DiskOnly)", ErrInvalidArgument, id, level)
	}
	size := int64(len(data))

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return None, nil, ErrClosed
	}
	garbage := s.forgetLocked(s.blocks[id], nil)
	stored = level
	var spills []*entry
	if level.inMemory() {
		if victims, ok := s.makeRoomLocked(id, priority, size); ok {
			for _, v := range victims {
				evicted = append(evicted, Evicted{ID: v.id, Level: v.level})
				if s.evictLocked(v) {
					spills = append(spills, v)
				}
			}
			e := &entry{id: id, level: level, prio: priority, size: size, state: inMemory, data: data}
			e.elem = s.lru.PushFront(e)
			s.blocks[id] = e
			s.mem += size
		} else if level == MemorySer {
			stored = None
			s.counts.notStored++
		} else {
			stored = DiskOnly
			s.counts.spilledPuts++
		}
	}
	var rec diskRecord
	if stored == DiskOnly {
		rec = s.newRecordLocked(id, priority, size)
	}
	s.mu.Unlock()
	removeFiles(s.log, garbage)

	for _, v := range spills {
		moved := s.spill(v)
		for i := range evicted {
			if evicted[i].ID == v.id {
				evicted[i].ToDisk = moved
			}
		}
	}
	if stored == DiskOnly {
		err = s.putDisk(id, rec, data)
	}
	if (stored == DiskOnly && err == nil) || len(spills) > 0 {
		s.syncCatalog()
	}
	if err != nil {
		return None, evicted, err
	}
	return stored, evicted, nil
}

// makeRoomLocked chooses the memory blocks to evict so that a block of
// size bytes for id, of priority prio, fits: blocks of id's own RDD and
// blocks of a higher priority are never chosen; among the others the
// lowest priority goes first, least recently used first within a
// priority. ok is false (and nothing is chosen) if that cannot free
// enough.
func (s *Store) makeRoomLocked(id BlockID, prio int, size int64) (victims []*entry, ok bool) {
	if size > s.opts.MemoryBytes {
		return nil, false
	}
	free := s.opts.MemoryBytes - s.mem
	if size <= free {
		return nil, true
	}
	var cands []*entry
	for el := s.lru.Back(); el != nil; el = el.Prev() {
		e := el.Value.(*entry)
		if e.id.sameRDD(id) || e.prio > prio {
			continue
		}
		cands = append(cands, e)
	}
	slices.SortStableFunc(cands, func(a, b *entry) int { return a.prio - b.prio })
	for _, c := range cands {
		if free >= size {
			break
		}
		victims = append(victims, c)
		free += c.size
	}
	if free < size {
		return nil, false
	}
	return victims, true
}

// evictLocked takes v out of memory. A MemoryAndDisk block becomes a
// spilling DiskOnly block (still in the index, served from its bytes)
// and evictLocked returns true: the caller must spill it. Any other block
// is dropped.
func (s *Store) evictLocked(v *entry) bool {
	s.lru.Remove(v.elem)
	v.elem = nil
	s.mem -= v.size
	s.counts.evictions++
	if v.level == MemoryAndDisk {
		v.state = spilling
		v.level = DiskOnly
		v.rec = s.newRecordLocked(v.id, v.prio, v.size)
		return true
	}
	delete(s.blocks, v.id)
	v.data = nil
	return false
}

// spill writes the file of v, evicted from memory, and catalogues it. It
// reports whether v is now on disk: not if the write failed, or if v was
// removed or replaced meanwhile (then its file is deleted).
func (s *Store) spill(v *entry) bool {
	path := s.path(v.id, v.rec)
	werr := writeBlockFile(path, v.data)
	s.mu.Lock()
	defer s.mu.Unlock()
	current := !s.closed && s.blocks[v.id] == v
	if werr != nil {
		s.log.Warn("cannot move evicted block to disk; dropping it", "block", v.id, "err", werr)
		if current {
			delete(s.blocks, v.id)
		}
		v.data = nil
		return false
	}
	if current {
		if err := s.cat.put(v.id, v.rec); err != nil {
			s.log.Warn("cannot catalogue evicted block; dropping it", "block", v.id, "err", err)
			current = false
			delete(s.blocks, v.id)
		}
	}
	v.data = nil
	if !current {
		removeFiles(s.log, []string{path})
		return false
	}
	v.state = onDisk
	s.disk += v.size
	s.diskByDir[v.rec.dir] += v.size
	s.nDisk++
	s.counts.evictedToDisk++
	return true
}

// putDisk writes block id's file and then catalogues and indexes it,
// replacing whatever block of that ID is there by then.
func (s *Store) putDisk(id BlockID, rec diskRecord, data []byte) error {
	path := s.path(id, rec)
	if err := writeBlockFile(path, data); err != nil {
		return fmt.Errorf("%w (block %s)", err, id)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		removeFiles(s.log, []string{path})
		return ErrClosed
	}
	garbage := s.forgetLocked(s.blocks[id], nil)
	if err := s.cat.put(id, rec); err != nil {
		s.mu.Unlock()
		removeFiles(s.log, append(garbage, path))
		return fmt.Errorf("%w (block %s)", err, id)
	}
	s.blocks[id] = &entry{id: id, level: DiskOnly, prio: rec.prio, size: rec.size, state: onDisk, rec: rec}
	s.disk += rec.size
	s.diskByDir[rec.dir] += rec.size
	s.nDisk++
	s.mu.Unlock()
	removeFiles(s.log, garbage)
	return nil
}

// syncCatalog makes the catalogue's writes so far durable, so that the
// disk blocks a Put reports are served again after the process dies.
// Records are written unsynced under mu (pebble keeps an unsynced record
// in its process until a sync or a full WAL block, so a killed process
// loses it) and synced here, once per Put, without mu. A failure is
// logged: the blocks are served until the store closes, and a record
// lost leaves a stray file that the next Open deletes.
func (s *Store) syncCatalog() {
	s.syncMu.RLock()
	defer s.syncMu.RUnlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return
	}
	if err := s.cat.sync(); err != nil {
		s.log.Warn("cannot sync the catalogue; blocks put now may be lost if the node dies", "err", err)
	}
}

// dropLocked takes e (if not nil) out of the index and the accounting,
// and appends its file, if any, to garbage for deletion once s.mu is
// released. It does not touch the catalogue. A spilling entry's file is
// deleted by its spill.
func (s *Store) dropLocked(e *entry, garbage []string) []string {
	if e == nil {
		return garbage
	}
	delete(s.blocks, e.id)
	switch e.state {
	case inMemory:
		s.lru.Remove(e.elem)
		e.elem = nil
		s.mem -= e.size
		e.data = nil
	case onDisk:
		s.disk -= e.size
		s.diskByDir[e.rec.dir] -= e.size
		s.nDisk--
		garbage = append(garbage, s.path(e.id, e.rec))
	}
	return garbage
}

// forgetLocked is dropLocked plus deleting e's catalogue record.
func (s *Store) forgetLocked(e *entry, garbage []string) []string {
	if e != nil && e.state == onDisk {
		if err := s.cat.delete(e.id); err != nil {
			// The file goes anyway; the next Open drops the record whose
			// file is missing.
			s.log.Warn("cannot delete catalogue record", "block", e.id, "err", err)
		}
	}
	return s.dropLocked(e, garbage)
}

func removeFiles(log *slog.Logger, paths []string) {
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			log.Warn("cannot delete block file", "file", p, "err", err)
		}
	}
}

// Get returns block id and the level it is held at. A memory hit makes the
// block the most recently used. found is false if the store does not hold
// the block (a Get racing a Remove or a replacement of the same block may
// also miss). A disk block that is damaged or whose file has vanished is
// removed and reported as an error wrapping ErrCorrupt; its bytes are never
// returned. The returned bytes must not be modified.
func (s *Store) Get(ctx context.Context, id BlockID) (data []byte, level Level, found bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, None, false, err
	}
	if err := id.Validate(); err != nil {
		return nil, None, false, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, None, false, ErrClosed
	}
	e := s.blocks[id]
	switch {
	case e == nil:
		s.counts.misses++
		s.mu.Unlock()
		return nil, None, false, nil
	case e.state == inMemory:
		s.lru.MoveToFront(e.elem)
		fallthrough
	case e.state == spilling:
		s.counts.hits++
		data, level := e.data, e.level
		s.mu.Unlock()
		return data, level, true, nil
	}
	path, size := s.path(id, e.rec), e.size
	s.mu.Unlock()

	data, err = readBlockFile(path, size)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.counts.hits++
		return data, DiskOnly, true, nil
	}
	s.counts.misses++
	if s.closed || s.blocks[id] != e {
		return nil, None, false, nil // removed or replaced while we read
	}
	if errors.Is(err, ErrCorrupt) {
		s.counts.corrupt++
		s.log.Warn("removing corrupt block", "block", id, "err", err)
		// Deleting one small file under the lock is rare enough.
		removeFiles(s.log, s.forgetLocked(e, nil))
	}
	return nil, None, false, fmt.Errorf("blockstore: block %s: %w", id, err)
}

// Remove removes block id from memory and disk. removed is false if the
// store did not hold it.
func (s *Store) Remove(id BlockID) (removed bool, err error) {
	if err := id.Validate(); err != nil {
		return false, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return false, ErrClosed
	}
	e := s.blocks[id]
	garbage := s.forgetLocked(e, nil)
	s.mu.Unlock()
	removeFiles(s.log, garbage)
	return e != nil, nil
}

// RemoveRDD removes every block of an RDD (Unpersist), freeing its memory
// at once and deleting its files. It returns how many blocks it removed.
func (s *Store) RemoveRDD(app string, rdd int) (int, error) {
	if err := validateApp(app); err != nil {
		return 0, err
	}
	if err := validateRDD(rdd); err != nil {
		return 0, err
	}
	return s.removeWhere(rddPrefix(app, rdd), func(id BlockID) bool { return id.App == app && id.RDD == rdd }, "", true)
}

// RemoveApp removes every block of an application. It returns how many
// blocks it removed.
func (s *Store) RemoveApp(app string) (int, error) {
	if err := validateApp(app); err != nil {
		return 0, err
	}
	return s.removeWhere(appPrefix(app), func(id BlockID) bool { return id.App == app }, app, true)
}

// DropApp is RemoveApp for a caller that deletes the application's
// directories itself, as the node service does when it removes an
// application (it moves every DIR/APP to its trash): it forgets every
// block of app, freeing its memory and deleting its catalogue records at
// once, but leaves the files under DIR/APP/blocks/ to the caller. (A
// block being moved to disk by an eviction at that moment still deletes
// its own file.) Its catalogue deletions are not synced: the caller's next
// synced write to a shared catalogue (Options.DB) makes them durable, and
// if they are lost the blocks' files are gone, so the next Open drops
// their records. It returns how many blocks it forgot.
func (s *Store) DropApp(app string) (int, error) {
	if err := validateApp(app); err != nil {
		return 0, err
	}
	return s.removeWhere(appPrefix(app), func(id BlockID) bool { return id.App == app }, "", false)
}

// Apps returns the applications the store holds blocks of, in no order.
func (s *Store) Apps() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var apps []string
	for id := range s.blocks {
		if !seen[id.App] {
			seen[id.App] = true
			apps = append(apps, id.App)
		}
	}
	return apps
}

// removeWhere removes the blocks matching match, whose catalogue records
// are exactly those under prefix, deleting their files if deleteFiles,
// and then the (empty) blocks directories of app if app is not "".
func (s *Store) removeWhere(prefix []byte, match func(BlockID) bool, app string, deleteFiles bool) (int, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, ErrClosed
	}
	var garbage []string
	n := 0
	for id, e := range s.blocks {
		if match(id) {
			garbage = s.dropLocked(e, garbage)
			n++
		}
	}
	err := s.cat.deletePrefix(prefix)
	s.mu.Unlock()
	if deleteFiles {
		// Durable before the files go: a crash in between must not
		// bring back a block whose removal was acknowledged.
		s.syncCatalog()
		removeFiles(s.log, garbage)
	}
	if app != "" {
		for _, d := range s.opts.Dirs {
			os.Remove(filepath.Join(d, app, BlocksDirName)) // only if empty: a Put may be writing there
		}
	}
	if err != nil {
		s.log.Warn("cannot delete catalogue records; their files are gone and the next Open drops them", "err", err)
	}
	return n, nil
}

// Metrics returns a snapshot of the store's state and counters.
func (s *Store) Metrics() Metrics {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts
	return Metrics{
		MemoryBytes: s.mem, MemoryBlocks: s.lru.Len(),
		DiskBytes: s.disk, DiskBlocks: s.nDisk, DiskBytesByDir: slices.Clone(s.diskByDir),
		Hits: c.hits, Misses: c.misses,
		Evictions: c.evictions, EvictedToDisk: c.evictedToDisk,
		NotStored: c.notStored, SpilledPuts: c.spilledPuts, Corrupt: c.corrupt,
	}
}

// Close drops the memory tier and closes the catalogue (unless it is
// Options.DB, which its owner closes after the store). Disk blocks stay
// and are served again by the next Open on the same directories. Close is
// idempotent; every other method then returns ErrClosed, and the store
// does not touch the catalogue any more.
func (s *Store) Close() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.blocks = map[BlockID]*entry{}
	s.lru.Init()
	s.mem, s.disk, s.nDisk = 0, 0, 0
	clear(s.diskByDir)
	return s.cat.close()
}
