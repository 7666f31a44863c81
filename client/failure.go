package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"shoal/compute"
	"shoal/compute/computepb"
	"shoal/shuffleservice/nodeclient"
)

// Failures of workers and nodes (DESIGN.md §6): replacing lost workers,
// declaring nodes lost, acting on fetch failures, giving up.

const (
	// probeTimeout bounds the call that tells whether a node still
	// answers after a fetch failure or the loss of all its workers.
	probeTimeout = 2 * time.Second
	// reviveInterval is how often a stage attempt with no usable worker
	// probes the lost nodes that still have connected workers
	// (reviveNodes).
	reviveInterval = 500 * time.Millisecond
	// jobReviveInterval is how often, at most, a job's start probes the
	// lost nodes that still have connected workers, so that a node cut
	// off for a while serves the next job again, while one still silent
	// costs a probe (up to probeTimeout) only this often.
	jobReviveInterval = 10 * time.Second
	// maxReplacementsPerNode bounds the workers started on a local node
	// to replace lost ones, so that a worker that dies at start does not
	// make the driver start processes forever.
	maxReplacementsPerNode = 16
)

// fetchFailedError ends a stage attempt: a map output it needed is gone.
type fetchFailedError struct {
	stage          *stage // the stage that could not read its input
	shuffle, mapID int
	node, reason   string
	nodeLost       bool // the node did not answer: all its outputs were forgotten
}

func (e *fetchFailedError) Error() string {
	lost := ""
	if e.nodeLost {
		lost = " (the node is lost)"
	}
	node := e.node
	if node == "" {
		node = "?"
	}
	return fmt.Sprintf("client: fetch failed: %s on node %s%s: %s", e.what(), node, lost, e.reason)
}

// what names what could not be fetched.
func (e *fetchFailedError) what() string {
	if e.shuffle < 0 {
		return "a cached block" // the reason names it
	}
	return fmt.Sprintf("shuffle %d map %d", e.shuffle, e.mapID)
}

// stageFetchFailed counts a stage attempt that ended on fetch failures
// and returns the error that fails the job once its stage has failed
// MaxStageAttempts attempts in a row.
func (s *scheduler) stageFetchFailed(ff *fetchFailedError) error {
	st := ff.stage
	st.fetchFailures++
	if n := s.c.opts.MaxStageAttempts; st.fetchFailures >= n {
		st.fetchFailures = 0 // a later job starts afresh
		return fmt.Errorf("stage %d (%s) gave up after %d attempts ended on fetch failures; last: %s on node %s: %s (what was lost was recomputed each time and could still not be read: check that node's disk and network)",
			st.id, st.name(), n, ff.what(), ff.node, ff.reason)
	}
	return nil
}

// fetchFailed acts on the fetch failures gathered by a stage attempt and
// returns the error that ends it. A node that does not answer is lost:
// every output it held is forgotten. Otherwise (a corrupt or missing
// output on a node that answers) only the output named is forgotten.
// Either way the forgotten outputs are recomputed with a higher epoch.
// Cached blocks a task could not read (misses) were forgotten already;
// the node named is probed the same way.
func (s *scheduler) fetchFailed(st *stage, fails []*computepb.FetchFailure, misses []*computepb.BlockReport) error {
	var first *fetchFailedError
	probed := map[string]error{}
	for _, b := range misses {
		if _, ok := probed[b.Where]; !ok && !s.lostNodes[b.Where] && s.isNode(b.Where) {
			probed[b.Where] = probeNode(b.Where)
			if err := probed[b.Where]; err != nil {
				s.nodeLost(b.Where, fmt.Sprintf("a cached block could not be read from it and it does not answer: %v", err))
			}
		}
		if first == nil {
			first = &fetchFailedError{stage: st, shuffle: -1, mapID: -1, node: b.Where, nodeLost: s.lostNodes[b.Where],
				reason: fmt.Sprintf("cached partition %d of RDD %d: %s", b.Partition, b.Rdd, b.Reason)}
		}
	}
	for _, ff := range fails {
		e := &fetchFailedError{stage: st, shuffle: int(ff.Shuffle), mapID: int(ff.Map), node: ff.Node, reason: ff.Reason}
		err, ok := probed[ff.Node]
		if !ok && !s.lostNodes[ff.Node] {
			err = probeNode(ff.Node)
			probed[ff.Node] = err
		}
		switch {
		case s.lostNodes[ff.Node]:
			e.nodeLost = true
		case err != nil:
			e.nodeLost = true
			s.nodeLost(ff.Node, fmt.Sprintf("a fetch from it failed and it does not answer: %v", err))
		default:
			if outs := s.outputs[e.shuffle]; e.mapID < len(outs) && outs[e.mapID] != nil && outs[e.mapID].Node == ff.Node {
				s.lostOutput(e.shuffle, e.mapID)
			}
		}
		if first == nil {
			first = e
		}
	}
	return first
}

