package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"shoal/client"
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
	running := map[float64]string{}
	eachEvent(eventLog, func(ev map[string]any) {
		task, _ := ev["task"].(float64)
		switch ev["event"] {
		case "task_start":
			running[task], _ = ev["worker"].(string)
		case "task_end":
			delete(running, task)
		}
	})
	out := map[string]bool{}
	for _, w := range running {
		out[w] = true
	}
	return out
}

func eachEvent(path string, fn func(map[string]any)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var ev map[string]any
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			fn(ev)
		}
	}
}

// printRecovery summarizes from the event log what losing workers and
// nodes cost: tasks lost, tasks run again, and map outputs recomputed
// (map tasks of partitions whose output had been committed).
func printRecovery(eventLog string, w io.Writer) {
	type key struct{ stage, part float64 }
	var lostWorkers, lostNodes, lostTasks, failedTasks, reruns, recomputed int
	started := map[key]bool{}
	committed := map[key]bool{}
	eachEvent(eventLog, func(ev map[string]any) {
		stage, _ := ev["stage"].(float64)
		part, _ := ev["partition"].(float64)
		k := key{stage, part}
		switch ev["event"] {
		case "worker_lost":
			lostWorkers++
		case "node_lost":
			lostNodes++
		case "task_start":
			if started[k] {
				reruns++
				if ev["kind"] == "map" && committed[k] {
					recomputed++
				}
			}
			started[k] = true
		case "task_end":
			switch ev["status"] {
			case "lost":
				lostTasks++
			case "failed":
				failedTasks++
			case "succeeded":
				committed[k] = true
			}
		}
	})
	fmt.Fprintf(w, "recovery: %d worker(s) and %d node(s) lost; %d task(s) lost with them, %d failed; %d task(s) run again; %d committed map output(s) recomputed\n",
		lostWorkers, lostNodes, lostTasks, failedTasks, reruns, recomputed)
}
