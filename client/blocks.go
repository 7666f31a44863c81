package client

import (
	"encoding/json"
	"slices"

	"shoal/compute"
	"shoal/compute/computepb"
	"shoal/shuffleservice/nodeclient"
)

// The driver's side of cached partitions: where each block is held, as
// the tasks' block reports say, and what a lost worker or node takes with
// it.

type blockKey = [2]int // rdd, partition

// cached reports whether every partition of n is held by a node service,
// so that a stage can read n without its lineage. Blocks in workers' heaps
// do not count: a task may run on another worker.
func (s *scheduler) cached(n *node) bool {
	if n.persist == nil || n.persist.level.inHeap() {
		return false
	}
	for p := range n.parts {
		if len(s.blocks[blockKey{n.id, p}]) == 0 {
			return false
		}
	}
	return true
}

// cacheParams are the params of n's cache op in a plan made now.
func (s *scheduler) cacheParams(n *node, leaf bool) json.RawMessage {
	l := n.persist.level
	p := cacheParams{RDD: n.id, Level: l.name, Priority: l.priority, Leaf: leaf, HeapBytes: s.c.opts.HeapCacheBytes}
	for part := range n.parts {
		if held := s.blocks[blockKey{n.id, part}]; len(held) > 0 {
			if p.Held == nil {
				p.Held = map[int][]string{}
			}
			p.Held[part] = held
		}
	}
	if l.replicas > 1 {
		p.Nodes = s.liveNodes()
	}
	return mustJSON(p)
}

// liveNodes are the addresses of the node services not declared lost,
// sorted.
func (s *scheduler) liveNodes() []string {
	var out []string
	for _, n := range s.c.local.Nodes() {
		if !s.lostNodes[n.Addr] {
			out = append(out, n.Addr)
		}
	}
	slices.Sort(out)
	return out
}

// isNode reports whether where is a node service's address (not a
// worker's ID).
func (s *scheduler) isNode(where string) bool {
	return slices.ContainsFunc(s.c.local.Nodes(), func(n compute.NodeInfo) bool { return n.Addr == where })
}

// nodeClient returns a client of the node service at addr, kept for the
// context's life.
func (s *scheduler) nodeClient(addr string) (*nodeclient.Client, error) {
	if cl := s.nodeClients[addr]; cl != nil {
		return cl, nil
	}
	cl, err := nodeclient.Dial(addr)
	if err != nil {
		return nil, err
	}
	s.nodeClients[addr] = cl
	return cl, nil
}

// blockReports applies a task's block reports to the locations and logs
// them. It reports whether a block the task was told of was missing.
func (s *scheduler) blockReports(u *computepb.TaskUpdate) (missing []*computepb.BlockReport) {
	for _, b := range u.Blocks {
		key := blockKey{int(b.Rdd), int(b.Partition)}
		ev := map[string]any{"rdd": b.Rdd, "partition": b.Partition, "level": b.Level, "node": b.Where}
		switch b.Kind {
		case computepb.BlockReport_KIND_HIT:
			ev["bytes"] = b.Bytes
			s.c.events.emit("block_hit", ev)
		case computepb.BlockReport_KIND_STORED:
			if !slices.Contains(s.blocks[key], b.Where) {
				s.blocks[key] = append(s.blocks[key], b.Where)
			}
			ev["bytes"] = b.Bytes
			s.c.events.emit("block_stored", ev)
		case computepb.BlockReport_KIND_EVICTED:
			if !b.ToDisk {
				s.forgetBlock(key, b.Where)
			}
			ev["to_disk"] = b.ToDisk
			s.c.events.emit("block_evicted", ev)
		case computepb.BlockReport_KIND_MISSING:
			s.forgetBlock(key, b.Where)
			s.c.log.Info("a cached block was not where it was expected", "rdd", b.Rdd, "partition", b.Partition, "where", b.Where, "reason", b.Reason)
			missing = append(missing, b)
		}
	}
	return missing
}

func (s *scheduler) forgetBlock(key blockKey, where string) {
	held := slices.DeleteFunc(s.blocks[key], func(w string) bool { return w == where })
	if len(held) == 0 {
		delete(s.blocks, key)
	} else {
		s.blocks[key] = held
	}
}

// blocksLost forgets every block held at where (a node's address or a
// worker's ID) and returns how many.
func (s *scheduler) blocksLost(where string) int {
	n := 0
	for key, held := range s.blocks {
		if slices.Contains(held, where) {
			s.forgetBlock(key, where)
			n++
		}
	}
	return n
}

// cachePrefs are where the cached input of partition part of the stage
// ending at final is held: the blocks of the persisted nodes its pipeline
// reads partition-for-partition.
func (s *scheduler) cachePrefs(final *node, part int) []string {
	var prefs []string
	seen := map[int]bool{}
	var walk func(n *node)
	walk = func(n *node) {
		if seen[n.id] || n.parts != final.parts {
			return
		}
		seen[n.id] = true
		if n.persist != nil {
			prefs = append(prefs, s.blocks[blockKey{n.id, part}]...)
			return
		}
		if n.op == "union" || n.op == "coalesce" {
			return // partition i of n is not partition i of its parents
		}
		for _, d := range n.deps {
			if d.kind == depNarrow {
				walk(d.parent)
			}
		}
	}
	walk(final)
	slices.Sort(prefs)
	return slices.Compact(prefs)
}
