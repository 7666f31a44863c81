// Package checkpoint is shoal's checkpoint store (docs/DESIGN.md §5): where an
// RDD's partitions are written so that its lineage can be truncated, and
// where a restarted driver finds the newest complete checkpoint to resume
// from.
//
// # Stores
//
// A Store is a flat space of objects under '/'-separated keys, with
// atomic Put, Get, List and Delete. Open picks one from a URI:
//
//	s3://bucket/prefix   S3-compatible service, through minio-go (S3Store)
//	file:///abs/path     local directory (DirStore), the embedded default;
//	/abs/path, rel/path  the same
//	mem://name           this process's memory (MemStore), for tests
//
// The S3 store takes Options: the endpoint from Options.Endpoint (the CLI's
// --s3-endpoint) or $AWS_ENDPOINT_URL, whose scheme chooses http or https;
// credentials from $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY; objects
// above Options.PartSize (16 MiB) are uploaded in parts, several at once;
// minio-go retries transient errors with exponential backoff; every
// operation is bounded by Options.OpTimeout besides the caller's ctx, and
// connecting by DialTimeout, so a dead endpoint gives an error, not a hang.
// Open checks the bucket (one list request), so a wrong endpoint, wrong
// credentials or a missing bucket are reported at once, each naming the
// endpoint and the bucket and saying what to do (ErrUnavailable,
// ErrAccessDenied, ErrNoBucket). Options, the client and the
// classification of errors are package objstore's, shared with client's
// s3:// inputs and outputs: errors are classified in one place
// (objstore.Client.Wrap) and S3Store.classify gives them this package's
// sentinels.
//
// Put is atomic on every store: S3's PutObject is (a multipart upload
// becomes visible only when completed), the directory store writes a
// temporary file, fsyncs it, renames it into place and fsyncs the
// directory, and memory swaps a slice under a lock. No store ever shows a
// half-written object under its final key.
//
// # Layout
//
// A checkpoint is named by its caller (e.g. ranks-000030: one path
// element, ValidateName) and is the set of objects under NAME/:
//
//	NAME/part-00000 ...   one object per partition (WritePartition)
//	NAME/manifest.json    written last (WriteManifest)
//
// A partition object is a 24-byte header (magic, version, codec, raw
// length, CRC32-C of the raw bytes, CRC32-C of the header and payload)
// and the partition compressed as one s2 block, or stored raw when s2
// does not shrink it (partition.go). The manifest is JSON: the partition
// count, each partition's key, size, raw size and checksum (PartInfo),
// the caller's description of the partitioner and of the truncated
// lineage, the caller's sequence number Seq, the application and run
// that wrote it, the job and input it is of, a free Meta map (PageRank
// keeps its iteration there), the creation time, and a CRC32-C of itself.
// Its version is 2; version 1 (no application, run, job or input) still
// reads.
//
// # The protocol
//
//  1. Each task writes its partition: WritePartition(ctx, st, name, p,
//     raw) compresses, checksums and Puts it, and returns its PartInfo.
//     Or (the engine's default, docs/DESIGN.md §5) the task encodes it
//     with EncodePartition and hands the object to its node service,
//     which checks it (CheckObject), uploads it under RunKey(run,
//     PartKey(name, p)) and reports it durable; a reader given the
//     object by a node checks it with DecodePartition.
//     Tasks in different processes write different partitions at once; a
//     retried or speculative attempt may write the same partition again:
//     the bytes are the same (partitions are deterministic), so the object
//     is too, and whichever Put lands last is equal to the first.
//  2. Once every partition is written, the driver calls WriteManifest with
//     the PartInfos in partition order. It checks that every partition's
//     object is in the store with the right size, then Puts the manifest.
//     This Put is the commit: before it the checkpoint does not exist.
//  3. A reader calls ReadManifest (or List, for the complete checkpoints
//     by Seq) and ReadPartition, which checks the object's size and both
//     checksums against the manifest and the header before it returns a
//     byte. A failure is an error wrapping ErrCorrupt that names the
//     partition's URI; corrupt data is never returned.
//
// A checkpoint without a manifest (its writer died, or is still writing)
// is invisible: List leaves it out, ReadManifest fails with ErrIncomplete.
//
// # Runs
//
// A store is shared by runs: a run is one driver's life (a
// client.Context), named by a RunID, its application and an ID made when
// it began (the UTC time and random bits, NewRunID). Its checkpoints live
// under APP/RUN/, and RunStore is that part of the store as a Store of
// its own, on which everything above works unchanged:
//
//	APP/RUN/_run.json              RunMarker, written before its first manifest (BeginRun)
//	APP/RUN/_uses/APP2/RUN2/NAME   it reads checkpoint NAME of run APP2/RUN2 (RecordUse)
//	APP/RUN/NAME/...               its checkpoints, as above
//	APP/RUN/_end.json              RunEnd, written when it ends (EndRun)
//
// The '_' names cannot be checkpoint names. Keys of two elements
// (NAME/part-00000) are checkpoints of the layout before runs, at the
// store's root: Runs lists them, ListAll and so a resuming driver do not
// read them, PruneRuns deletes them with OldLayout.
//
// Runs reads a whole store: every run, its markers, manifests, incomplete
// checkpoints, uses and size. ListAll gives every run's complete
// checkpoints, oldest first by creation, each with App and Run set to
// where it is (Manifest.Ref, "APP/RUN/NAME", names it).
//
// A run is finished when it wrote its end marker. PruneRuns deletes, on
// request, the checkpoints of finished runs (filtered by application, run
// or job), never one that a run which has not finished reads, and never
// anything of a run that has not finished, unless asked to take runs
// that wrote nothing for a given time (AbandonedAfter: their driver was
// killed). A run whose checkpoints are all deleted loses its markers, the
// end marker last. A run that starts to read a finished run's checkpoint
// while PruneRuns deletes it fails to read it, saying it is incomplete.
//
// # Retention
//
// Prune(ctx, st, keep) sees only st, a run's part of a store in
// client.Context's use, and deletes the complete checkpoints beyond the
// newest keep by Seq (manifest first, then the partitions, so an interrupted
// deletion leaves a manifest-less leftover rather than a checkpoint with
// holes), and the manifest-less leftovers none of whose objects is newer
// than the oldest kept checkpoint's first object, by the store's own
// clock (ObjectInfo.ModTime). A checkpoint being written after the kept
// ones has newer objects, so it is never deleted.
//
// # Limits
//
//   - Partitions are whole byte slices in memory, at most 4 GiB each
//     compressed as one s2 block (larger ones are stored raw).
//   - If two attempts of a partition wrote different bytes (a
//     non-deterministic partition), the manifest describes one attempt and
//     the store may hold the other's object: ReadPartition refuses it as
//     corrupt, never returns it.
//   - A writer that stalls, without writing, from before the oldest kept
//     checkpoint was begun until Prune runs loses its partitions; its
//     WriteManifest then fails (a partition is missing), it never commits a
//     checkpoint with holes unless Prune deletes between that check and the
//     manifest's Put.
//   - A local directory keeps the temporary file of a Put cut short by a
//     crash (".tmp-*", invisible to List) until a Prune finds it an hour
//     old (staleTempAge); a store that is never pruned keeps it.
//   - A mem:// store lives in one process and each Open makes a new one.
package checkpoint
