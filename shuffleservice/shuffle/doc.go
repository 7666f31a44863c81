// Package shuffle is the shuffle file library that workers link: the
// formats of map-output files, the writers that turn a map task's records
// into them, and the reader that fetches a reduce partition's blocks from
// every node (DESIGN.md §3, §6). The node service that owns the files once
// they are committed, and serves them, is package shuffleservice, whose
// doc.go describes the write → commit → fetch protocol; the client of a
// node service is package nodeclient.
//
// # Files
//
// Layout (layout.go) derives every path; no path travels over the wire:
//
//	DIR/APP/shuffle-S/map-M-A.data        sorted data (sort, bypass-merge)
//	DIR/APP/shuffle-S/map-M-A.index       its R+1 offsets
//	DIR/APP/shuffle-S/map-M-A.r-R.data    hash output, one file per reduce R
//	DIR/APP/blocks/rdd-R-part-P-SEQ.blk   a cached block on disk (the block store's)
//
// DIR is one of Dirs, chosen by a hash of (APP, S, M). A temporary file has
// ".tmp-" and a suffix after its final name. DIR/APP/blocks/ belongs to
// the block store, which names and sweeps its files itself. Dirs[0]/.catalog
// holds the catalogue, DIR/.trash holds directories being deleted; neither
// can clash with an application, whose ID never starts with a dot
// (ValidateID, the syntax of package ident).
//
// A block is a sequence of frames (frame.go): a 13-byte header (stored
// length, raw length, codec, CRC32-C of header and payload) and a payload
// of whole records, compressed with s2 or zstd or stored raw. An index file
// (index.go) is "SHIX", a version, R, the R+1 little-endian offsets (block
// r is bytes [off[r], off[r+1]) of the data file) and a CRC32-C. A
// frame's raw payload is whole records (record.go), each framed as
// uvarint len(key) | uvarint len(value) | key | value.
//
// # Writers
//
// A Writer (writer.go) writes one map task's output. ModeSort buffers
// serialized records in a bounded arena, sorts (partition, key prefix,
// offset) entries, spills sorted runs when the arena is full and k-way
// merges the runs into one data file and its index. ModeBypass keeps one
// buffer per reduce partition and concatenates them into the same data and
// index pair, without sorting. ModeHash writes one file per reduce
// partition (M×R files). Every writer follows commit.go's protocol: files
// under temporary names, renamed, then committed to the node through a
// Committer (a nodeclient.Client, or Server.Committer in process); see
// package shuffleservice's doc.go, "Write, commit, fetch".
//
// Memory: a writer's buffered records (and, in sort mode, their 16-byte
// sort entries) never exceed WriterOptions.MemoryLimit (default 64 MiB);
// reaching it spills. Spilled runs are framed like data files but stored
// uncompressed by default (SpillCodec): they live only until the merge and
// usually stay in the page cache. A BufferPool lets consecutive map tasks
// of a worker reuse one arena instead of allocating and growing a new one.
//
// # Reader
//
// A Reader (reader.go) reads reduce partitions [start, end) from every map
// output of a shuffle, given where each output lives (MapLocation, from the
// driver's map-output tracker). It groups the non-empty blocks by node into
// units of about MaxBytesInFlight/5 bytes and runs ReaderOptions.Fetchers
// streams of them at once; a unit's bytes are reserved in a weighted
// semaphore of MaxBytesInFlight before it starts and released as its
// blocks are consumed, so memory stays bounded. Blocks of LocalNode are
// read from the files directly (pread), the rest through a Fetcher (a
// nodeclient.Client; see ReaderOptions.Clients and nodeclient.Source). A
// block is handed on only when all of it has arrived and every frame
// passed its checksum. A transient error (Unavailable, DeadlineExceeded,
// …), a stream that delivers nothing for IdleTimeout (a node that stopped
// answering without closing its connection), or a block damaged in flight
// is retried, only for the blocks not yet delivered, with doubling
// backoff, Retries times; then, like any other error (ErrNoMapOutput,
// ErrCorrupt at the node, a missing local file), it ends the read with a
// *FetchFailedError naming app, shuffle, map, reduce and node.
//
// # Errors
//
// The sentinels of errors.go (ErrInvalidArgument, ErrUnknownApp,
// ErrNoMapOutput, ErrOutOfRange, ErrCorrupt, ErrClosed) are the
// shuffle's on every side: the writers and the reader return them, the
// node service wraps them, and the node client restores them from the
// wire, so callers test them with errors.Is wherever they came from.
// IsRetryable tells a transient failure of a call to a node apart. A
// read that gives up returns a *FetchFailedError naming app, shuffle,
// map, reduce and node, for the driver to recompute that map output.
package shuffle