// failedWithNode tells, after a task failed for the infrastructure (not
// its own code), whether its node is to blame: the shuffle server its
// outputs go to is lost already, or does not answer now, and is then
// declared lost. Such a failure is not counted against the task's
// partition, as a fetch failure is not: a node cut off for a while must
// not fail the job through the tasks that could not commit to it.
func (s *scheduler) failedWithNode(t *taskRun, taskErr string) bool {
	addr := cmp.Or(t.shuffleAddr, t.node)
	if addr == "" {
		return false
	}
	if s.lostNodes[addr] {
		return true
	}
	err := probeNode(addr)
	if err == nil {
		return false
	}
	line, _, _ := strings.Cut(taskErr, "\n")
	s.nodeLost(addr, fmt.Sprintf("task %d failed on its worker %s (%s) and the node does not answer: %v", t.id, t.worker, line, err))
	return true
}

// probeNode returns an error if the shuffle server at addr does not
// answer (Unavailable or DeadlineExceeded); an answer, even an error, is
// nil.
func probeNode(addr string) error {
	cl, err := nodeclient.Dial(addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	_, err = cl.Status(ctx)
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return err
	}
	return nil
}

// nodeLost declares the shuffle server at addr lost: every map output
// registered there is forgotten (and will be recomputed with a higher
// epoch), and no task is placed on its workers any more, unless it comes
// back: when a stage has no usable worker left, reviveNodes takes back a
// lost node that answers again while its workers are still connected
// (it was only cut off). A node restarted on the same directory listens
// on a new address and is a new node to the scheduler.
func (s *scheduler) nodeLost(addr, reason string) {
	if s.lostNodes[addr] {
		return
	}
	s.lostNodes[addr] = true
	n := s.outputsLost(addr)
	blocks := s.blocksLost(addr)
	s.c.log.Warn("node lost", "node", addr, "reason", reason, "outputs", n, "blocks", blocks)
	s.c.events.emit("node_lost", map[string]any{"node": addr, "addr": addr, "pid": s.nodePid(addr), "reason": reason, "outputs": n, "blocks": blocks})
}

// nodePid is the process ID of the local node at addr, or 0.
func (s *scheduler) nodePid(addr string) int {
	if l := s.c.local; l != nil {
		for _, ni := range l.Nodes() {
			if ni.Addr == addr {
				return ni.Pid
			}
		}
	}
	return 0
}

// reviveNodes probes the lost nodes (shuffle server addresses) that a
// connected worker still reports as its node or its shuffle server, and
// takes back those that answer: such a node was cut off for a while, not
// dead (a machine that dies takes its workers with it). Its workers get
// tasks again. What it held stays forgotten: those outputs are recomputed
// with a higher epoch, which fences the copies it may still serve. It
// returns how many nodes came back (node_added, with a reason).
func (s *scheduler) reviveNodes() int {
	var addrs []string
	for addr := range s.lostNodes {
		for _, w := range s.workers {
			if w.info.Node == addr || w.info.ShuffleAddr == addr {
				addrs = append(addrs, addr)
				break
			}
		}
	}
	slices.Sort(addrs)
	n := 0
	for _, addr := range addrs {
		if probeNode(addr) != nil {
			continue
		}
		delete(s.lostNodes, addr)
		n++
		reason := "it answers again after it was declared lost; its workers are still connected"
		s.c.log.Warn("lost node is back", "node", addr, "reason", reason)
		s.c.events.emit("node_added", map[string]any{"node": addr, "addr": addr, "pid": s.nodePid(addr), "reason": reason})
	}
	return n
}

