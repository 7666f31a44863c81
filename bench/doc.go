// Package bench measures shoal with real processes.
//
// RunShuffle is `shoal bench shuffle`: it starts K node services as child
// processes on 127.0.0.1, runs M map writers that commit their outputs to
// them, then R readers that read every record back, and reports times,
// files and bytes on disk, peak memory, GC pauses and an order-independent
// digest of the records written and read. Equal digests mean every record
// arrived exactly once.
//
// Map m runs "on" node m mod K: it writes into that node's directories and
// commits there. Reduce r runs on node r mod K: it reads the blocks of its
// own node from disk and fetches the others over gRPC (RemoteOnly fetches
// everything, to measure the network path alone).
//
// Records are gensort-like: a 10-byte random key and a value that holds
// the record's number and a letter filler, so they compress a little.
// Partitions are chosen by the key's leading bytes, uniformly.
//
// Tasks run Parallelism at a time in this process, as in one worker with
// that many slots; time is wall clock from the first write to the last
// record read.
//
// # Fault experiments
//
// RunFaults is `shoal demo faults`: DESIGN.md §6 measured. Each scenario
// runs one job (a narrow filter + count, or the ecommerce group-by) twice,
// each time on a fresh local cluster (3 nodes of 2 workers by default):
// without a fault, then with one. The fault comes at a moment read from
// the driver's event log, which the experiment polls: the target stage
// (the narrow job's only stage, the wide job's map stage) has a worker
// that has finished a task of it and runs another; that worker is killed
// with SIGKILL (Local.KillWorker), or its node (Local.KillNode). Everything
// reported comes from the event log afterwards (events.go): reruns are
// task_start events of a stage's partition beyond its first, recomputed
// map outputs those of map partitions already committed, detection the
// worker_lost or node_lost event. Answers are checked against the
// single-process references of package jobs (checkedjob.go).
//
// RunCheckpointBench is `shoal bench checkpoint`: it starts a real MinIO
// (internal/miniotest) and writes a checkpoint of P partitions
// (gensort-like records, or random bytes) with Parallelism partitions at
// once, then its manifest, against one minio-go PutObject of the same
// bytes with the same part size, Runs times each, taking turns going
// first; it reports both medians and their ratio in MB/s of raw data. Each
// checkpoint is read back and checked, untimed.
//
// RunSoak is `make soak`: the ecommerce job and a word count again and
// again on one cluster (replaced now and then) while random workers, and
// now and then a random node, are killed at random times; every answer is
// checked, every job has a timeout.
package bench
