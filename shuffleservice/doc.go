// Package shuffleservice is shoal's node service: the server that runs on
// every machine (`shoal node`, Server), owns the map outputs written
// there and the node's block store (the cached partitions of docs/DESIGN.md
// §4), and serves them (docs/DESIGN.md §3, §6).
//
// # Packages
//
// The node service is five packages besides shufflepb, the protocol:
//
//   - shuffleservice (this one): the node service. The gRPC server, the
//     catalogue, the TTL janitor, commits, fetches and blocks as the node
//     serves them, and RunNode, the body of `shoal node` (its flags are
//     parsed by internal/cli, which client.Init runs too).
//   - shuffleservice/shuffle: the shuffle file library that workers link.
//     The formats (frames, records, index files, the layout of the
//     files), the writers, the reader, and the sentinel errors every side
//     shares.
//   - shuffleservice/nodeclient: the client of a node service. Dial,
//     Client (registrations, commits, fetches, blocks), and the link's
//     keepalive and deadlines.
//   - shuffleservice/internal/nodewire: what server and client agree on
//     besides the messages: errors as gRPC statuses, message and chunk
//     sizes, the keepalive, the cluster secret's metadata key, block IDs
//     and levels in messages.
//   - shuffleservice/launcher: cluster mode's node side, the binary cache
//     and the workers the node starts from it ("Workers started by the
//     node", below).
//
// The write → commit → fetch protocol below is the one description of how
// they work together; the other packages' doc.go point here.
//
// # What the node service owns
//
// One node service (`shoal node`, Server) runs per machine. It owns the map
// outputs written in its local directories (Options.Dirs), so they outlive
// the worker processes that wrote them: a worker may die right after its
// commit and its output is still served. It holds the cached partitions
// of its applications in a blockstore.Store. The node keeps one durable
// catalogue of applications, their workers, their committed outputs and
// their cached blocks on disk, and removes an application (its outputs,
// its blocks and its files) when it stops heartbeating.
//
// # Files
//
// The node's directories (Options.Dirs) hold the map outputs, at the
// paths shuffle.Layout derives (no path travels over the wire), and
// DIR/APP/blocks/, which belongs to the block store: it names and sweeps
// its files itself. The layout and the formats of the files (frames,
// records, index files) are package shuffle's: see its doc.go, "Files".
// Dirs[0]/.catalog holds the catalogue, DIR/.trash holds directories
// being deleted, Dirs[0]/.binaries the binary cache and Dirs[0]/.workers
// the working directories of the workers the node starts (package
// launcher's); none can clash with an application, whose ID never starts
// with a dot (shuffle.ValidateID: package ident's syntax).
//
// # Write, commit, fetch
//
//  1. The driver registers the application with every node (RegisterApp,
//     with a TTL) and keeps it alive with Heartbeat. A worker registers
//     (RegisterWorker) and gets the node's directories, hence its shuffle.Layout.
//  2. A map task writes its files under temporary names in its node's
//     directories, then renames them to their final names.
//  3. It commits (CommitMapOutput) its kind, attempt, epoch and R block
//     lengths. The node checks that the final files exist with exactly those
//     sizes, and that a sorted output's index decodes to
//     shuffle.OffsetsOf(lengths);
//     a mismatch is ErrInvalidArgument (ErrCorrupt for an index that does
//     not decode), naming the file. It then writes the output to the
//     catalogue, synced, and only then acknowledges. Contents are not read
//     at commit: frames are verified when served.
//  4. A reducer fetches (Fetch) ranges of blocks [reduce_start, reduce_end)
//     of several map outputs in one stream. The node checks the whole
//     request first (IDs, ranges against R, at most MaxBlocksPerRequest
//     blocks, every output committed), then for each block reads the
//     file in windows of ChunkSize bytes, cuts whole frames, verifies each
//     frame's CRC (shuffle.NextFrame, without decompressing) and sends them as
//     FetchChunks of at most ChunkSize bytes (a larger frame goes alone);
//     the last chunk of a block has end set, and an empty block is one
//     empty chunk with end set. A frame that fails its checksum, or a file
//     shorter than its committed size, stops the stream with ErrCorrupt
//     (codes.DataLoss) naming app, shuffle, map, attempt, reduce and file:
//     a corrupt frame is never sent. The reader reports a corrupt output
//     on disk as a FetchFailedError, so that the driver recomputes it; a
//     frame that was intact at the node but fails its checksum on arrival
//     was damaged in flight, and the reader fetches it again.
//  5. When the driver no longer needs a shuffle it calls RemoveShuffle;
//     at the end, RemoveApp (which removes the application's cached blocks
//     too). Both delete catalogue entries first (synced), then the files.
//
// # Idempotence and epochs
//
// A commit for (app, shuffle, map) that is already committed:
//
//   - with the same attempt is an idempotent retry and returns the
//     committed output (its lengths and kind must match);
//   - with another attempt and an epoch <= the committed epoch keeps the
//     committed output and returns it with reused set; the writer then
//     deletes its own files;
//   - with a higher epoch replaces it: the catalogue is updated (synced),
//     then the old attempt's files are deleted. A fetch that had already
//     looked up the old output finishes each block it opened from the old
//     file and takes the remaining blocks from the new one, so every block
//     is whole from one attempt.
//
// The driver raises the epoch when it declares a node lost, so output from
// before the loss is never mixed with its recomputation. Client retries
// commits on retryable errors: the commit is idempotent.
//
// # Cached blocks
//
// The node's block store (blockstore.Store, opened by Open on Dirs with
// Options.CacheBytes of memory, `shoal node --cache-bytes`) holds cached
// partitions, named blockstore.BlockID{App, RDD, Partition}; its levels
// and its eviction rule are blockstore's (see its doc.go). Three calls put
// it on the wire (blocks.go), for registered applications only (another
// is ErrUnknownApp, as for the shuffle's calls):
//
//   - PutBlock (client streaming): the first PutBlockChunk carries the
//     header (ID, level, priority, size, CRC32-C of the block); every
//     chunk may carry data. The node checks the header before it receives
//     a byte: a bad ID or level, a memory level on a node with no memory
//     for blocks, or a size above MaxBlockBytes is refused at once. It
//     then reserves size bytes of BlockBytesInFlight (waiting, within the
//     call's context, while other puts hold them), receives exactly size
//     bytes (a longer or shorter stream, or a second header, is refused),
//     checks the CRC (a mismatch is ErrCorrupt: damaged in flight, put it
//     again) and stores the block. The response has the level the block
//     is held at (None for a MemorySer block that did not fit) and the
//     blocks evicted to make room, for the driver's block tracker. A disk
//     block is catalogued, synced, before the response.
//   - GetBlock (server streaming): one chunk with found unset if the node
//     does not hold the block; else a first chunk with found, level, size
//     and CRC32-C of the whole block, and the data in chunks of at most
//     ChunkSize bytes. A disk block is read and verified whole before a
//     byte is sent; a damaged one is removed and the call fails with
//     blockstore.ErrCorrupt (DataLoss). nodeclient.Client.GetBlock checks the size and
//     the CRC of what arrives.
//   - RemoveBlocks: every block of one RDD (Unpersist), memory freed at
//     once, files deleted before the response.
//
// A block is held whole in memory while it is received (and while a disk
// block is read for GetBlock), so MaxBlockBytes bounds one call and
// BlockBytesInFlight all puts together; the memory tier itself never
// holds more than CacheBytes (Metrics.Blocks.MemoryBytes, Status
// blocks.memory_bytes).
//
// An application's blocks go with it. RemoveApp and the TTL janitor make
// the block store forget them (blockstore.Store.DropApp: memory freed,
// records deleted) under catMu, before the application's record is
// deleted (synced, which makes both durable) and DIR/APP, blocks/
// included, moves to the trash. A PutBlock that checked its application
// before a removal and finished after it finds the application gone (or
// registered anew) and removes its block again: a block never outlives
// its application's removal.
//
// # Checkpoints
//
// The node holds the partitions of checkpoints (docs/DESIGN.md §5) and
// uploads them to its checkpoint store, `shoal node --checkpoint-dir`
// (Options.CheckpointDir; the store's endpoint and credentials are the
// node's: --s3-endpoint and the AWS_ environment, Options.CheckpointS3).
// The uploader (uploader.go) is one value owned by the Server from Open to
// Close. Three calls put it on the wire (checkpoints.go), for registered
// applications, through admission and isolation like every call:
//
//   - PutCheckpoint (client streaming): the first chunk carries the
//     header (application; the part: store URI, object key
//     APP/RUN/NAME/part-NNNNN, size, the partition's CRC32-C as its
//     header and the manifest keep it). The node refuses at once a store
//     not its own (ErrNoCheckpointStore, FailedPrecondition), a bad key,
//     a size above MaxBlockBytes, and, if the bytes of partitions not yet
//     durable would exceed CheckpointQueueBytes, the whole call
//     (ErrQueueFull, ResourceExhausted: the task waits and tries again,
//     back-pressure). A partition it holds already (same key, size and
//     checksum) is answered held before any data. Otherwise it receives
//     exactly size bytes within BlockBytesInFlight, checks them
//     (checkpoint.CheckObject: size, header, checksum; ErrCorrupt if
//     not), writes them to DIR0/.checkpoints/<digest>.part (temporary
//     name, fsync, rename) and records them in the catalogue (k/APP\x00KEY,
//     synced) before it answers: from then on the partition survives a
//     worker kill and a node restart.
//   - CheckpointStatus: for each key, UNKNOWN, QUEUED (with the failed
//     attempts and the last error) or DURABLE (with when it was handed
//     and when it became durable). The driver polls it.
//   - GetCheckpoint (server streaming): the partition from the local
//     copy, or, without one, from the store (read through: the node
//     verifies it and keeps it as a local copy); from_store says which.
//
// CheckpointUploads goroutines upload the queued partitions, oldest
// first, each Put bounded by CheckpointPutTimeout; a failed upload is
// retried after 100 ms doubling up to CheckpointMaxBackoff, for as long
// as the application lives (the driver decides when to give up:
// client.Options.CheckpointTimeout). A durable partition's record says
// so (synced) and its file stays as a local copy; the copies are bounded
// by CheckpointCopyBytes, least recently used deleted first (the record
// stays, durable without a file). At Open the records are loaded: queued
// partitions are uploaded again (an upload Close cut short included),
// records whose file is gone are dropped (a queued one is then UNKNOWN to
// the driver, which computes it again), and files no record names are
// deleted. An application's partitions go with it (RemoveApp, the TTL):
// queued uploads are abandoned, copies deleted. Lock order: uploader.mu is
// taken alone, never with the Server's locks.
//
// # Catalogue and restart
//
// The catalogue (catalog.go) is one pebble database in Dirs[0]/.catalog,
// shared with the block store (blockstore.Options.DB): the shuffle's keys
// are a/, w/ and m/, the block store's b/, the checkpoint uploader's k/
// ("Checkpoints"), and each side reads only its own. Open loads the shuffle's part into memory; Fetch never reads
// pebble. It then opens the block store on the same database, which serves
// again every catalogued disk block whose file is intact (memory blocks
// are lost, by design) and deletes the block files no record names. On
// open the node also:
//
//   - gives every application a fresh TTL (heartbeats are not persisted);
//   - drops committed outputs whose files are missing or have the wrong
//     size (a crash of the machine: writers do not fsync), with a warning;
//   - removes the cached blocks of applications the catalogue does not
//     know (a PutBlock that raced its application's removal, then a
//     crash before it removed its block again);
//   - sweeps every DIR/APP/shuffle-S/ of every file that is not a final
//     file of a committed output: temporary files, finals never committed,
//     attempts that lost (DIR/APP/blocks/ is the block store's); it deletes
//     DIR/.trash and the directories of unknown applications (only if they
//     hold nothing but shuffle-N directories and an empty blocks
//     directory);
//   - refuses to start if Dirs differ from those the catalogue was made
//     with, since every output would then be looked for in the wrong place;
//   - refuses to start if the catalogue holds another node's name
//     (Options.Name, default the hostname, stored at the first start): a
//     directory is one node's. A node is its name and its directories,
//     not its address: restarted at another address (Options.Addr, a new
//     IP), it serves everything it had committed.
//
// A worker writing while its node restarts may lose its temporary files to
// the sweep; its task fails and is retried.
//
// # Admission
//
// With Options.ClusterSecret (`shoal node --cluster-secret-file`) a
// unary and a stream interceptor (admission.go) require every call to
// carry the secret in the gRPC metadata key shoal-cluster-secret
// (nodeclient.WithClusterSecret). A call without it fails with
// Unauthenticated "cluster secret required", one with another value with
// Unauthenticated "wrong cluster secret", before its handler runs. The
// comparison is of SHA-256 digests in constant time. Neither the secret
// nor a value presented is ever logged: a refusal is logged with its
// method and caller, at most once per 10 s. RunNode refuses to serve on
// an address other than loopback without a secret. The secret admits a
// caller; it does not encrypt the link.
//
// With Options.TLSDir (`shoal node --tls-dir`) the node serves only mutual
// TLS 1.3 (package internal/pki): a client must present a certificate of
// the node's CA, verified at the handshake, before any call and before
// the secret is looked at. A refused handshake is logged with its reason
// (expired, another CA, no certificate), at most once per 10 s, and
// counted with the refused calls. RunNode refuses to serve on an address
// other than loopback without a certificate either.
//
// # Per-application isolation
//
// Every application is bound, at its first RegisterApp, to the
// application token that call carries (metadata shoal-app-token,
// nodeclient.WithAppToken); its SHA-256 is kept in the catalogue (the
// application's record, version 2), so the binding survives a restart.
// The same interceptors then require that token of every call naming the
// application (in its request, a BlockId or a PutBlock header):
// Unauthenticated without it, PermissionDenied with another, before the
// handler runs. A call naming an application the node does not know is
// answered there with the handler's own answer, so that no call checked
// before a registration acts on the application after it. RegisterApp
// checks the binding under the application's lock. Status, HasBinary and
// PutBinary name no application and reveal none; a PutBlock's evicted
// list names only the caller's blocks. admission.go has the detail;
// TestEveryCallIsScoped fails when an RPC is added that names an
// application where the check does not look.
//
// # Workers started by the node
//
// In cluster mode the node starts the workers of an application from
// the driver's own executable (package launcher has the detail):
//
//  1. The driver asks HasBinary(sha256) and, if the node lacks it, uploads
//     it with PutBinary: the first chunk carries sha256 and size, every
//     chunk may carry data. The node refuses a bad digest
//     (InvalidArgument), a size above MaxBinaryBytes (ResourceExhausted,
//     from the header), data that is not the size announced or does not
//     hash to the digest (InvalidArgument "digest mismatch: got X"), a
//     binary it could not run (FailedPrecondition, saying to build it
//     with CGO_ENABLED=0 GOOS=linux GOARCH=...), and an upload into a
//     cache whose MaxBinaries binaries are all in use (ResourceExhausted).
//     Only a verified, synced binary gets its name.
//  2. The driver registers the application (RegisterApp) and calls
//     StartWorkers(app, binary_sha256, workers, env, args): an
//     unregistered application is FailedPrecondition, a binary not in the
//     cache NotFound, an env key not SHOAL_... or one the node sets
//     (SHOAL_ROLE, SHOAL_APP, SHOAL_NODE, SHOAL_WORKER_ID,
//     SHOAL_CLUSTER_SECRET) InvalidArgument; workers 0 means
//     Options.Workers (at most MaxWorkers). The node starts the workers
//     with exactly env plus its own variables and answers their IDs
//     (w-NAME-K), pids and states. A second call returns the workers as
//     they are (whatever binary or count it names).
//  3. The node supervises them: a worker that exits is restarted with a
//     new ID after a backoff, one that keeps crashing at start is given
//     up (Workers reports why, with its stderr tail). StopWorker kills
//     one; it is replaced at once. Each start is recorded in the
//     catalogue as RegisterWorker would (the record of the process it
//     replaces is deleted), without counting as a sign of the
//     application's life; so is the RegisterWorker of a worker the node
//     started. Only the driver's heartbeats keep such an application: a
//     worker restarted forever (say, failing to reach a driver whose
//     host is gone, after more than 2 s each time) does not keep it. A
//     restarted node numbers its workers past the recorded ones, so no
//     ID is given twice.
//  4. When the application is removed (RemoveApp, or its TTL expired:
//     the driver is gone) its workers get SIGTERM, SIGKILL 2 s later,
//     and are waited for before RemoveApp answers. Close stops every
//     worker. The workers die with the node process (parent-death
//     signal): a node killed leaves none.
//
// StartWorkers is not run under catMu (the workers' records take it);
// removeApp detaches the application's workers from the launcher under
// catMu, and StartWorkers checks the application again, under catMu,
// once its workers run, and stops them if it was removed meanwhile. So
// no worker outlives its application's removal, and a StartWorkers after
// it starts workers anew. Status reports the live worker processes
// (workers), the node's name, and per local directory the bytes of
// committed map outputs and of cached blocks on disk (dirs_usage, from
// counters kept with the others: no directory is walked).
//
// # TTL janitor
//
// Every JanitorInterval a goroutine removes the applications whose last
// heartbeat (or registration, or registration of a worker the node did
// not start) is older than their TTL (RegisterApp's, or Options.AppTTL),
// exactly as RemoveApp would, cached blocks and the workers the node
// started included. Puts and gets of blocks do not keep an application
// alive. It ends with Close.
//
// # Index cache
//
// Fetch gets a sorted output's offsets from a ristretto cache bounded by
// IndexCacheBytes (cost 8×(R+1) per entry). A miss reads the index file,
// decodes it (checksum) and checks it against the catalogue's lengths; a
// corrupt or truncated index is ErrCorrupt. The key is the output's
// in-memory serial number, unique to one installed (app, shuffle, map,
// attempt), so an entry can never describe a replaced or removed output.
//
// # Errors
//
// Handlers return the sentinels of package shuffle (and, for blocks, those
// of package blockstore), wrapped with what happened to what;
// nodewire.ToStatus (internal/nodewire/status.go) is the one place they
// become gRPC statuses (a code plus an ErrorInfo reason) and
// nodewire.FromStatus turns them back in nodeclient.Client, so errors.Is
// works across the wire:
//
//	shuffle.ErrInvalidArgument     InvalidArgument   bad ID ("../x"), bad range, too many blocks, files that disagree with a commit
//	shuffle.ErrUnknownApp          NotFound          never registered, removed, or expired (shuffle and block calls)
//	shuffle.ErrNoMapOutput         NotFound          no committed output for (shuffle, map)
//	shuffle.ErrOutOfRange          OutOfRange        reduce partition >= R
//	shuffle.ErrCorrupt             DataLoss          checksum, truncation, unreadable index; a block damaged in flight
//	shuffle.ErrClosed              Unavailable       the server is closed
//	blockstore.ErrInvalidArgument  InvalidArgument   bad block ID or level, block above MaxBlockBytes, size not as announced, memory level without --cache-bytes
//	blockstore.ErrCorrupt          DataLoss          a disk block failed its checksum (the node removed it)
//	blockstore.ErrClosed           Unavailable       the block store is closed
//	launcher.ErrInvalidArgument    InvalidArgument   bad digest, size or digest mismatch, bad env or args, too many workers
//	launcher.ErrCannotRun          FailedPrecondition  a binary the node cannot run (how to build one it can: in the message)
//	launcher.ErrAppNotRegistered   FailedPrecondition  StartWorkers before RegisterApp (or after the app's removal)
//	launcher.ErrUnknownBinary      NotFound          StartWorkers of a binary not in the cache
//	launcher.ErrUnknownWorker      NotFound          StopWorker of a worker the node does not run
//	launcher.ErrTooLarge           ResourceExhausted a binary above MaxBinaryBytes; a cache full of binaries in use
//	launcher.ErrClosed             Unavailable       the launcher is closed
//
// A call without the cluster secret, or with another, is Unauthenticated
// (admission.go), before any handler. A call about an application
// without its token is shuffle.ErrUnauthenticated (Unauthenticated), with
// another application's token shuffle.ErrPermissionDenied
// (PermissionDenied).
//
// A panic in a handler (a bug: no input should cause one) is recovered by
// an interceptor, logged, and returned as Internal.
//
// # Concurrency and lock order
//
// Server locks, in the order they are taken:
//
//  1. catMu (RWMutex): held shared by RegisterApp, RegisterWorker and
//     commits, exclusively by RemoveShuffle, RemoveApp, expiry and Close.
//     So an application cannot be removed in the middle of a commit, and
//     the catalogue is never used after Close (Close closes the block
//     store, which then no longer writes it, before the database).
//  2. one of stripes (Mutex): serialises commits of one (app, shuffle,
//     map), and registrations of one app. At most one is held.
//  3. mu (RWMutex): the in-memory maps. Held briefly, never across I/O.
//
// Fetch takes only mu, briefly, to look outputs up; it holds no lock while
// it reads files or sends. Removals move directories to DIR/.trash under
// catMu (a rename) and delete them after releasing it. The block calls
// take no Server lock but mu, briefly, to look the application up; the
// block store has its own (below all of these), and RemoveApp calls it
// under catMu. putSem (BlockBytesInFlight) is waited for holding no lock.
// The launcher's locks are its own: removeApp calls its Detach (brief)
// under catMu and waits for the workers without it; the launcher's
// Started callback takes catMu shared with no launcher lock held.
//
// # Metrics
//
// With Options.Registry (`shoal node --metrics-addr`) the node exposes
// Prometheus metrics (metrics.go). Most are read from the Metrics
// snapshot when scraped, so the fetch and commit paths keep only their
// atomic counters; map output bytes per directory are summed under mu,
// shared, at scrape time. Interceptors, outermost in the chain, observe
// every RPC's latency and error code and count open streams. The
// registry belongs to the process (the node command makes it); the
// package keeps none.
package shuffleservice
