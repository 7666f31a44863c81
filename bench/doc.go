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
// that many slots. Write time is wall clock from the first record
// written to the last map committed, read time from the first reader
// opened to the last record read; total is their sum (counting the files
// between them and removing the application afterwards are not in it).
//
// Besides times, a run reports what each mode costs the machine: files
// created and the bytes and blocks they take (a walk of the node
// directories once the maps committed), the peak number of open file
// descriptors of this process and of the node services (fdSampler counts
// /proc/PID/fd every 20 ms, or four times the last count's duration if
// longer, once more just before each commit, when a writer whose buffers
// filled holds a file per partition, and when a write fails), the
// writers' peak RSS (VmHWM once the last map committed), GC pauses, and
// fetch requests (the readers' and the nodes' counts). A
// run that fails reports what it measured until then, with the phase it
// failed in and the system error behind it (EMFILE, ENOSPC, ...).
//
// # The shuffle study
//
// RunSweep is `shoal bench shuffle --sweep` and `make bench`: RunShuffle
// over a grid of modes × map counts × reduce counts × data sizes, each
// run in a child process of its own (`shoal bench shuffle --json`), so that
// peak RSS, GC and open files belong to one cell and a cell that dies (too
// many open files, the OOM killer, the per-run time limit) is recorded with
// its reason while the sweep goes on. The child is stopped at the time
// limit with SIGTERM (it then reports what it measured) and its process
// group killed 30 s later. After every cell, results.json, results.md,
// machine.md and the SVG charts (svgchart.go, no plotting dependency) are
// rewritten in the results directory; --resume runs only the cells
// results.json does not hold, so an interrupted sweep loses at most the
// cell it was running. bench/README.md presents the study's findings.
//
// # Fault experiments
//
// RunFaults is `shoal demo faults`: docs/DESIGN.md §6 measured. Each scenario
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
// # Against the peers
//
// RunPeers is `shoal bench peers` and `make bench-peers`: each kind of
// work run by shoal and by the tool a user would pick instead, as whole
// processes, alternately (shoal first in odd runs, the peer first in even
// ones), Runs times each, medians. A row generates its inputs first
// (untimed, with `shoal gen`), and checks each run's two outputs equal
// (peerscheck.go: ranks to a relative 1e-9, sorted bytes, the multiset of
// group-by lines, word counts, the tasks' answers) before removing them.
// The rows: PageRank against networkx (peers_networkx.py, run by Debian's
// /usr/bin/python3 and computing shoal's definition), `shoal run sort`
// against GNU sort, `shoal run ecommerce` against DuckDB (bench/duckcmp,
// a module of its own because it needs cgo), `shoal run wordcount` of a
// directory of small files against the same bytes as one file, and the
// cost of a task (RunTasks, `shoal bench tasks`: many tasks against
// fewer). runTree (peersproc.go) runs a side in a process group of its
// own and samples its process tree from /proc every 100 ms (10 ms in its
// first second): peak RSS is
// the sum of each process's VmHWM (shoal: the driver, its node service
// and workers). WritePeersReport writes results.json, results.md,
// machine.md and ratios.svg.
//
// RunSoak is `make soak`: the ecommerce job and a word count again and
// again on one cluster (replaced now and then) while random workers, and
// now and then a random node, are killed at random times; every answer is
// checked, every job has a timeout.
package bench
