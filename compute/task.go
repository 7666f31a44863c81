package compute

import (
	"context"
	"errors"
	"runtime/debug"
	"sync/atomic"
	"time"

	"shoal/compute/computepb"
	"shoal/shuffleservice/shuffle"
)

// task is one task attempt on a worker, from RunTask to its final update.
type task struct {
	rt     *computepb.RunTask
	ctx    context.Context
	cancel context.CancelFunc
	killed atomic.Bool // KillTask arrived
}

// start queues a task and runs it in its own goroutine once a slot is
// free. Queued tasks start in arrival order (the driver should not send
// more than the worker's slots; if it does, they wait here).
func (w *worker) start(parent context.Context, rt *computepb.RunTask) {
	id := rt.GetTaskId()
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.tasks[id]; dup {
		w.log.Warn("ignored a second RunTask for a task that is still running", "task", id)
		return
	}
	ctx, cancel := context.WithCancel(parent)
	t := &task{rt: rt, ctx: ctx, cancel: cancel}
	w.tasks[id] = t
	w.pending = append(w.pending, t)
	w.dispatchLocked()
}

// dispatchLocked starts queued tasks while slots are free. w.mu is held.
func (w *worker) dispatchLocked() {
	for w.running < w.opts.Slots && len(w.pending) > 0 {
		t := w.pending[0]
		w.pending = w.pending[1:]
		w.running++
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			u := w.run(t)
			t.cancel()
			// Forget the task before sending its update, so that the
			// driver may reuse its ID as soon as it has the update.
			w.mu.Lock()
			delete(w.tasks, t.rt.GetTaskId())
			w.running--
			w.dispatchLocked()
			w.mu.Unlock()
			w.postUpdate(u)
		}()
	}
}

// kill cancels a task; a running task reports KILLED unless it finished
// first, a queued one is dropped and reported KILLED at once.
func (w *worker) kill(id uint64) {
	w.mu.Lock()
	t := w.tasks[id]
	if t == nil {
		w.mu.Unlock()
		return // finished already, or never here
	}
	t.killed.Store(true)
	t.cancel()
	queued := false
	for i, p := range w.pending {
		if p == t {
			w.pending = append(w.pending[:i], w.pending[i+1:]...)
			delete(w.tasks, id)
			queued = true
			break
		}
	}
	w.mu.Unlock()
	if queued {
		w.postUpdate(w.outcome(t, nil, t.ctx.Err(), 0))
	}
}

// run runs a task that has a slot and returns its final update.
func (w *worker) run(t *task) *computepb.TaskUpdate {
	if err := t.ctx.Err(); err != nil { // killed, or the worker stopping
		return w.outcome(t, nil, err, 0)
	}
	w.postUpdate(&computepb.TaskUpdate{TaskId: t.rt.GetTaskId(), State: computepb.TaskState_TASK_STATE_RUNNING})
	start := time.Now()
	u, err := w.call(t)
	return w.outcome(t, u, err, time.Since(start))
}

// call runs the Runner, turning a panic into a *panicError with its stack.
func (w *worker) call(t *task) (u *computepb.TaskUpdate, err error) {
	defer func() {
		if r := recover(); r != nil {
			u, err = nil, &panicError{value: r, stack: debug.Stack()}
		}
	}()
	return w.runner.Run(t.ctx, w.env, t.rt)
}

// outcome completes the Runner's update: ID, duration, state and error.
func (w *worker) outcome(t *task, u *computepb.TaskUpdate, err error, d time.Duration) *computepb.TaskUpdate {
	if u == nil {
		u = &computepb.TaskUpdate{}
	}
	u.TaskId = t.rt.GetTaskId()
	u.DurationMs = d.Milliseconds()
	var pe *panicError
	switch {
	case err == nil:
		if u.State == computepb.TaskState_TASK_STATE_UNSPECIFIED || u.State == computepb.TaskState_TASK_STATE_RUNNING {
			u.State = computepb.TaskState_TASK_STATE_SUCCEEDED
		}
	case t.killed.Load() && !errors.As(err, &pe):
		u.State, u.Error, u.UserError = computepb.TaskState_TASK_STATE_KILLED, "killed by the driver", false
	case t.ctx.Err() != nil && !errors.As(err, &pe):
		u.State, u.Error, u.UserError = computepb.TaskState_TASK_STATE_KILLED, "the worker is stopping", false
	default:
		u.State, u.Error, u.UserError = computepb.TaskState_TASK_STATE_FAILED, err.Error(), isUserError(err)
		var ff *shuffle.FetchFailedError
		if u.FetchFailure == nil && errors.As(err, &ff) {
			reason := "unknown"
			if ff.Err != nil {
				reason = ff.Err.Error()
			}
			u.FetchFailure = &computepb.FetchFailure{Shuffle: ff.Shuffle, Map: ff.Map, Node: ff.Node, Reason: reason}
		}
	}
	if u.State == computepb.TaskState_TASK_STATE_FAILED {
		w.log.Warn("task failed", "task", u.TaskId, "stage", t.rt.GetStage(), "partition", t.rt.GetPartition(),
			"attempt", t.rt.GetAttempt(), "user_error", u.UserError, "err", firstLine(u.Error))
	}
	return u
}

// firstLine is s up to its first newline (a panic's message without its
// stack, for the log).
func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
