package compute

import (
	"sync"

	"shoal/compute/computepb"
)

// EventKind says what an Event reports.
type EventKind int

const (
	// WorkerAdded: a worker connected and said hello. It is the first
	// event of that worker.
	WorkerAdded EventKind = iota + 1
	// WorkerLost: the worker's stream broke, it missed its heartbeats, it
	// exited after Shutdown, or the endpoint closed. It is the last event
	// of that worker; Reason says which.
	WorkerLost
	// TaskUpdate: the worker reported a task's state (Update).
	TaskUpdate
)

func (k EventKind) String() string {
	switch k {
	case WorkerAdded:
		return "worker_added"
	case WorkerLost:
		return "worker_lost"
	case TaskUpdate:
		return "task_update"
	}
	return "unknown"
}

// WorkerInfo describes a connected worker, as it said in its Hello.
type WorkerInfo struct {
	ID   string
	Node string // address of the node service of the worker's machine
	// ShuffleAddr is the shuffle server holding the map outputs the
	// worker writes: Node, or the worker's own server when it serves them
	// itself (WorkerOptions.ServeShuffle).
	ShuffleAddr string
	Pid         int
	Slots       int
}

// Event is something that happened to a worker. For a given worker, events
// arrive in the order they happened: WorkerAdded, then its TaskUpdates,
// then WorkerLost; nothing follows WorkerLost.
type Event struct {
	Kind   EventKind
	Worker WorkerInfo
	Update *computepb.TaskUpdate // TaskUpdate only
	Reason string                // WorkerLost only
}

// eventQueue is an unbounded FIFO of events. Producers (stream handlers)
// never block on it; one goroutine (Endpoint.pump) moves its events to the
// consumer's channel. Events are few (a handful per task), so an unbounded
// queue costs little and spares the handlers from ever waiting on a slow
// scheduler, which would stall heartbeats and look like hung workers.
type eventQueue struct {
	mu    sync.Mutex
	items []Event
	wake  chan struct{} // capacity 1: "items may be non-empty"
}

func newEventQueue() *eventQueue {
	return &eventQueue{wake: make(chan struct{}, 1)}
}

func (q *eventQueue) push(ev Event) {
	q.mu.Lock()
	q.items = append(q.items, ev)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns every queued event and empties the queue.
func (q *eventQueue) take() []Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}
