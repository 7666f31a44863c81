// Package compute is the process and wire layer of shoal: the driver's
// endpoint that workers connect to (Endpoint), the worker's loop
// (RunWorker) and the local-mode launcher (StartLocal). It moves tasks and
// their outcomes between processes and tells when a worker is gone; it
// knows nothing of RDDs. A task's plan is opaque bytes, executed on the
// worker by a Runner that the caller supplies (package client).
//
// # Roles
//
// The driver (the user's program) runs one Endpoint, a gRPC server. Every
// worker, a thin process that runs tasks, holds one bidirectional stream
// to it (Driver.Connect) for its whole life. A worker also talks to the
// node service of its machine (package shuffleservice): it registers there
// first and gets the node's Layout, and its tasks commit map outputs to it
// and fetch blocks from every node (unless the worker serves its outputs
// itself: see below).
//
// # The stream protocol (computepb/compute.proto)
//
//	worker                                  driver
//	Hello{worker_id, node_addr, pid, slots, app, shuffle_addr}  -->
//	                                        <--  Welcome
//	                                        <--  RunTask{task_id, plan, inputs, ...}
//	TaskUpdate{task_id, RUNNING}            -->
//	TaskUpdate{task_id, SUCCEEDED|FAILED|KILLED, result or result_node,
//	           map_output, map_output_node, report, ...}  -->
//	                                        <--  KillTask{task_id}
//	                                        <--  ClientMessage{payload}
//	Heartbeat (every HeartbeatInterval)     -->
//	                                        <--  Heartbeat (every HeartbeatInterval)
//	                                        <--  Shutdown
//	(half-close)                            -->
//	                                        <--  (end of stream)
//
// The first message must be a Hello, within the heartbeat timeout, and
// the driver's first message is the Welcome (its heartbeats start after
// it); the driver refuses a worker whose ID is already connected, which has no
// slots, or which belongs to another application. Every task gets a
// RUNNING update when it takes a slot and exactly one final update
// (SUCCEEDED, FAILED or KILLED) unless its worker is lost first. A FAILED
// update says whether the task's own code failed (user_error: the Runner
// returned a UserError, or panicked; the error then holds the panic value
// and the stack) or the infrastructure did, and carries a fetch_failure
// when an input could not be fetched (a *shuffle.FetchFailedError).
// A KillTask for a task the worker does not have is ignored.
//
// Endpoint.Run, Kill and Message never block: messages are queued per
// worker and sent, in order, by one goroutine per stream.
//
// # What compute reads, and what is opaque to it
//
// compute moves tasks and their outcomes; what a task computes, and what
// its caller makes of the outcome, travel as bytes it does not read:
//
//   - RunTask.plan: the task, encoded by the caller and decoded by its
//     Runner.
//   - TaskUpdate.result: a result task's value, encoded by the Runner.
//   - TaskUpdate.report: whatever else the Runner tells the caller about
//     the task. Package client puts its report there (client/clientpb:
//     the cached blocks a task read, stored, evicted or could not find,
//     the checkpoint partitions it wrote or read, its accumulator
//     updates), versioned and decoded in one place on the driver; a task
//     with nothing to report sends no bytes.
//   - ClientMessage.payload: a message from the caller to a worker's
//     Runner outside of tasks (Endpoint.Message), handed to the Runner if
//     it is a Messenger (client's asks it to drop an RDD's blocks from its
//     heap). A Runner that cannot read one returns an error, which the
//     worker logs; the message is dropped.
//
// The other fields are the transport's own, each because compute fills
// it in or because it names something compute deals in (tasks, workers,
// node services, shuffle outputs):
//
//   - task_id, state: what a slot runs and how it ended; the worker sets
//     the final state from the Runner's error, its panic, or a kill.
//   - error, user_error: the worker writes them, telling the task's own
//     code failing (a UserError, a recovered panic with its stack) from
//     the infrastructure failing.
//   - inputs: the map outputs a task reads; its caller may send only the
//     outputs and sizes of the reduce partitions the task reads
//     (ShuffleInput.reduce_start, reduce_end; MapLocation.offset).
//   - fetch_failure: the worker fills it from a
//     *shuffleservice.FetchFailedError; shuffles and their node services
//     are compute's business (RunTask.inputs, output_shuffle, epoch).
//   - map_output, map_output_node: the shuffle output a map task
//     committed and the shuffle server that serves it, which depends on
//     the worker (its node, or itself with ServeShuffle).
//   - result_node: where a result too large for the stream (its message
//     limit is compute's, wire.go) was put instead, a node service.
//   - metrics: named counters, a generic map any Runner may fill; the
//     driver logs them with the task's end.
//   - duration_ms: measured by the worker around the Runner.
//
// # Loss detection
//
// A worker is lost, and reported once as a WorkerLost event with a reason,
// when
//
//   - its stream breaks: the process died (kill -9 closes its sockets, so
//     this is seen at once, in milliseconds) or its connection failed;
//   - no message at all arrived for HeartbeatTimeout (default 10 s): the
//     worker is hung (stopped, deadlocked, swapping) or unreachable. The
//     driver then cancels its stream; a worker that wakes up finds it
//     gone and exits;
//   - it breaks the protocol, closes its stream, or the endpoint closes.
//
// Updates that arrive after a worker's loss are dropped: the scheduler
// has already rescheduled its tasks. A lost worker never comes back under
// the same stream; a new process must connect anew.
//
// The other way round, the driver is lost to a worker, which cancels its
// tasks (waiting a few seconds for them) and exits with an error wrapping
// ErrDriverLost, when
//
//   - its stream breaks: the driver died or cut it (a lost worker's
//     stream is cut), or the connection failed;
//   - no message at all arrived from the driver for the worker's
//     DriverTimeout (default 10 s, the same as the driver's
//     HeartbeatTimeout; SHOAL_DRIVER_TIMEOUT, LocalOptions.DriverTimeout,
//     client.Options.HeartbeatTimeout sets both): the endpoint sends every
//     worker a Heartbeat every EndpointOptions.HeartbeatInterval (default
//     1 s), so silence means a hung driver or a route that black-holes
//     its packets without resetting the connection.
//
// Heartbeats are symmetric, then: when a stream falls silent, the driver
// declares the worker lost after its HeartbeatTimeout and the worker gives
// up at about the same time, instead of running tasks whose results
// nobody will read. The transport keepalive (wire.go: a ping after 10 s of
// silence, given up 5 s later) remains underneath as a last resort.
// Workers never outlive their driver.
//
// # Events
//
// Endpoint.Events delivers WorkerAdded, TaskUpdate and WorkerLost, in
// order per worker (WorkerAdded first, WorkerLost last). Stream handlers
// push events to an unbounded in-memory queue, drained into the buffered
// channel by one goroutine: a slow consumer delays events but never
// blocks a handler (which would stop heartbeats from being seen and make
// healthy workers look hung). Events are a handful per task, so the queue
// stays small. Close closes the channel.
//
// # Slots
//
// A worker runs at most Slots tasks at once, each in its own goroutine
// with its own cancellable context. The driver should not send more than a
// worker's slots (it knows them from the Hello); if it does, the extra
// tasks queue on the worker in arrival order. KillTask cancels the task's
// context (a queued task is dropped); the Runner must honour it, and the
// task reports KILLED. On Shutdown, or when the driver is lost, every task
// is cancelled and the worker waits a few seconds for them.
//
// # The environment contract
//
// Workers are re-executions of the driver's own binary (functions travel
// by name, so a worker must run the same code), recognised by their
// environment: SHOAL_ROLE=worker, SHOAL_DRIVER, SHOAL_NODE, SHOAL_APP,
// SHOAL_WORKER_ID and optionally SHOAL_SLOTS, SHOAL_HEARTBEAT_INTERVAL,
// SHOAL_DRIVER_TIMEOUT and SHOAL_SERVE_SHUFFLE.
// Any binary that may be a worker (the shoal CLI, a user's program built
// with package client) calls WorkerFromEnv first thing in main and, if it
// reports a worker, runs RunWorker instead of its normal main.
// WorkerOptions.Environ produces that environment. A local worker also
// inherits the driver's environment and gets LocalOptions.WorkerEnv: the
// driver's S3 endpoint and credentials (client.Options.S3, as AWS_
// variables), which it needs to read s3:// inputs and write outputs; they
// are never logged.
//
// # Workers that serve their own map outputs
//
// With WorkerOptions.ServeShuffle (SHOAL_SERVE_SHUFFLE=1,
// LocalOptions.ServeShuffle; `shoal run --shuffle-service off`) there is no
// external shuffle service, as in Spark without it: map outputs are served
// by the worker process that wrote them and die with it. RunWorker still
// registers with its node service, and then opens a shuffle server of its
// own (shuffleservice.Open and Serve, in-process): its files in
// NODE_DIR/worker-shuffle/APP/WORKER under each of the node's local
// directories, its catalogue in memory, listening on the node's host on a
// port picked by the OS. The application is registered with it. The
// task's TaskEnv then points at that server: ShuffleAddr is its address
// (NodeAddr otherwise), Node a client of it (commits) and Layout its
// directories, so map tasks write and commit there, and a reader reads
// straight from disk only the blocks of its own worker; every other block,
// those of other workers on the same machine included, is fetched from
// the address that serves it. The worker reports that address in its
// Hello (shuffle_addr, WorkerInfo.ShuffleAddr) and with every map output
// (TaskUpdate.map_output_node): it is the output's location, which the
// driver hands to the readers. When the worker exits its server closes and
// its files are removed; when it is killed the launcher removes them once
// it is reaped, and fetches from its address fail as unreachable: the
// driver must recompute the outputs it had registered there. The node
// services hold no shuffle files in this mode.
//
// # The local launcher
//
// StartLocal starts a cluster on this machine: Nodes node services
// (`NodeBinary node --listen 127.0.0.1:0 --dir DIR/node-i`, through
// internal/nodeproc), registers the application with each (and keeps it
// alive with heartbeats), and starts WorkersPerNode worker processes per
// node, named w-<node>-<k>. LocalOptions.AdvertiseNode may give a node
// another address than the one it listens on, used by everything but the
// launcher itself (tests put a fault-injecting proxy there). Every child
// gets a parent-death signal (Linux) so none outlives the launcher, and
// every child is waited for so none is left a zombie. KillWorker and KillNode kill with SIGKILL, as a
// crash would; AddWorker starts a replacement. Close stops workers
// (SIGTERM, then SIGKILL), then nodes.
//
// # What compute does not do
//
// It does not decide where tasks run, retry them, track map outputs or
// blocks, or interpret plans, results or reports: that is the DAG and
// task scheduler in package client. It does not restart lost workers
// by itself either; the scheduler asks the launcher to.
//
// # Cluster mode
//
// StartRemote joins node services that already run, one per machine
// (`shoal node`), named by a master URL (ParseMaster): shoal://h1:7077,
// h2:7077 lists them; dns://name:7077 is every address a name resolves
// to (a Kubernetes headless Service), resolved again every 2 s so that
// nodes that appear join. A node that cannot be joined (down, or it
// refuses) is left out and tried again after a pause that doubles up to
// a minute; the start fails only when no node joins. On each node the
// Remote
//
//  1. registers the application with a TTL (RemoteOptions.AppTTL, 30 s)
//     and keeps it alive with a heartbeat every 2 s;
//  2. asks whether the node's binary cache holds the driver's executable
//     (its SHA-256) and uploads it, streamed, if not: a node keeps a few
//     binaries, so later applications of the same build upload nothing;
//  3. asks the node to start the workers (StartWorkers) with the
//     environment of the contract above, minus what the node sets itself
//     (its address, the worker ID, the role, the cluster secret).
//
// The node starts, supervises and stops the workers
// (shuffleservice/doc.go, "Workers started by the node"): a worker that
// dies is restarted by its node, with a new ID, so the Remote's
// AddWorker starts nothing; KillWorker asks the node to kill one. A node
// that gives up (the binary crashes at start) says so to the Remote's
// next check, which reports it on Failures with the worker's stderr
// tail: the start of a Context fails with it. A node that runs no worker
// of the application (it was restarted) is given the application, the
// binary and the workers again. Close removes the application from
// every node, which stops its workers; a driver that dies without
// closing leaves them until the TTL expires, and its workers give up on
// it sooner (their DriverTimeout).
//
// Admission: every call to a node carries the cluster secret
// (nodeclient.WithClusterSecret), which a node listening beyond loopback
// requires; every worker presents the application's token
// (EndpointOptions.Token, random per endpoint) to the driver, which
// refuses a stream without it. Local mode takes the same path with an
// ephemeral secret (LocalOptions.ClusterSecret).
//
// Mutual TLS (docs/security.md) is under both: the driver presents its
// certificate to the nodes (RemoteOptions.TLS, LocalOptions.TLS) and its
// endpoint serves with it (EndpointOptions.TLS); a worker presents its
// node's (WorkerOptions.TLSDir, SHOAL_TLS_DIR: the node gives it its own
// directory) to nodes and to the driver, and accepts as its driver only
// the certificate whose SHA-256 it was given (SHOAL_DRIVER_CERT_SHA256),
// whatever the driver's address. Nodes are verified by the host dialled,
// or by the name every node's certificate carries (TLSServerName,
// SHOAL_TLS_SERVER_NAME). client.NewContext gives local mode an ephemeral
// CA; without TLS (client.Options.Insecure) every link is plain TCP.
//
// # Locks
//
// Endpoint: Endpoint.mu, then workerConn.mu, then eventQueue.mu. Worker:
// one mutex (worker.mu) over its tasks, never held while sending.
package compute
