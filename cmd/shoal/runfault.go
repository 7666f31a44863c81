package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"shoal/client"
	"shoal/client/eventlog"
)

// killWorkerAfter waits d, then SIGKILLs a worker that is running a task
// (the first found in the event log without its end), or any live worker.
// It reports what it killed on w. It is the demo's fault, not a test: the
// moment is a wall-clock delay.
func killWorkerAfter(ctx context.Context, sc *client.Context, eventLog string, d time.Duration, w io.Writer) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return
	}
	busy := runningWorkers(eventLog)
	if sc.Local() == nil { // cluster mode: the worker's node kills it
		for id := range busy {
			if err := sc.Remote().KillWorker(id); err == nil {
				fmt.Fprintf(w, "had worker %s killed by its node after %v\n", id, d)
			}
			return
		}
		return
	}
	for _, lw := range sc.Local().Workers() {
		if lw.Exited || (len(busy) > 0 && !busy[lw.ID]) {
			continue
		}
		if err := sc.Local().KillWorker(lw.ID); err == nil {
			fmt.Fprintf(w, "killed worker %s (pid %d) with SIGKILL after %v\n", lw.ID, lw.Pid, d)
		}
		return
	}
}

// runningWorkers returns the workers with a task started and not ended.
func runningWorkers(eventLog string) map[string]bool {
	running := map[uint64]string{}
	evs, _ := eventlog.ReadFile(eventLog) // what could be read
	for _, ev := range evs {
		switch ev := ev.(type) {
		case *eventlog.TaskStart:
			running[ev.Task] = ev.Worker
		case *eventlog.TaskEnd:
			delete(running, ev.Task)
		}
	}
	out := map[string]bool{}
	for _, w := range running {
		out[w] = true
	}
	return out
}

// printRecovery summarizes from the event log what losing workers and
// nodes cost: tasks lost, tasks run again, and map outputs recomputed
// (map tasks of partitions whose output had been committed).
func printRecovery(eventLog string, w io.Writer) {
	type key struct{ stage, part int }
	var lostWorkers, lostNodes, lostTasks, failedTasks, reruns, recomputed int
	started := map[key]bool{}
	committed := map[key]bool{}
	evs, err := eventlog.ReadFile(eventLog)
	if err != nil {
		fmt.Fprintf(w, "recovery: %v\n", err)
		return
	}
	for _, ev := range evs {
		switch ev := ev.(type) {
		case *eventlog.WorkerLost:
			lostWorkers++
		case *eventlog.NodeLost:
			lostNodes++
		case *eventlog.TaskStart:
			k := key{ev.Stage, ev.Partition}
			if started[k] {
				reruns++
				if ev.Kind == eventlog.KindMap && committed[k] {
					recomputed++
				}
			}
			started[k] = true
		case *eventlog.TaskEnd:
			switch ev.Status {
			case eventlog.StatusLost:
				lostTasks++
			case eventlog.StatusFailed:
				failedTasks++
			case eventlog.StatusSucceeded:
				committed[key{ev.Stage, ev.Partition}] = true
			}
		}
	}
	fmt.Fprintf(w, "recovery: %d worker(s) and %d node(s) lost; %d task(s) lost with them, %d failed; %d task(s) run again; %d committed map output(s) recomputed\n",
		lostWorkers, lostNodes, lostTasks, failedTasks, reruns, recomputed)
}
