package ui

import (
	"context"
	"errors"

	"shoal/client/eventlog"
)

// Live is the UI of the running driver: it follows the driver's events
// through the event log writer's listener and serves them while the
// application runs (client.Options.UIAddr starts one).
type Live struct {
	*Server
	e       *entry
	metrics *driverMetrics
}

// NewLive makes the UI of application app. Give Listener to the
// driver's eventlog.Writer (AddListener), then Listen.
func NewLive(app string, opts Options) (*Live, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	l := &Live{}
	var observe func(eventlog.Event)
	if opts.Registry != nil {
		var err error
		if l.metrics, err = newDriverMetrics(opts.Registry); err != nil {
			return nil, err
		}
		observe = l.metrics.observe
	}
	l.e = &entry{id: app, t: newTracker(opts, true, observe)}
	srv, err := newServer(opts, liveSource{l.e}, true)
	if err != nil {
		l.e.t.close()
		return nil, err
	}
	l.Server = srv
	return l, nil
}

// Listener is the function to hand to eventlog.Writer.AddListener: it
// queues the event for the UI and returns at once, dropping the event
// (and counting it) if the queue is full.
func (l *Live) Listener() func(eventlog.Event) { return l.e.t.listen }

// Close stops serving, within ctx, and stops the model's goroutine.
// Idempotent.
func (l *Live) Close(ctx context.Context) error {
	err := l.Shutdown(ctx)
	l.e.t.close()
	if errors.Is(err, context.DeadlineExceeded) {
		return nil // the requests in flight were cut; nothing to report
	}
	return err
}

type liveSource struct{ e *entry }

func (s liveSource) list() []*entry { return []*entry{s.e} }

func (s liveSource) get(id string) *entry {
	if id == s.e.id {
		return s.e
	}
	return nil
}
