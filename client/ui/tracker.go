package ui

import (
	"sync"
	"sync/atomic"

	"shoal/client/eventlog"
)

// tracker owns one application's model: one goroutine applies events and
// runs queries, so the model needs no lock and the event log's writer
// never waits for a page being rendered (STYLE: one owner of state).
//
// Events arrive on a bounded queue (listen): when it is full the event is
// dropped and counted, never waited for. A query first applies every
// event already queued, so a page reflects at least what was written
// before it was asked for.
type tracker struct {
	events  chan eventlog.Event
	queries chan func(*model)
	stop    chan struct{}
	stopped sync.Once
	done    chan struct{}
	dropped atomic.Int64
	live    bool
	observe func(eventlog.Event) // called on the loop after apply; may be nil
}

func newTracker(opts Options, live bool, observe func(eventlog.Event)) *tracker {
	t := &tracker{
		events: make(chan eventlog.Event, opts.EventBuffer), queries: make(chan func(*model)),
		stop: make(chan struct{}), done: make(chan struct{}), live: live, observe: observe,
	}
	go t.run(newModel(opts))
	return t
}

// listen is the event log's listener (eventlog.Writer.AddListener): it
// never blocks.
func (t *tracker) listen(ev eventlog.Event) {
	select {
	case t.events <- ev:
	default:
		t.dropped.Add(1)
	}
}

func (t *tracker) run(m *model) {
	defer close(t.done)
	apply := func(ev eventlog.Event) {
		m.apply(ev)
		if t.observe != nil {
			t.observe(ev)
		}
	}
	for {
		select {
		case <-t.stop:
			return
		case ev := <-t.events:
			apply(ev)
		case q := <-t.queries:
		drain:
			for {
				select {
				case ev := <-t.events:
					apply(ev)
				default:
					break drain
				}
			}
			q(m)
		}
	}
}

// do runs q on the loop and waits for it; false if the tracker is
// closed.
func (t *tracker) do(q func(*model)) bool {
	done := make(chan struct{})
	select {
	case t.queries <- func(m *model) { q(m); close(done) }:
	case <-t.stop:
		return false
	}
	select {
	case <-done:
		return true
	case <-t.done:
		return false
	}
}

// close stops the loop. Idempotent.
func (t *tracker) close() {
	t.stopped.Do(func() { close(t.stop) })
	<-t.done
}
