package client

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"shoal/client/clientpb"
	"shoal/client/eventlog"
	"shoal/compute"
	"shoal/compute/computepb"
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

// fetchFailureProbes lists the nodes to probe after a stage attempt
// gathered fetch failures and block misses: those named, not lost yet
// (for block misses, node services only, not workers' heaps).
func (s *scheduler) fetchFailureProbes(fails []*computepb.FetchFailure, misses []*clientpb.BlockReport) []string {
	seen := map[string]bool{}
	var addrs []string
	add := func(addr string) {
		if !seen[addr] && !s.lostNodes[addr] {
			seen[addr] = true
			addrs = append(addrs, addr)
		}
	}
	for _, b := range misses {
		if s.isNode(b.Where) {
			add(b.Where)
		}
	}
	for _, ff := range fails {
		add(ff.Node)
	}
	return addrs
}

// fetchFailed acts on the fetch failures gathered by a stage attempt,
// given what probing their nodes found, and returns the error that ends
// it. A node that does not answer is lost: every output it held is
// forgotten. Otherwise (a corrupt or missing output on a node that
// answers) only the output named is forgotten. Either way the forgotten
// outputs are recomputed with a higher epoch. Cached blocks a task could
// not read (misses) were forgotten already.
func (s *scheduler) fetchFailed(st *stage, fails []*computepb.FetchFailure, misses []*clientpb.BlockReport, probed map[string]error) error {
	var first *fetchFailedError
	for _, b := range misses {
		if err := probed[b.Where]; err != nil {
			s.nodeLost(b.Where, fmt.Sprintf("a cached block could not be read from it and it does not answer: %v", err))
		}
		if first == nil {
			first = &fetchFailedError{stage: st, shuffle: -1, mapID: -1, node: b.Where, nodeLost: s.lostNodes[b.Where],
				reason: fmt.Sprintf("cached partition %d of RDD %d: %s", b.Partition, b.Rdd, b.Reason)}
		}
	}
	for _, ff := range fails {
		e := &fetchFailedError{stage: st, shuffle: int(ff.Shuffle), mapID: int(ff.Map), node: ff.Node, reason: ff.Reason}
		switch err := probed[ff.Node]; {
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

// probe asks the node at addr whether it answers, off the loop, and
// calls then with the answer on the loop (nil: it answers).
func (s *scheduler) probe(ctx context.Context, addr string, then func(error)) {
	nodes := s.nodes
	async(s, ctx, probeTimeout, func(ctx context.Context) error { return nodes.Probe(ctx, addr) }, then)
}

// probeAll probes the nodes at addrs at once; it runs off the loop. A
// node that answers maps to nil.
func probeAll(ctx context.Context, nodes nodeService, addrs []string) map[string]error {
	out := make(map[string]error, len(addrs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, addr := range addrs {
		wg.Go(func() {
			err := nodes.Probe(ctx, addr)
			mu.Lock()
			out[addr] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
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
	s.c.events.Write(&eventlog.NodeLost{Node: addr, Addr: addr, Pid: s.nodePid(addr), Reason: reason, Outputs: n, Blocks: blocks})
}

// nodePid is the process ID of the local node at addr, or 0.
func (s *scheduler) nodePid(addr string) int {
	for _, ni := range s.cl.Nodes() {
		if ni.Addr == addr {
			return ni.Pid
		}
	}
	return 0
}

// reviveCandidates are the lost nodes (shuffle server addresses) that a
// connected worker still reports as its node or its shuffle server: such
// a node may have been cut off for a while, not dead (a machine that dies
// takes its workers with it).
func (s *scheduler) reviveCandidates() []string {
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
	return addrs
}

// reviveNodes takes back the lost nodes that answered a probe
// (probed[addr] is nil). Their workers get tasks again. What they held
// stays forgotten: those outputs are recomputed with a higher epoch,
// which fences the copies they may still serve. It returns how many
// nodes came back (node_added, with a reason).
func (s *scheduler) reviveNodes(probed map[string]error) int {
	n := 0
	for _, addr := range slices.Sorted(maps.Keys(probed)) {
		if probed[addr] != nil || !s.lostNodes[addr] {
			continue
		}
		delete(s.lostNodes, addr)
		n++
		reason := "it answers again after it was declared lost; its workers are still connected"
		s.c.log.Warn("lost node is back", "node", addr, "reason", reason)
		s.c.events.Write(&eventlog.NodeAdded{Node: addr, Addr: addr, Pid: s.nodePid(addr), Reason: reason})
	}
	return n
}

// probeAllFunc is probeAll of addrs, to run off the loop.
func probeAllFunc(nodes nodeService, addrs []string) func(ctx context.Context) map[string]error {
	return func(ctx context.Context) map[string]error { return probeAll(ctx, nodes, addrs) }
}

// probeLost returns the probe of the revive candidates, to run off the
// loop.
func (s *scheduler) probeLost() func(ctx context.Context) map[string]error {
	return probeAllFunc(s.nodes, s.reviveCandidates())
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
	if s.closing || s.lostNodes[w.Node] {
		return
	}
	// A worker dies with its node: ask the node before replacing the
	// worker, so that a dead node is declared lost and gets no
	// replacement workers.
	s.probe(s.life, w.Node, func(err error) {
		switch {
		case s.closing || s.lostNodes[w.Node]:
			return
		case err != nil:
			s.nodeLost(w.Node, fmt.Sprintf("its worker %s was lost and it does not answer: %v", w.ID, err))
			return
		case s.replaceWorker(w):
			return
		}
		for _, o := range s.workers {
			if o.info.Node == w.Node {
				return
			}
		}
		s.probe(s.life, w.Node, func(err error) {
			if err != nil && !s.lostNodes[w.Node] {
				s.nodeLost(w.Node, fmt.Sprintf("all its workers are lost and it does not answer: %v", err))
			}
		})
	})
}

// replaceWorker starts a worker on the local node of w, if there is one
// that has not been killed. The new worker is a new process with a new
// ID; it joins when it connects (worker_added).
func (s *scheduler) replaceWorker(w compute.WorkerInfo) bool {
	l := s.cl
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
	if nw.ID == "" {
		s.c.log.Info("a lost worker's node replaces it", "worker", w.ID, "node", w.Node)
		return true
	}
	s.c.log.Info("replacing a lost worker", "worker", w.ID, "replacement", nw.ID, "node", w.Node, "pid", nw.Pid)
	return true
}

// RestartNode starts local node i again after it was killed
// (Local().KillNode), on the same directory and a new port, with its
// workers. The scheduler treats it as a new node: the outputs of the old
// one were forgotten when it was found lost, and what the restarted
// service still holds is not used. The context's broadcasts are stored
// in it before RestartNode returns (after the running job, if any).
func (c *Context) RestartNode(ctx context.Context, i int) error {
	if c.sched == nil {
		return errClosed
	}
	info, err := c.sched.cl.RestartNode(ctx, i)
	if err != nil {
		return err
	}
	c.events.Write(&eventlog.NodeAdded{Node: info.Addr, Addr: info.Addr, Pid: info.Pid})
	return c.callAsync(ctx, func(s *scheduler, reply func(error)) {
		s.putBroadcasts(ctx, []string{info.Addr}, maps.Clone(s.broadcasts), reply)
	})
}
