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
// Reduce, Take, Foreach, CountByKey, SaveAsTextFile, SaveAsRawFile) runs a
// job. Jobs run one at a time per Context.
//
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
// # Functions and operators by reference (DESIGN.md §7)
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
// extension of DESIGN.md §7, which speaks only of user functions.
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
// planStages decides what a job runs: a map stage whose outputs are all
// registered is skipped (stage_skipped) without looking at its parents,
// since nothing of them is needed; otherwise its parents come first, then
// its missing partitions. Each stage is visited once per attempt.
//
// # Scheduling and failures
//
// Tasks go to free worker slots. A reduce task prefers the nodes holding
// at least a fifth of its input bytes and waits up to LocalityWait for a
// slot there. A failed task is retried on another worker, up to
// MaxTaskFailures attempts, after which the job fails with the task's
// error (a user's panic arrives with its stack). A worker lost with its
// stream (or after the heartbeat timeout) costs only its running tasks,
// which are resubmitted; map outputs it committed stay registered on its
// node. A fetch failure forgets the map output it names, ends the stage
// attempt and reruns the job's plan, which recomputes only what is
// missing; a recomputed output is committed with a higher epoch so the
// node replaces what it held. After MaxStageAttempts the job fails. An
// accumulator's updates from a partition are applied once, from its first
// successful attempt. (The fault-tolerance experiments and node loss come
// with their own issue.)
//
// # Records
//
// Keys and values are encoded with internal/codec: strings, byte slices,
// integers and floats allocate nothing per record and keep their order in
// the encoded bytes, so range partitioning (SortByKey) and the sort-based
// shuffle order keys by their bytes. A type may bring its own codec
// (AppendRecord, DecodeRecord); anything else falls back to gob.
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
// Broadcast values travel with each task that uses them and are decoded
// once per task; DESIGN.md §4 has them stored once per node as blocks,
// which comes with the block store.
package client
