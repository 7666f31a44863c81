package client

import (
	"context"
	"sync"
	"time"

	"shoal/client/eventlog"
	"shoal/shuffleservice/nodeclient"
)

// nodeStatusInterval is how often the driver asks its node services what
// they hold, for the node_status events (the UI's Nodes page).
const (
	nodeStatusInterval = 2 * time.Second
	nodeStatusTimeout  = 500 * time.Millisecond
)

// nodeStatus asks every node service of the local cluster for its Status
// every nodeStatusInterval, and once more when it stops, and logs the
// answers as node_status events. It runs in its own goroutine with its
// own clients, so the scheduler never waits for it; a node that does not
// answer within the round's nodeStatusTimeout is skipped until the next.
type nodeStatus struct {
	c       *Context
	once    sync.Once
	stopc   chan struct{}
	done    chan struct{}
	clients map[string]*nodeclient.Client // owned by the goroutine
}

// startNodeStatus starts the reports if there is an event log or a UI.
func startNodeStatus(c *Context) *nodeStatus {
	if c.events == nil || c.procs == nil {
		return nil
	}
	n := &nodeStatus{c: c, stopc: make(chan struct{}), done: make(chan struct{}), clients: map[string]*nodeclient.Client{}}
	go n.run()
	return n
}

func (n *nodeStatus) run() {
	defer close(n.done)
	defer func() {
		for _, cl := range n.clients {
			cl.Close()
		}
	}()
	t := time.NewTicker(nodeStatusInterval)
	defer t.Stop()
	n.report()
	for {
		select {
		case <-n.stopc:
			n.report()
			return
		case <-t.C:
			n.report()
		}
	}
}

// report asks every node, all within nodeStatusTimeout: a node that is
// down (killed, partitioned) costs the round at most that, and Close, which
// reports once more, no more either.
func (n *nodeStatus) report() {
	ctx, cancel := context.WithTimeout(context.Background(), nodeStatusTimeout)
	defer cancel()
	for _, info := range n.c.procs.Nodes() {
		cl := n.clients[info.Addr]
		if cl == nil {
			var err error
			if cl, err = nodeclient.Dial(info.Addr, nodeclient.WithCredentials(n.c.procs.Credentials())); err != nil {
				continue
			}
			n.clients[info.Addr] = cl
		}
		st, err := cl.Status(ctx)
		if err != nil {
			continue
		}
		ev := &eventlog.NodeStatus{
			Node: info.Addr, Dirs: st.Dirs, Apps: int(st.Apps), MapOutputs: int(st.MapOutputs), OutputBytes: int64(st.BytesOnDisk),
		}
		if b := st.Blocks; b != nil {
			ev.MemoryBlocks, ev.MemoryBytes, ev.MemoryLimit = int(b.MemoryBlocks), int64(b.MemoryBytes), int64(b.MemoryLimit)
			ev.DiskBlocks, ev.DiskBytes, ev.Evictions = int(b.DiskBlocks), int64(b.DiskBytes), int64(b.Evictions)
		}
		if ev.Dirs == nil {
			ev.Dirs = []string{}
		}
		if u := st.GetDirsUsage(); len(u) == len(ev.Dirs) {
			for _, d := range u {
				ev.DirBytes = append(ev.DirBytes, int64(d.GetMapOutputBytes()+d.GetBlockBytes()))
			}
		}
		n.c.events.Write(ev)
	}
}

// stop reports once more and ends the goroutine. Nil-safe and
// idempotent.
func (n *nodeStatus) stop() {
	if n == nil {
		return
	}
	n.once.Do(func() { close(n.stopc) })
	<-n.done
}
