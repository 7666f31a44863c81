// Package blockstore is the storage engine of shoal's cached partitions
// (docs/DESIGN.md §4): the part of the node service that holds the blocks of
// persisted RDDs for the applications running on its machine, in memory
// bounded in bytes and on the node's local disks.
//
// This package is the engine. The node service (package shuffleservice)
// opens a Store on its directories and its own catalogue database, and
// serves it over gRPC: PutBlock, GetBlock and RemoveBlocks, with the
// store's figures in its Status (see shuffleservice's doc.go, "Cached
// blocks"); nodeclient.Client has the matching methods. Workers do
// not put or get blocks yet, the driver does not track where blocks live,
// and nothing emits the event log's block_stored, block_evicted and
// block_hit (docs/DESIGN.md §8): Put's Evicted list and Metrics, both on the
// wire, are what that will report from. See "Not done yet" below.
//
// # What the store owns
//
// A Store holds blocks named by BlockID{App, RDD, Partition}: the
// serialized bytes of one partition of one persisted RDD of one
// application. It owns
//
//   - the memory tier: blocks held as byte slices, at most
//     Options.MemoryBytes bytes in all (the node's --cache-bytes);
//   - the disk tier: one file per block under DIR/APP/blocks/, DIR one of
//     Options.Dirs chosen by a hash of the block ID;
//   - the catalogue of the disk tier: the records under "b/"
//     (CatalogPrefix) of a pebble database. In a node service that is the
//     node's one catalogue, Dirs[0]/.catalog, shared with the shuffle
//     service (Options.DB: the store does not close it); standalone, a
//     database of the store's own in Dirs[0]/.blocks-catalog.
//
// # Levels
//
// A Put asks for one of three levels:
//
//	MemorySer      memory only; dropped when evicted
//	MemoryAndDisk  memory; moved to disk when evicted, or written to disk
//	               at once if it cannot be given room
//	DiskOnly       disk only; uses no memory
//
// Put and Get report the level a block is held at now: MemorySer or
// MemoryAndDisk for a block in memory, DiskOnly for any block on disk,
// None for a MemorySer block that did not fit (Put then returns stored ==
// None and a nil error: the block is simply not cached, as when Spark's
// MemoryStore refuses a block). A block on disk is never promoted back to
// memory. Putting an ID that is already stored replaces the block: the old
// one is removed first, even if the new one then ends up not stored.
//
// MemoryDeser (deserialized values in a worker's heap) is kept by the
// workers, not here. The replicated "_2" levels are the driver's concern:
// it puts the block into two nodes' stores, each of which sees a plain
// level. Persistence priority is per RDD: the driver passes the RDD's
// priority with each Put of its blocks.
//
// # The eviction rule
//
// Memory never holds more than MemoryBytes bytes (Metrics().MemoryBytes).
// To make room for a block of size S of RDD X (an RDD is App and RDD
// together) with priority P:
//
//  1. If S > MemoryBytes, no room is made and nothing is evicted.
//  2. The candidates are the memory blocks that are not of RDD X (a scan
//     over X, larger than memory, must not evict the beginning of X to
//     store its end, only to evict that in turn: the RDD paper's rule) and
//     whose priority is at most P (a block never evicts a block of a higher
//     priority).
//  3. Candidates are taken lowest priority first and, within a priority,
//     least recently used first (a Put or a Get hit makes a block the most
//     recently used) until S bytes are free.
//  4. If all the candidates together cannot free S bytes, none is evicted;
//     a MemorySer block is then not stored, and a MemoryAndDisk block is
//     written to disk instead (Metrics().SpilledPuts).
//
// The evicted blocks are returned by the Put that evicted them (Evicted:
// ID, level before, and whether it moved to disk) once those moving to
// disk have been written, for the node to report as block_evicted.
// testdata/eviction holds the worked examples (TestEviction).
//
// # Disk format
//
// A block file (blockfile.go) is a 17-byte header ("SHBK", a version, the
// block's length, and a CRC32-C of the header and the block) followed by
// the block. shuffleservice's frames are not reused: their encoder is not
// exported and a frame is limited to 16 MiB. A file is written under a
// temporary name (suffix ".tmp"), not fsynced (a block is a cache:
// recomputing it is the remedy for a power loss), renamed to
// rdd-R-part-P-SEQ.blk, and only then catalogued and served. SEQ is new for
// every file, so deleting a replaced block's file never races a newer file
// of the same block. A Get reads and verifies the whole file before it
// returns a byte; a file that fails its checksum, has the wrong length or
// has vanished is reported as an error wrapping ErrCorrupt, and the block
// is removed (file and record), so the next Get misses and the caller
// recomputes it.
//
// # Catalogue and restart
//
// The catalogue (catalog.go) holds one record per disk block (directory,
// SEQ, size, priority) and a guard with the directory list, so that a store
// reopened with other directories refuses to start (in a shared database
// the guard is its owner's, checked when it opened it). Memory blocks are
// not catalogued and are lost on restart, by design: a MemoryAndDisk block
// survives a restart only if it had moved to disk. Records are written
// unsynced under the lock and synced, once, before the Put that wrote them
// returns (a killed process would otherwise lose them: pebble holds
// unsynced records in its process); RemoveRDD and RemoveApp sync their
// deletions before they delete files. So the disk blocks a Put reported,
// and only those, are served again after the process is killed. Open
// loads the catalogue and serves again every disk block whose file is
// present with the right size; it drops records whose file is missing or
// of the wrong size, and deletes the files under DIR/APP/blocks/ that no
// record names (temporary files, and blocks removed or evicted when the
// node died). It touches nothing else under DIR/APP: the shuffle's
// shuffle-N directories live there too. Apps lists the applications with
// blocks, so that a node can remove those its own catalogue lost.
//
// # Concurrency and lock order
//
// One mutex (Store.mu) guards the index (a map of entries and an LRU list
// of the memory ones), the accounting and the counters, and is held while
// the catalogue (pebble, whose own locks are below it) is written, so the
// catalogue and the index change together. Store.mu is never held while a
// block file is read or written, nor while the catalogue is synced. The
// one other lock, Store.syncMu, is taken before it: shared by the sync
// that ends a Put or a removal, exclusively by Close, so that the
// catalogue is never used once closed. Work that needs the disk is done in
// steps:
//
//   - Put decides under the lock (evicting, inserting a memory block), then
//     writes files without it, then takes it again to catalogue them. A
//     MemoryAndDisk block evicted to make room is marked "spilling": out of
//     the memory accounting, still served from its bytes, until the Put
//     that evicted it has written its file. If it was removed or replaced
//     meanwhile, that Put deletes the file instead of cataloguing it.
//   - Get of a disk block notes the file under the lock, reads it without,
//     and retakes the lock only to count the hit or remove a corrupt block.
//   - Remove, RemoveRDD (Unpersist) and RemoveApp take blocks out of the
//     index and the catalogue under the lock, freeing their memory at once,
//     and delete their files after releasing it. DropApp does the same but
//     leaves the files to its caller (the node service moves the whole
//     application directory to its trash).
//
// So the bytes a process really holds can exceed MemoryBytes by the blocks
// being spilled, for the time it takes to write them; the accounted memory
// never does.
//
// # Not done yet
//
//   - The client side: Persist, workers putting and getting blocks, the
//     driver's block tracker and locality, event log emission, Prometheus
//     export of Metrics.
//   - Replication (driver side), promotion of disk blocks back to memory,
//     a bound on disk bytes, and blocks too large to hold in memory at once
//     (Put and Get take and return whole byte slices; the node service
//     refuses blocks above its --max-block-bytes).
package blockstore
