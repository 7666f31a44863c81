// Package client is shoal's driver side: the typed RDD API, the lineage
// graph, the DAG scheduler, and the code that rebuilds and runs a stage's
// pipeline on a worker (the Runner that package compute calls).
//
// # Programs
//
// A program calls Init first thing in main (a worker is the program's own
// binary re-executed; Init runs it and never returns there), then
// NewContext, which starts the local cluster: node services and workers as
// child processes on 127.0.0.1 (Options.Nodes, WorkersPerNode, Slots).
// Transformations build RDDs and run nothing; an action (Count, Collect,
// Reduce, Fold, Take, Foreach, CountByKey, SaveAsTextFile, SaveAsRawFile)
// runs a job. Jobs run one at a time per Context.
//
// Options (options.go) follow the other packages' shape: a zero field
// means its default (EnsureDefaults, the Default* constants), and
// Validate reports every problem at once, each wrapping ErrInvalidOptions
// and naming its field: a negative count, size or duration; an unknown
// ShuffleMode or Codec; MaxDirectResultBytes above MaxResultBytes;
// CheckpointKeep without a CheckpointDir; S3Endpoint and S3.Endpoint that
// differ; S3 options that cannot work (objstore.Options.Validate, once
// the AWS variables are read), checked only when S3 or S3Endpoint is
// set. NewContext validates before it starts anything.
//
// Every action accepts an empty RDD: Count is 0, Collect and Take empty,
// Fold its zero value, CountByKey an empty map, the Save actions write
// empty part files. Only Reduce has no value to return then: its error
// wraps ErrEmptyRDD and says to use Fold, which a computation that may
// meet an empty RDD (a sum over what a filter kept, PageRank's dangling
// rank) uses instead.
//
// # Inputs
//
// TextFile, CSVFile and GensortFile read a file, or a directory: every
// file below it, recursively, by path in lexical (byte) order, so
// partitions and Collect come in a stable order. As in Hadoop and Spark,
// files and directories whose names start with '.' or '_' are skipped
// (_SUCCESS, .crc files, _temporary/, an output being written). Empty
// files and directories give no records. A symbolic link to a file is
// read; a symbolic link to a directory, or a FIFO or device, fails the
// job with an error naming it: nothing is left out without a word. Lines
// are bytes: "\r\n" loses its "\r", invalid UTF-8 passes through, and
// a line is held whole in memory however long (a record that a shuffle
// cannot carry, over 16 MiB, fails the job saying so). InputIdentity
// fingerprints an input (paths, sizes, modification times) for
// checkpoints. The files are cut into byte-range splits of about
// total/minParts bytes, and consecutive splits packed into partitions of
// about (total + 4 MiB per split)/minParts (fileSplits, as Spark SQL packs
// files with its open cost): a single file is cut as before, a directory
// of thousands of small files makes about minParts partitions, not one
// per file. minParts 0 or less takes DefaultPartitions: the fewest full
// waves of the task slots with at most 128 MiB of input each.
//
// # Outputs
//
// SaveAsTextFile and SaveAsRawFile (DESIGN.md §8) write the part files
// under a temporary sibling of the output, ".NAME.tmp-RANDOM", made by
// this job with os.Mkdir (so it is never anyone else's), and move it into
// place with one rename(2) when the job succeeds; a failed job removes
// its temporary directory and leaves no output. The output must not
// exist, or be an empty directory (rename(2) replaces it atomically); an
// existing file, symbolic link or non-empty directory is refused and left
// as it is, and so is one that appears while the job runs (rename(2)
// fails rather than replace it). An output that is an input of the
// lineage, or inside one, is refused: a later job reading the input would
// read it. Nothing is ever deleted but what the job wrote under its
// temporary name.
//
// # Inputs and outputs on S3
//
// The file inputs and outputs also take s3://bucket/key URIs (s3.go,
// through package objstore), on the service Options.S3 configures (the
// AWS variables by default). The driver lists an input (s3Input: the
// object the URI names, else every object under it as a prefix, with the
// directory rules above; an empty listing, or a directory with a
// _temporary/ and no _SUCCESS, is an error naming it) and cuts it into
// splits as it cuts files; each split carries the object's size and ETag,
// and a task reads it with ranged GETs pinned to that ETag
// (objstore.RangeReader: the split, then small windows to finish its last
// line). The workers have the endpoint from the task and the credentials
// from their environment, where the driver put Options.S3's
// (compute.LocalOptions.WorkerEnv).
//
// An s3://bucket/prefix output (saveS3) must have no object under
// prefix/ nor of its name, and not be inside an s3:// input. The driver
// writes prefix/_temporary/RUN/_writing; each task streams its part to
// prefix/_temporary/RUN/part-NNNNN.task-ID (a multipart upload, one part
// in memory) and returns that name, so the driver promotes exactly the
// winning attempt of each partition: it checks that nothing else appeared
// under the prefix, copies each part to prefix/part-NNNNN on the server,
// deletes the temporary parts, writes prefix/_SUCCESS and deletes the
// marker. A failed job deletes its temporary objects and any part it had
// copied (best effort) and never writes _SUCCESS. docs/running.md,
// "Inputs and outputs on S3", has the protocol and its limits.
// # The graph
//
// An RDD[T] wraps an untyped node: its partitions, its dependencies on
// parent nodes (narrow: computed in the same task; shuffle: read from a
// shuffle written by a map stage), its partitioner if its keys are known
// to be partitioned (after a shuffle, kept by MapValues and Filter), and
// an opSpec: how a worker rebuilds the operator. Two RDDs partitioned by
// equal partitioners are cogrouped and joined through narrow dependencies
// (PartitionBy is then a no-op), which is what keeps PageRank's links in
// place across iterations.
//
// # Functions and operators by reference (docs/DESIGN.md §7)
//
// A user's function must be a top-level function: it travels as a
// fnref.Ref, its symbol name and its offset from a reference function,
// which is the same in every copy of the binary. A function literal is
// rejected with an error naming it and saying what to write instead; the
// error is recorded on the RDD and returned by the first action (Err
// reports it earlier). A struct value given to a ...With variant travels
// as the JSON of its exported fields; Accumulator and Broadcast fields in
// it are bound to the task when it is decoded.
//
// The framework's own operators are zero-size generic types (mapOp[T,U],
// shuffleWriteSink[K,V], ...) with an op or sink method. A generic
// function instantiated inside generic code is a closure over its type
// dictionary and cannot travel as a function, but the instantiated type's
// descriptor is static data of the binary: an opSpec holds a type
// reference (fnref.OfType) and the operator's parameters as JSON. Every
// plan carries fnref.Canary(); a worker whose own differs runs another
// binary and refuses the task before resolving any reference. This is an
// extension of docs/DESIGN.md §7, which speaks only of user functions.
//
// # Stages and plans
//
// The DAG scheduler cuts a job's lineage at shuffle dependencies (dag.go).
// A map stage writes one shuffle and is made once per Context, so a later
// job finds its outputs registered; a result stage is made per job. A
// stage's plan is its pipeline's nodes, parents first, each an opSpec with
// the indexes of its narrow parents, and a sink: the shuffle write of a
// map stage, or the action's sink. A worker rebuilds the pipeline as
// nested iter.Seq functions and drains it into the sink; records flow
// through the whole pipeline one at a time.
//
// A result stage's plan carries MaxDirectResultBytes: a larger result is
// put in the worker's node service as block (app, resultsRDD, task ID) and
// the task's update names the node; the driver fetches it before taking
// the result (a failed fetch fails the task) and removes the stage's
// results from those nodes when the attempt ends (result.go). The results
// a job's driver holds total at most MaxResultBytes (jobResults); a result
// block's size travels with it, so one that would cross the bound fails
// the job before it is fetched.
//
// planStages decides what a job runs: a map stage whose outputs are all
// registered is skipped (stage_skipped) without looking at its parents,
// since nothing of them is needed; otherwise its parents come first, then
// its missing partitions. Each stage is visited once per attempt.
//
// # The driver
//
// One goroutine, the scheduler's loop (loop.go), owns every piece of
// scheduling state: stages and their attempts, tasks, the map-output
// tracker, the block tracker, the workers and the lost nodes. Nothing else
// reads or writes it, so it has no lock. A job, Close, Unpersist,
// NewBroadcast, RestartNode and PlanTime are requests sent on the loop's
// channel; the caller waits for the reply (a future, as in
// hashicorp/raft). A job runs on the loop, which meanwhile keeps serving:
// a request that comes during a job waits for its end, except Close,
// which ends the job with "job N: the context was closed while it ran".
//
// The loop never waits on the network. A node probe, a result-block
// fetch, a checkpoint's manifest write, the removal of result blocks and
// a broadcast's store run in goroutines started by async, with the job's
// context (or the loop's, which ends with Close) and a deadline; their
// answer comes back on the loop's done queue as a continuation that the
// loop runs (bigslice's evaluator does the same with its tasks). A stage
// attempt's select waits on the workers' events, the done queue, the
// requests and its timers at once (stagerun.go); between stages, await
// waits for one such answer while serving the rest.
//
// The loop talks to three small interfaces (cluster.go): the
// taskEndpoint where tasks go (compute.Endpoint), the cluster that starts
// and replaces workers and restarts nodes (compute.Local; cluster mode
// will be another), and the nodeService that probes nodes and puts, gets
// and removes blocks (nodeClients over gRPC). fakeCluster (fake.go) is an
// in-memory implementation of all three, whose workers answer each task
// at once as a test says: the failure table below runs against it as
// data-driven cases without processes (failure_table_test.go), besides
// the tests with real processes.
//
// Lock order: there is none on the scheduler's side. Context.mu guards
// only the graph's counters, the checkpointed nodes and the accumulators,
// which the user's goroutines touch; the event log has its own lock.
//
// # Scheduling and failures
//
// Tasks go to free worker slots; while none is free they wait, and they
// resume when a slot frees or a worker joins. A reduce task prefers the
// nodes holding at least a fifth of its input bytes and waits up to
// LocalityWait for a slot there. Every task attempt of a partition has a
// new attempt number, never reused across stage attempts and jobs (a map
// output's files are named by it). What is redone after each failure
// (docs/DESIGN.md §6, in failure.go and stagerun.go):
//
//   - A task fails: it is retried on another worker, up to
//     MaxTaskFailures attempts, after which the job fails with the task's
//     error (a user's panic arrives with its stack). A panic raised
//     while a line of a TextFile or CSVFile input was being processed
//     (a parser that refuses a malformed line) names the file and the
//     line: "input graph.txt line 5: ..." (source.go; the line number is
//     counted by reading the file up to the line, on that path only).
//   - A worker is lost (its stream breaks, or the heartbeat timeout): its
//     running tasks end "lost" and are resubmitted; the map outputs it
//     committed stay registered on its node. In local mode a replacement
//     worker is started on the same node (at most 16 per node), unless
//     the context is closing or the node is gone; it joins when it
//     connects (worker_added). With the external shuffle service off, the
//     map outputs the worker served itself are forgotten with it. Between
//     jobs the same happens at once: the loop handles the endpoint's
//     events whether a job runs or not.
//   - A worker hears nothing from the driver for HeartbeatTimeout (a
//     black-holed route, a hung driver): it cancels its tasks and exits,
//     as the driver declares it lost after the same timeout.
//   - A fetch fails: the stage attempt stops starting tasks and gathers
//     the fetch failures its other tasks report for 200 ms (or until none
//     runs), then ends, killing what still runs. The driver then asks
//     each failing node for its status. A node that does not answer
//     (Unavailable, or no answer within 2 s) is lost: every map output
//     registered on it, in every shuffle, is forgotten (node_lost), and
//     no task is placed on its workers while it is lost (see below for
//     its return). A node that answers (a corrupt or missing file) loses
//     only the outputs named. Either way a forgotten output's epoch is
//     raised, so its recomputation replaces what the node may still
//     hold. The job's plan is then run again, which recomputes only the
//     missing map partitions, and the stage is resubmitted for the
//     partitions it has not finished.
//   - All workers of a node are lost and it does not answer: the node is
//     lost as above, before any fetch has to fail.
//   - A task fails for the infrastructure (not its own code; say its
//     commit could not reach its node): the node its outputs go to is
//     probed, and if it does not answer it is lost as above and the
//     failure is not counted against the partition, which is retried
//     elsewhere: a node cut off must not fail the job through its tasks.
//     A commit, a block put or get, or a broadcast's fetch to a node
//     that stops answering without closing its connections (a
//     black-holed route) fails too instead of waiting: node links are
//     kept alive and calls to a node are bounded (a commit by 30 s; see
//     shuffleservice's doc, "Network faults"): such a node is lost some
//     32 s after a task began its commit to it (the commit's 30 s, then
//     the 2 s probe).
//   - A stage has tasks to run and no usable worker (every worker gone,
//     or on a lost node): every 500 ms it probes the lost nodes whose
//     workers are still connected (cut off, not dead: a dead machine
//     takes its workers with it) and takes back those that answer
//     (node_added, with a reason); what they held stays forgotten, its
//     recomputation fenced by a higher epoch. After HeartbeatTimeout with
//     no usable worker the job fails, naming the lost nodes. A job's
//     start probes them too (at most every 10 s), so a node back from a
//     partition serves the next job again with its workers.
//   - A stage whose attempts end on fetch failures MaxStageAttempts
//     times in a row fails the job with the last cause (node, shuffle,
//     map, reason).
//
// Nodes are known by their address. A node is not restarted by the
// driver; Context.RestartNode (local mode) restarts a killed one on its
// directory and a new port, and the scheduler takes it as a new node:
// what it still holds from before is not used.
//
// With Options.Speculation, once 75% of a stage attempt's tasks have
// finished, a task running longer than 1.5 times their median duration
// (and at least 100 ms) gets one backup copy on another worker. The first
// copy to succeed wins: its output is registered and its result kept; the
// other is killed and reported killed, and whatever it still reports is
// ignored. An accumulator's updates from a partition are applied once,
// from its first successful attempt, however many copies or attempts ran.
//
// # The shuffle service off
//
// Options.NoShuffleService (`shoal run --shuffle-service off`) turns the
// external shuffle service off, as Spark runs without its own: each worker
// serves the map outputs it writes from a shuffle server embedded in its
// process (compute.WorkerOptions.ServeShuffle), so they die with it. The
// Runner reports an output's location with it (TaskUpdate.map_output_node,
// from TaskEnv.ShuffleAddr: the worker's server, or its node service when
// the service is on), and the scheduler registers the output there; a
// reduce task reads the blocks of its own worker from disk and fetches
// every other one from the worker that wrote it. Losing a worker then
// forces the recomputation of the map outputs it had finished (the event
// log shows the map stage resubmitted for them, and a fetch_failed naming
// the worker's address if a read got there first); with the service on it
// forces none (the map stage is skipped). The node services still run and
// the workers still register with them, but they hold no shuffle files.
//
// # Records
//
// Keys and values are encoded with internal/codec: strings, byte slices,
// integers and floats allocate nothing per record and keep their order in
// the encoded bytes, so range partitioning (SortByKey) and the sort-based
// shuffle order keys by their bytes. KV and Pair records are encoded as
// their two parts, each with its own codec (codecOf, codec.Tuple2). A type
// may bring its own codec (AppendRecord, DecodeRecord); anything else
// falls back to gob.
//
// # Memory
//
// Map tasks write through the node service's sort writer, bounded by its
// memory limit. Map-side combining holds at most 65,536 distinct keys and
// gives up hashing when keys rarely repeat (the writer's sort merges equal
// keys anyway). The reduce side of ReduceByKey, GroupByKey, Cogroup and
// SortByKey holds its partition's distinct keys (or, for SortByKey, its
// records) in memory: choose enough partitions.
//
// A persisted partition (cache op) or a checkpointed one (write op) is
// encoded whole in the task's memory before it is stored or written: a
// partition is bounded by what a worker can hold. A block is bounded by
// the node's default --max-block-bytes (512 MiB): a larger partition is
// not cached. MemoryDeser blocks are bounded per worker by
// Options.HeapCacheBytes.
//
// Broadcast values are stored once per node service as blocks (DiskOnly);
// only their ID travels with tasks, and each worker fetches and decodes a
// broadcast once and keeps it for its life (its runner's).
//
// # Cached partitions (docs/DESIGN.md §4)
//
// Persist(level) puts a cache op after the RDD in every plan that
// computes it (persist.go): on a miss it passes the parent's records on
// and stores the block once the partition is complete; on a hit it reads
// the block (local node first) and never calls its parent. Tasks report
// hits, stores, evictions and blocks they were told of but could not find
// (the task's report, below); the driver keeps where each block is (blocks.go),
// logs block_stored, block_hit and block_evicted, prefers the node (or,
// for MemoryDeser, the worker) that holds a task's input, and forgets the
// blocks of a lost node or worker. An RDD whose every partition is held
// by a node service is planned as a source: no lineage below it, no
// shuffle it depends on is needed (Spark's getMissingParentStages does
// the same). If such a block is then missing, the task fails with a
// MISSING report, the stage attempt ends as on a fetch failure (the node
// is probed), and the next plan has the lineage for what is missing.
//
// # Checkpoints (docs/DESIGN.md §5)
//
// Checkpoint puts a write op after the RDD (after its cache op, if
// persisted) in the plans that compute it (checkpoint.go): it passes the
// records on and writes the partition to the store once complete, and the
// task reports the partition (the task's report, checkpoint_written).
// After each job, the driver completes the checkpoints of RDDs that job
// planned: it runs a job over the partitions not written in full (an
// action such as Take stops reading early; such a partition is computed
// again, in full: the one exception to "never computed twice"), writes the
// manifest, prunes (Options.CheckpointKeep), and truncates the lineage:
// the node's operator becomes a read of the store and its dependencies
// are dropped, so a later plan, or the recomputation of something lost
// downstream, starts there. ReadCheckpoint makes such a source from a
// checkpoint written by another run (PageRank's --resume). LocalCheckpoint
// is Persist(DiskOnly) and the same truncation once every block is held;
// its operator then only fails, saying the partition is gone with its
// node.
//
// # The worker's runner
//
// A worker process runs one runner (runner.go; RunWorker makes it, Init
// calls RunWorker): it executes the tasks' plans and owns what the
// worker keeps between tasks, shared by them: its MemoryDeser blocks
// (persist.go's heapCache), the checkpoint stores it opened
// (checkpoint.go's storeCache), its S3 clients (s3.go's s3Clients) and
// the broadcasts it fetched
// (broadcast.go's broadcastCache). Nothing of it is package state. When
// the worker stops, RunWorker closes the runner, which drops those
// blocks and broadcasts and closes the stores (an S3 store's
// connections); a task that starts after that fails.
//
// # Task reports (report.go)
//
// compute carries two things for this package without reading them
// (compute/doc.go). A task's report (TaskUpdate.report) holds what the
// task did besides its result and map output: its block reports (HIT,
// STORED, EVICTED, MISSING), the checkpoint partitions it WROTE or READ
// (with the PartInfo that goes into the manifest), and its accumulator
// updates. It is a clientpb.Report, protobuf with a version number (1),
// encoded by the runner after the task (encodeReport: nothing at all for
// a task with nothing to report, so small tasks pay nothing) and decoded
// by the driver in one place (decodeReport) when the task's update
// arrives. A report that does not decode, or is of another version,
// fails that task (an infrastructure failure, retried like any other,
// counted against MaxTaskFailures) with an error naming the task; the
// scheduler never panics on it. In the other direction, Unpersist of a
// MemoryDeser RDD sends each worker a clientpb.Message (Endpoint.Message,
// a ClientMessage) asking its runner to drop the RDD's blocks; a message
// the runner cannot read is logged by the worker and ignored.
// downstream, starts there. LocalCheckpoint is Persist(DiskOnly) and the
// same truncation once every block is held; its operator then only
// fails, saying the partition is gone with its node.
//
// A Context is one run of its application in the store
// (checkpoint.RunID, ckptrun.go): Options.App and a run ID made on first
// use (Context.CheckpointRun). Its checkpoints are written under APP/RUN/
// (checkpoint.RunStore; the write and read ops carry the run), so two
// runs sharing a store, one after the other or at once, never see each
// other's checkpoints, and CheckpointKeep prunes only this run's. The
// driver writes the run's marker before its first manifest, and Close
// writes its end marker: from then on `shoal checkpoints prune` may
// delete the run's checkpoints. ListCheckpoints lists every run's
// complete checkpoints, with their application, run, job and input;
// ReadCheckpoint makes a source from one (APP/RUN/NAME: PageRank's
// --resume), first recording in this run's part of the store that it
// reads it, so that pruning keeps it until this run ends. A driver killed
// with SIGKILL writes no end marker; its run is pruned only with
// --abandoned-after.
package client
