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
package bench
