// Package eventlog is the driver's event log (docs/DESIGN.md §8): one Go
// type per event of the contract (events.go), the names of the task
// metrics that are part of it (metrics.go), the Writer the driver appends
// them with, and the readers that tools use (ReadFile, Tail).
//
// The Writer also hands every event, in the log's order, to listeners
// (AddListener): the live UI (package client/ui) follows the driver that
// way, through a queue it never waits on. NewWriter(nil) writes no file,
// for a UI with no event log.
//
// The log is JSON Lines, one object per event, each with "ts" (Unix
// milliseconds) and "event" (its name) besides the fields of its type.
// Every field without omitempty is in every event of its kind. Fields and
// events may be added; none is renamed. A reader built against an older
// version skips events it does not know and ignores fields it does not
// know.
//
// Writing and reading use the same types, so a field misspelt on either
// side does not compile:
//
//	w, _ := eventlog.Create("events.jsonl")
//	w.Write(&eventlog.JobStart{Job: 0, Action: "count"})
//	evs, _ := eventlog.ReadFile("events.jsonl")
//	for _, ev := range evs {
//		if end, ok := ev.(*eventlog.TaskEnd); ok && end.Status == eventlog.StatusLost { ... }
//	}
package eventlog
