package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
)

// event is one line of a driver's event log (docs/DESIGN.md §8), with the
// fields the fault experiments read.
type event struct {
	TS           int64  `json:"ts"`
	Event        string `json:"event"`
	Job          int    `json:"job"`
	Stage        int    `json:"stage"`
	StageAttempt int    `json:"stage_attempt"`
	Kind         string `json:"kind"`
	Name         string `json:"name"`
	Tasks        int    `json:"tasks"`
	Partition    int    `json:"partition"`
	Attempt      int    `json:"attempt"`
	Task         uint64 `json:"task"`
	Worker       string `json:"worker"`
	Node         string `json:"node"`
	Pid          int    `json:"pid"`
	Status       string `json:"status"`
	Reason       string `json:"reason"`
	DurationMs   int64  `json:"duration_ms"`
	RDD          int    `json:"rdd"` // block events
}

// eventTail reads an event log as the driver appends to it: each poll
// parses the complete lines written since the last one.
type eventTail struct {
	path    string
	off     int64
	partial []byte // a line whose "\n" is not written yet
	events  []event
}

// poll reads what was appended since the last poll. A log that does not
// exist yet is empty.
func (t *eventTail) poll() error {
	f, err := os.Open(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(t.off, io.SeekStart); err != nil {
		return err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	t.off += int64(len(b))
	b = append(t.partial, b...)
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		var ev event
		if err := json.Unmarshal(b[:i], &ev); err != nil {
			return fmt.Errorf("bench: event log %s: line %q: %w", t.path, b[:i], err)
		}
		t.events = append(t.events, ev)
		b = b[i+1:]
	}
	t.partial = slices.Clone(b)
	return nil
}

// readEvents reads a whole event log.
func readEvents(path string) ([]event, error) {
	t := eventTail{path: path}
	err := t.poll()
	return t.events, err
}

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
func analyzeRecovery(events []event) recovery {
	var rec recovery
	started := map[stageKey]bool{}
	committed := map[stageKey]bool{}
	rerunTasks := map[uint64]bool{}
	byStage := map[int]*StageReruns{}
	stored := map[stageKey]bool{} // (rdd, partition) of cached blocks stored
	for _, ev := range events {
		switch ev.Event {
		case "block_stored":
			k := stageKey{ev.RDD, ev.Partition}
			if stored[k] {
				rec.cachedRecomputed++
			}
			stored[k] = true
		case "stage_submitted":
			if byStage[ev.Stage] == nil {
				byStage[ev.Stage] = &StageReruns{Stage: ev.Stage, Kind: ev.Kind, Name: ev.Name}
			}
		case "task_start":
			k := stageKey{ev.Stage, ev.Partition}
			if started[k] {
				rerunTasks[ev.Task] = true
				if s := byStage[ev.Stage]; s != nil {
					s.Tasks++
				}
				if ev.Kind == "map" && committed[k] {
					rec.recomputed++
				}
			}
			started[k] = true
		case "task_end":
			k := stageKey{ev.Stage, ev.Partition}
			if ev.Status == "succeeded" && ev.Kind == "map" {
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
