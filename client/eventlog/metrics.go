package eventlog

// Names of TaskEnd.Metrics that are part of the contract: a task reports
// those that apply to it (a map task no result records, a task that read
// no shuffle no shuffle read), so an absent name means zero. Workers may
// report more names; readers ignore those they do not know.
const (
	// MetricRecordsIn is the records the task's pipeline read from its
	// inputs: a source (lines, generated records, a slice's elements), a
	// shuffle, a cached block or a checkpoint.
	MetricRecordsIn = "records_in"
	// MetricRecordsOut is the records its sink consumed: written to the
	// shuffle, counted, collected, saved.
	MetricRecordsOut = "records_out"
	// MetricInputBytes is the bytes a source read from its files.
	MetricInputBytes = "input_bytes"

	// MetricShuffleRecordsRead is the records read from shuffles.
	MetricShuffleRecordsRead = "shuffle_records_read"
	// MetricShuffleLocalBytes is the shuffle bytes (compressed frames)
	// read straight from the files of the task's own node.
	MetricShuffleLocalBytes = "shuffle_read_local_bytes"
	// MetricShuffleRemoteBytes is the shuffle bytes fetched from node
	// services over the network: what the nodes' fetch byte counters
	// (shoal_node_fetch_bytes_total) count for this task.
	MetricShuffleRemoteBytes = "shuffle_read_remote_bytes"
	// MetricShuffleFetchWaitUs is the time the task waited for shuffle
	// blocks to arrive, in microseconds.
	MetricShuffleFetchWaitUs = "shuffle_fetch_wait_us"

	// MetricShuffleRecordsWritten is the records a map task handed to its
	// shuffle writer (before map-side combining in the writer).
	MetricShuffleRecordsWritten = "shuffle_records_written"
	// MetricShuffleBytesWritten is the bytes of the map output's final
	// files.
	MetricShuffleBytesWritten = "shuffle_bytes_written"
	// MetricShuffleWriteTimeUs is the time spent in the shuffle writer's
	// commit (sorting, merging spills, writing and syncing the files, the
	// commit call) plus the time its spills took, in microseconds.
	MetricShuffleWriteTimeUs = "shuffle_write_time_us"
	// MetricShuffleSpills and MetricSpillBytes are the sorted runs the
	// writer spilled to disk and their bytes.
	MetricShuffleSpills = "shuffle_spills"
	MetricSpillBytes    = "spill_bytes"
)

// ContractMetrics lists the metric names above.
func ContractMetrics() []string {
	return []string{
		MetricRecordsIn, MetricRecordsOut, MetricInputBytes,
		MetricShuffleRecordsRead, MetricShuffleLocalBytes, MetricShuffleRemoteBytes, MetricShuffleFetchWaitUs,
		MetricShuffleRecordsWritten, MetricShuffleBytesWritten, MetricShuffleWriteTimeUs, MetricShuffleSpills, MetricSpillBytes,
	}
}