// outputsLost forgets every map output registered at addr and returns
// how many.
func (s *scheduler) outputsLost(addr string) int {
	n := 0
	for sh, outs := range s.outputs {
		for m, o := range outs {
			if o != nil && o.Node == addr {
				s.lostOutput(sh, m)
				n++
			}
		}
	}
	return n
}

// workerLost reacts to the loss of a worker beyond its tasks: the map
// outputs it served itself (no external shuffle service) are gone with
// it; its node is probed and declared lost if it does not answer;
// otherwise, in local mode, a replacement is started on the node.
func (s *scheduler) workerLost(w compute.WorkerInfo) {
	s.blocksLost(w.ID) // its heap
	if w.ShuffleAddr != "" && w.ShuffleAddr != w.Node {
		s.outputsLost(w.ShuffleAddr)
	}
	if s.c.closing.Load() || s.lostNodes[w.Node] {
		return
	}
	// A worker dies with its node: ask the node before replacing the
	// worker, so that a dead node is declared lost at once and gets no
	// replacement workers.
	if err := probeNode(w.Node); err != nil {
		s.nodeLost(w.Node, fmt.Sprintf("its worker %s was lost and it does not answer: %v", w.ID, err))
		return
	}
	if s.replaceWorker(w) {
		return
	}
	for _, o := range s.workers {
		if o.info.Node == w.Node {
			return
		}
	}
	if err := probeNode(w.Node); err != nil {
		s.nodeLost(w.Node, fmt.Sprintf("all its workers are lost and it does not answer: %v", err))
	}
}

// replaceWorker starts a worker on the local node of w, if there is one
// that has not been killed. The new worker is a new process with a new
// ID; it joins when it connects (worker_added).
func (s *scheduler) replaceWorker(w compute.WorkerInfo) bool {
	l := s.c.local
	if l == nil {
		return false
	}
	idx := -1
	for _, n := range l.Nodes() {
		if n.Addr == w.Node {
			idx = n.Index
		}
	}
	if idx < 0 {
		return false // a node restarted since: its workers were started with it
	}
	if s.replacements[idx] >= maxReplacementsPerNode {
		s.c.log.Warn("not replacing a lost worker: too many replaced on its node", "worker", w.ID, "node", w.Node, "replaced", s.replacements[idx])
		return false
	}
	// A worker lost on missed heartbeats may still run: make sure it is
	// gone before its replacement starts. One that crashed is reaped.
	l.KillWorker(w.ID)
	nw, err := l.AddWorker(idx)
	if err != nil {
		s.c.log.Info("lost worker not replaced", "worker", w.ID, "node", w.Node, "err", err)
		return false
	}
	s.replacements[idx]++
	s.c.log.Info("replacing a lost worker", "worker", w.ID, "replacement", nw.ID, "node", w.Node, "pid", nw.Pid)
	return true
}

// RestartNode starts local node i again after it was killed
// (Local().KillNode), on the same directory and a new port, with its
// workers. The scheduler treats it as a new node: the outputs of the old
// one were forgotten when it was found lost, and what the restarted
// service still holds is not used.
func (c *Context) RestartNode(ctx context.Context, i int) error {
	l := c.local
	if l == nil {
		return errors.New("client: RestartNode: the context is closed")
	}
	info, err := l.RestartNode(ctx, i)
	if err != nil {
		return err
	}
	c.events.emit("node_added", map[string]any{"node": info.Addr, "addr": info.Addr, "pid": info.Pid})
	c.jobMu.Lock()
	defer c.jobMu.Unlock()
	var errs []error
	for id, data := range c.broadcasts {
		errs = append(errs, c.sched.putBroadcast(info.Addr, id, data))
	}
	return errors.Join(errs...)
}
