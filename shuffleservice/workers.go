package shuffleservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/launcher"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// This file puts the node's launcher (package launcher: the binary cache,
// the workers it starts and supervises) on the wire. See doc.go,
// "Workers started by the node".

// PutBinary receives an executable into the node's binary cache.
func (s *Server) PutBinary(stream shufflepb.Shuffle_PutBinaryServer) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nodewire.ToStatus(fmt.Errorf("%w: PutBinary without a header", launcher.ErrInvalidArgument))
	}
	if err != nil {
		return err
	}
	r := &binaryReader{stream: stream, data: first.GetData()}
	if err := s.launch.PutBinary(stream.Context(), first.GetSha256(), first.GetSize(), r); err != nil {
		return nodewire.ToStatus(err)
	}
	return stream.SendAndClose(&shufflepb.PutBinaryResponse{})
}

// binaryReader reads the data of a PutBinary stream's chunks; a chunk
// after the first that carries a header is an error.
type binaryReader struct {
	stream shufflepb.Shuffle_PutBinaryServer
	data   []byte
}

func (r *binaryReader) Read(p []byte) (int, error) {
	for len(r.data) == 0 {
		c, err := r.stream.Recv()
		if err != nil {
			return 0, err // io.EOF: the client sent everything
		}
		if c.GetSha256() != "" || c.GetSize() != 0 {
			return 0, fmt.Errorf("%w: PutBinary: a second header", launcher.ErrInvalidArgument)
		}
		r.data = c.GetData()
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// HasBinary says whether the binary cache holds an executable.
func (s *Server) HasBinary(ctx context.Context, req *shufflepb.HasBinaryRequest) (*shufflepb.HasBinaryResponse, error) {
	ok, err := s.launch.HasBinary(req.GetSha256())
	if err != nil {
		return nil, nodewire.ToStatus(err)
	}
	return &shufflepb.HasBinaryResponse{Present: ok}, nil
}

// StartWorkers starts an application's workers, or returns those that
// run.
func (s *Server) StartWorkers(ctx context.Context, req *shufflepb.StartWorkersRequest) (*shufflepb.StartWorkersResponse, error) {
	ws, err := s.startWorkers(req)
	if err != nil {
		return nil, nodewire.ToStatus(err)
	}
	return &shufflepb.StartWorkersResponse{Workers: workersToPB(ws)}, nil
}

func (s *Server) startWorkers(req *shufflepb.StartWorkersRequest) ([]launcher.Worker, error) {
	app := req.GetApp()
	if err := shuffle.ValidateID("application", app); err != nil {
		return nil, err
	}
	n := int(req.GetWorkers())
	if n == 0 {
		n = s.opts.Workers
	}
	first, err := s.firstWorkerNumber(app)
	if err != nil {
		return nil, err
	}
	ws, err := s.launch.Start(launcher.Spec{
		App: app, Binary: req.GetBinarySha256(), Workers: n,
		Env: req.GetEnv(), Args: req.GetArgs(),
		Node: s.advertised(), FirstK: first,
	})
	if err != nil {
		return nil, err
	}
	// The launcher was not called under catMu (its workers record
	// themselves under it). A removal of the application that ran
	// meanwhile found nothing to stop: stop them here.
	if err := s.lockCatalog(); err != nil {
		s.launch.Detach(app).Wait()
		return nil, err
	}
	_, err = s.app(app)
	if err != nil {
		stopping := s.launch.Detach(app)
		s.catMu.RUnlock()
		stopping.Wait()
		return nil, fmt.Errorf("%w: application %q was removed while its workers started", launcher.ErrAppNotRegistered, app)
	}
	s.catMu.RUnlock()
	return ws, nil
}

// firstWorkerNumber is K of the first worker ID w-NAME-K the launcher
// gives app, if it starts its first workers: past every worker of this
// node the catalogue holds for app, so that a node restarted on its
// directories never reuses an ID. The application must be registered.
func (s *Server) firstWorkerNumber(app string) (int, error) {
	a, err := s.app(app)
	if err != nil {
		return 0, fmt.Errorf("%w: application %q is not registered on this node (RegisterApp first; it may have expired after missing heartbeats for its TTL)", launcher.ErrAppNotRegistered, app)
	}
	prefix := "w-" + s.opts.Name + "-"
	k := 1
	s.mu.RLock()
	defer s.mu.RUnlock()
	for id := range a.workers {
		if n, err := strconv.Atoi(strings.TrimPrefix(id, prefix)); err == nil && strings.HasPrefix(id, prefix) && n >= k {
			k = n + 1
		}
	}
	return k, nil
}

// workerStarted records a worker the launcher started (launcher.Options.
// Started), as RegisterWorker would but without counting it as a sign of
// the application's life (workers restarted forever must not keep an
// application whose driver is gone), and forgets the worker it replaces:
// the catalogue holds one worker per slot, the latest, whose number is
// the highest yet (firstWorkerNumber).
func (s *Server) workerStarted(app, worker string, pid int, replaces string) {
	err := s.recordWorker(app, worker, int64(pid), false)
	if err == nil && replaces != "" {
		err = s.forgetWorker(app, replaces)
	}
	if err != nil && !errors.Is(err, shuffle.ErrClosed) && !errors.Is(err, shuffle.ErrUnknownApp) {
		s.log.Warn("cannot record a worker in the catalogue", "app", app, "worker", worker, "err", err)
	}
}

// forgetWorker deletes a worker's record.
func (s *Server) forgetWorker(app, worker string) error {
	if err := s.lockCatalog(); err != nil {
		return err
	}
	defer s.catMu.RUnlock()
	a, err := s.app(app)
	if err != nil {
		return err
	}
	if err := s.cat.deleteWorker(app, worker); err != nil {
		return err
	}
	s.mu.Lock()
	delete(a.workers, worker)
	s.mu.Unlock()
	return nil
}

// StopWorker kills one of an application's workers; the node starts a
// replacement.
func (s *Server) StopWorker(ctx context.Context, req *shufflepb.StopWorkerRequest) (*shufflepb.StopWorkerResponse, error) {
	if err := s.launch.StopWorker(req.GetApp(), req.GetWorker()); err != nil {
		return nil, nodewire.ToStatus(err)
	}
	return &shufflepb.StopWorkerResponse{}, nil
}

// Workers lists an application's workers on the node.
func (s *Server) Workers(ctx context.Context, req *shufflepb.WorkersRequest) (*shufflepb.WorkersResponse, error) {
	ws, failure := s.launch.Workers(req.GetApp())
	return &shufflepb.WorkersResponse{Workers: workersToPB(ws), Failure: failure}, nil
}

func workersToPB(ws []launcher.Worker) []*shufflepb.WorkerProcess {
	out := make([]*shufflepb.WorkerProcess, len(ws))
	for i, w := range ws {
		out[i] = &shufflepb.WorkerProcess{
			Id: w.ID, Pid: int64(w.Pid), State: stateToPB(w.State),
			Restarts: w.Restarts, LastExit: w.LastExit, StderrTail: w.StderrTail,
		}
	}
	return out
}

func stateToPB(s launcher.State) shufflepb.WorkerState {
	switch s {
	case launcher.Running:
		return shufflepb.WorkerState_WORKER_STATE_RUNNING
	case launcher.Backoff:
		return shufflepb.WorkerState_WORKER_STATE_BACKOFF
	case launcher.Failed:
		return shufflepb.WorkerState_WORKER_STATE_FAILED
	}
	return shufflepb.WorkerState_WORKER_STATE_UNSPECIFIED
}
