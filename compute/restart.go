package compute

import (
	"context"
	"errors"
	"fmt"

	"shoal/shuffleservice/nodeclient"
)

// RestartNode starts node i's service again after KillNode, as a machine
// that reboots: on the same directory (the service reopens its catalogue
// there, and serves the map outputs and disk blocks it holds), with the
// same flags and a new port, with the application registered and
// WorkersPerNode new workers. It returns the node's new NodeInfo. A node
// that was not killed is an error.
func (l *Local) RestartNode(ctx context.Context, i int) (NodeInfo, error) {
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return NodeInfo{}, errors.New("compute: local: RestartNode after Close")
	case i < 0 || i >= len(l.nodes):
		l.mu.Unlock()
		return NodeInfo{}, fmt.Errorf("compute: local: no node %d (there are %d)", i, len(l.nodes))
	case !l.nodes[i].killed:
		l.mu.Unlock()
		return NodeInfo{}, fmt.Errorf("compute: local: node %d is running (kill it first)", i)
	}
	old := l.nodes[i]
	l.mu.Unlock()

	p, err := l.startNode(ctx, old.info.Dir)
	if err != nil {
		return NodeInfo{}, fmt.Errorf("compute: local: restart node %d: %w", i, err)
	}
	n := &localNode{info: NodeInfo{Index: i, Listen: p.Addr(), Pid: p.Pid(), Dir: old.info.Dir, MetricsAddr: p.MetricsAddr()}, proc: p}
	if n.info.Addr, err = l.advertise(i, p.Addr()); err == nil {
		if n.client, err = nodeclient.Dial(p.Addr(), nodeclient.WithCredentials(l.Credentials()), nodeclient.WithAppToken(l.opts.AppToken)); err == nil {
			err = n.client.RegisterApp(ctx, l.opts.App, 0)
		}
	}
	l.mu.Lock()
	if err == nil && (l.closed || l.nodes[i] != old) {
		err = errors.New("the cluster closed, or the node was restarted concurrently")
	}
	if err != nil {
		l.mu.Unlock()
		if n.client != nil {
			n.client.Close()
		}
		p.Kill()
		return NodeInfo{}, fmt.Errorf("compute: local: restart node %d on %s: %w", i, p.Addr(), err)
	}
	// The old node's fields are never written again: a goroutine that
	// still holds it (the application heartbeat) sees it killed.
	n.next = old.next
	l.nodes[i] = n
	l.mu.Unlock()
	old.client.Close()
	l.log.Info("node restarted", "node", i, "addr", n.info.Addr, "listen", n.info.Listen, "pid", n.info.Pid, "dir", n.info.Dir)
	for range l.opts.WorkersPerNode {
		if _, err := l.AddWorker(i); err != nil {
			return n.info, err
		}
	}
	return n.info, nil
}
