package client

import (
	"iter"
	"time"

	"shoal/client/eventlog"
	"shoal/shuffleservice/shuffle"
)

// Task metrics of the event-log contract (eventlog/metrics.go) that more
// than one op reports.

// countedIn yields seq's records and adds their number to the task's
// records_in when it stops: the wrapper of every op that reads records
// from outside the task (a source, a cached block, a checkpoint).
func countedIn[T any](tc *taskContext, seq iter.Seq[T]) iter.Seq[T] {
	return func(yield func(T) bool) {
		var n int64
		defer func() { tc.addMetric(eventlog.MetricRecordsIn, n) }()
		for v := range seq {
			n++
			if !yield(v) {
				return
			}
		}
	}
}

// countedOut yields seq's records and adds their number to the task's
// records_out when it stops: the wrapper of a sink's input.
func countedOut[T any](tc *taskContext, seq iter.Seq[T]) iter.Seq[T] {
	return func(yield func(T) bool) {
		var n int64
		defer func() { tc.addMetric(eventlog.MetricRecordsOut, n) }()
		for v := range seq {
			n++
			if !yield(v) {
				return
			}
		}
	}
}

// shuffleReadMetrics adds what a shuffle reader read, and how long the
// task waited for its blocks, to the task's metrics.
func (tc *taskContext) shuffleReadMetrics(rd *shuffle.Reader) {
	st := rd.Stats()
	tc.addMetric(eventlog.MetricShuffleLocalBytes, st.LocalBytes)
	tc.addMetric(eventlog.MetricShuffleRemoteBytes, st.RemoteBytes)
	tc.addMetric(eventlog.MetricShuffleFetchWaitUs, st.FetchWait.Microseconds())
}

// shuffleWriteMetrics adds a committed writer's figures; commit is how
// long its Commit took.
func (tc *taskContext) shuffleWriteMetrics(st shuffle.WriterStats, commit time.Duration) {
	tc.addMetric(eventlog.MetricShuffleBytesWritten, st.BytesWritten)
	tc.addMetric(eventlog.MetricShuffleSpills, int64(st.Spills))
	tc.addMetric(eventlog.MetricSpillBytes, st.SpillBytes)
	tc.addMetric(eventlog.MetricShuffleWriteTimeUs, (commit + st.SpillTime).Microseconds())
}
