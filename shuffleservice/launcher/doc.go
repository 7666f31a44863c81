// Package launcher is the part of the node service (package
// shuffleservice) that starts the workers of applications in cluster
// mode: a cache of the drivers' executables and the supervision of the
// worker processes started from them. The node service puts it on the
// wire (PutBinary, HasBinary, StartWorkers, StopWorker, Workers); its
// doc.go, "Workers started by the node", describes the protocol. A
// Launcher has one owner, the node's Server, and no package-level state.
//
// # Binary cache
//
// Dir/.binaries/<sha256> holds each executable under its SHA-256 (64
// lower-case hex digits). An upload is received into a temporary file
// (.tmp-*) of that directory, bounded by Options.MaxBinaryBytes (checked
// from the header, before any byte is received), and must carry exactly
// the size announced and hash to the digest announced ("digest mismatch:
// got X", InvalidArgument). The file is then checked to be one the node
// can run (CheckRunnable: a Linux ELF executable for the node's
// architecture without a PT_INTERP segment, i.e. statically linked, since
// a container FROM scratch has no dynamic loader; else ErrCannotRun,
// saying to build with CGO_ENABLED=0 GOOS=linux GOARCH=...), made
// executable (0755), synced, and renamed to its digest; the directory is
// synced. A failed upload leaves nothing; a temporary file left by a
// crash is deleted by the next Open. Concurrent uploads of one digest
// each write their own file and the last rename wins, with the same
// bytes. At most two uploads are received at once. An upload of a digest
// the cache holds is answered at once without reading its data.
//
// The cache keeps at most Options.MaxBinaries binaries. Making room
// removes the least recently used binary that no application's workers
// run from (a use: an upload, HasBinary, a StartWorkers, the end of an
// application's workers); the last use is the file's modification time,
// so it survives a restart. If every binary is in use the upload is
// refused (ErrTooLarge).
//
// # Workers
//
// Start runs Spec.Workers processes of the binary, each in a slot, with
// arguments Spec.Args, in the working directory Dir/.workers/N-APP (HOME;
// TMPDIR is its tmp/), and exactly this environment, nothing inherited
// from the node: Spec.Env (keys SHOAL_... or the S3 client's AWS_
// variables, checked by CheckEnv), then
// SHOAL_ROLE=worker, SHOAL_APP, SHOAL_NODE (the node's advertised
// address), SHOAL_WORKER_ID (w-NAME-K, K counting up per application for
// every process started, restarts included, from Spec.FirstK),
// SHOAL_CLUSTER_SECRET (if the node has one), SHOAL_TLS_DIR (the node's
// identity directory, if it has one: its workers present its
// certificate), PATH, HOME and TMPDIR. Each
// process is the leader of its own process group and, on Linux, gets
// SIGKILL when the node dies (parent-death signal). Every process is
// waited for by a goroutine of its own from its start (no zombie, even
// with the node as PID 1); once it has exited, before it is reaped, what
// it left in its group is killed. Its stdout and stderr are copied to
// the node's log at debug level, line by line, each line prefixed with
// the worker's ID and cut at 4 KiB; the last 4 KiB of its stderr are
// kept. The cluster secret is replaced by "[cluster secret]" in both.
//
// A second Start for an application whose workers run returns them and
// starts nothing.
//
// # Supervision
//
// One goroutine per slot waits for its process and starts the next:
//
//   - A process that exits is replaced after a backoff: 200 ms, doubling
//     up to 10 s, back to 200 ms once a process ran 30 s.
//   - A process that exits within 2 s of its start (or cannot be
//     started) three times in a row fails the slot (Failed): it is not
//     restarted, and Workers reports "worker w-... exited at start 3
//     times: exit status 2; stderr: <tail>".
//   - StopWorker kills the process's group (SIGKILL); the slot starts a
//     replacement at once, with a new ID, without backoff and without
//     counting it as a crash.
//   - Detach (the application removed: RemoveApp, TTL expiry) and Close
//     send SIGTERM to every process group, SIGKILL 2 s later to those
//     left, and wait for them; then the binary is released and the
//     working directory deleted. Dir/.workers is emptied at Open: the
//     workers of a previous node process died with it.
//
// Options.Started is called after every start, so that the node records
// its workers (and where their numbers are).
//
// # Locks
//
// startMu serialises Start. mu guards the applications and their slots;
// it is never held while a process is started or waited for, nor while
// Options.Started runs. A process's own mutex (proc.mu) orders signals
// with its exit and is taken after mu. The binary cache has its own
// mutex, never held with mu.
package launcher
