package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"shoal/compute"
)

// The scheduler's loop (package doc, "The driver"). One goroutine,
// scheduler.loop, owns every piece of scheduling state: stages, tasks,
// the map-output and block trackers, worker and node membership. Whatever
// else wants something of it (a job, Close, Unpersist, a broadcast,
// RestartNode) sends a request and waits for its reply, as raft's futures
// do. Work that waits on the network (probes, result fetches, manifest
// writes, block removals) runs in goroutines started by async and comes
// back to the loop as a continuation on doneq, as bigslice's evaluator
// gets its tasks' results; the loop never blocks on it.

// errClosed is the error of a request to a closed context.
var errClosed = errors.New("client: context is closed")

// request is a call into the loop: run executes on the loop goroutine and
// calls reply exactly once, then or later (from a goroutine it started).
type request struct {
	run   func(s *scheduler, reply func(error))
	close bool       // Close's request: the loop ends after it
	errc  chan error // capacity 1: the reply
}

// call runs fn on the loop and returns its error.
func (c *Context) call(ctx context.Context, fn func(s *scheduler) error) error {
	return c.callAsync(ctx, func(s *scheduler, reply func(error)) { reply(fn(s)) })
}

// callAsync sends run to the loop and waits for its reply. Once the loop
// has taken the request the reply always comes: the loop answers the
// requests it still holds with errClosed when it ends.
func (c *Context) callAsync(ctx context.Context, run func(s *scheduler, reply func(error))) error {
	req := &request{run: run, errc: make(chan error, 1)}
	select {
	case c.reqs <- req:
	case <-c.loopDone:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-req.errc
}

// serve runs a request on the loop.
func (s *scheduler) serve(req *request) {
	if req.close {
		s.closing = true
		req.errc <- nil
		return
	}
	req.run(s, func(err error) { req.errc <- err })
}

// loop is the scheduler's goroutine, from NewContext until Close.
func (s *scheduler) loop() {
	defer close(s.c.loopDone)
	defer s.stop()
	for !s.closing {
		if len(s.deferred) > 0 {
			req := s.deferred[0]
			s.deferred = s.deferred[1:]
			s.serve(req)
			continue
		}
		select {
		case req := <-s.c.reqs:
			s.serve(req)
		case ev, ok := <-s.ep.Events():
			if !ok {
				return
			}
			s.handleIdle(ev)
		case f := <-s.doneq:
			f()
		}
	}
}

// stop ends what the loop started: goroutines of async see their context
// end and are waited for; requests still held are answered errClosed.
func (s *scheduler) stop() {
	s.endLife()
	s.inflight.Wait()
	for _, req := range s.deferred {
		req.errc <- errClosed
	}
	s.deferred = nil
}

// interrupt handles a request that arrives while a job runs: Close ends
// the job with an error naming it; anything else waits for the job's end.
func (s *scheduler) interrupt(req *request) error {
	if !req.close {
		s.deferred = append(s.deferred, req)
		return nil
	}
	s.serve(req)
	return s.closedErr()
}

// closedErr is the error of a job the closing context ends.
func (s *scheduler) closedErr() error {
	if s.running >= 0 {
		return fmt.Errorf("client: job %d: the context was closed while it ran", s.running)
	}
	return errClosed
}

// handleIdle handles an event outside a stage attempt's loop: between
// jobs, or while a job waits on the network between its stages. The
// tasks it ends belong to no running attempt; their reports still count.
func (s *scheduler) handleIdle(ev compute.Event) {
	ended, lost := s.handle(ev)
	if !lost {
		for range ended {
			s.applyReports(ev.Update)
		}
	}
}

// async runs fn in a goroutine with a context that ends after timeout,
// when ctx ends, or when the loop ends, and then runs then(fn's result)
// on the loop, unless the loop has ended first.
func async[T any](s *scheduler, ctx context.Context, timeout time.Duration, fn func(ctx context.Context) T, then func(T)) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	stopAfter := context.AfterFunc(s.life, cancel)
	s.inflight.Add(1)
	go func() {
		defer s.inflight.Done()
		defer cancel()
		defer stopAfter()
		v := fn(ctx)
		select {
		case s.doneq <- func() { then(v) }:
		case <-s.life.Done():
		}
	}()
}

// await runs fn as async does and waits for its result while the loop
// goes on: worker events, other continuations and requests are served
// (Close ends the wait with the closing error). It is for waits outside a
// stage attempt's loop, which has its own select.
func await[T any](s *scheduler, ctx context.Context, timeout time.Duration, fn func(ctx context.Context) T) (T, error) {
	var res T
	if s.closing {
		return res, s.closedErr()
	}
	got := false
	async(s, ctx, timeout, fn, func(v T) { res, got = v, true })
	for !got {
		select {
		case f := <-s.doneq:
			f()
		case ev, ok := <-s.ep.Events():
			if !ok {
				return res, errClosed
			}
			s.handleIdle(ev)
		case req := <-s.c.reqs:
			if err := s.interrupt(req); err != nil {
				return res, err
			}
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	return res, nil
}

// drain handles the worker events and continuations that are ready,
// without waiting: a job does so before it plans, so that it plans with
// what is known.
func (s *scheduler) drain() {
	for {
		select {
		case ev, ok := <-s.ep.Events():
			if !ok {
				return
			}
			s.handleIdle(ev)
		case f := <-s.doneq:
			f()
		default:
			return
		}
	}
}
