package bench

import (
	"maps"
	"slices"

	"shoal/client/eventlog"
)

// stageKey names one partition of one stage.
type stageKey struct{ stage, part int }

// StageReruns is how many task attempts of one stage ran beyond the
// first attempt of each of its partitions.
type StageReruns struct {
	Stage int    `json:"stage"`
	Kind  string `json:"kind"` // map or result
	Name  string `json:"name"`
	Tasks int    `json:"tasks_rerun"`
}

// recovery is what an event log says about the work redone after faults.
type recovery struct {
	reruns []StageReruns // by stage ID
	// recomputed counts map task attempts started for a partition whose
	// output had already been committed (a task_end succeeded).
	recomputed int
	// rerunMs sums the durations (task_end duration_ms) of the rerun
	// attempts; lastRerunEnd is the ts of the last one to succeed.
	rerunMs      int64
	lastRerunEnd int64
	// cachedRecomputed counts block_stored events of a cached partition
	// stored before (levels with one copy: a _2 level stores each
	// partition twice).
	cachedRecomputed int
}

// analyzeRecovery counts reruns in events: a task_start for a stage's
// partition that had been started before (in any stage attempt) is a
// rerun; for a map stage it is a recomputed output if the partition had
// succeeded before.
func analyzeRecovery(events []eventlog.Event) recovery {
	var rec recovery
	started := map[stageKey]bool{}
	committed := map[stageKey]bool{}
	rerunTasks := map[uint64]bool{}
	byStage := map[int]*StageReruns{}
	stored := map[stageKey]bool{} // (rdd, partition) of cached blocks stored
	for _, ev := range events {
		switch ev := ev.(type) {
		case *eventlog.BlockStored:
			k := stageKey{ev.RDD, ev.Partition}
			if stored[k] {
				rec.cachedRecomputed++
			}
			stored[k] = true
		case *eventlog.StageSubmitted:
			if byStage[ev.Stage] == nil {
				byStage[ev.Stage] = &StageReruns{Stage: ev.Stage, Kind: ev.Kind, Name: ev.Name}
			}
		case *eventlog.TaskStart:
			k := stageKey{ev.Stage, ev.Partition}
			if started[k] {
				rerunTasks[ev.Task] = true
				if s := byStage[ev.Stage]; s != nil {
					s.Tasks++
				}
				if ev.Kind == eventlog.KindMap && committed[k] {
					rec.recomputed++
				}
			}
			started[k] = true
		case *eventlog.TaskEnd:
			k := stageKey{ev.Stage, ev.Partition}
			if ev.Status == eventlog.StatusSucceeded && ev.Kind == eventlog.KindMap {
				committed[k] = true
			}
			if rerunTasks[ev.Task] {
				rec.rerunMs += ev.DurationMs
				if ev.Status == "succeeded" {
					rec.lastRerunEnd = max(rec.lastRerunEnd, ev.TS)
				}
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(byStage)) {
		rec.reruns = append(rec.reruns, *byStage[id])
	}
	return rec
}
