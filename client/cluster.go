package client

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"shoal/blockstore"
	"shoal/compute"
	"shoal/compute/computepb"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shufflepb"
)

// The scheduler's loop talks to three small interfaces (package doc,
// "The driver"): where tasks go, the cluster of processes, and the node
// services. The real ones are the compute.Endpoint, the compute.Local
// launcher and nodeClients; fake.go has in-memory fakes that the failure
// table's tests drive without processes.

// taskEndpoint is where tasks go: the driver's end of the workers'
// streams. Its methods never block on the network: sends are queued.
type taskEndpoint interface {
	// Events delivers worker arrivals and losses and task updates.
	Events() <-chan compute.Event
	Run(worker string, t *computepb.RunTask) error
	Kill(worker string, task uint64) error
	// Message sends the worker's runner a payload of the client's own
	// (encodeDropBlocks).
	Message(worker string, payload []byte) error
}

// cluster is the set of processes the driver runs on: it starts
// replacement workers and restarts nodes. It is the local launcher
// (compute.Local) in local mode, compute.Remote in cluster mode.
type cluster interface {
	Nodes() []compute.NodeInfo
	// AddWorker starts a worker on node i; it joins when it connects. A
	// worker with no ID means the node starts one by itself (cluster
	// mode: nodes supervise their workers).
	AddWorker(i int) (compute.LocalWorker, error)
	// KillWorker makes sure a worker's process is gone.
	KillWorker(id string) error
	// RestartNode starts node i again after it was killed.
	RestartNode(ctx context.Context, i int) (compute.NodeInfo, error)
	// Failures delivers what the cluster reports on its own: a node that
	// gave up starting workers (their binary crashes at start). Nil: none.
	Failures() <-chan error
}

// nodeService is what the driver asks of node services. Every call may
// wait on the network: the loop makes them in goroutines (scheduler.async)
// with a deadline.
type nodeService interface {
	// Probe returns an error if the node at addr does not answer
	// (unavailable, or no answer in time); an answer, even an error, is
	// nil.
	Probe(ctx context.Context, addr string) error
	PutBlock(ctx context.Context, addr string, id blockstore.BlockID, data []byte) error
	GetBlock(ctx context.Context, addr string, id blockstore.BlockID) (data []byte, found bool, err error)
	RemoveBlocks(ctx context.Context, addr, app string, rdd int) error
	// CheckpointStatus asks the node at addr about checkpoint partitions
	// handed to it (Options.CheckpointVia "node"), by object key.
	CheckpointStatus(ctx context.Context, addr, app, store string, keys []string) ([]*shufflepb.CheckpointPartState, error)
	Close() error
}

// nodeClients is the real nodeService: a client per node address, kept
// until Close. Safe for concurrent use.
type nodeClients struct {
	dial    []nodeclient.DialOption // the cluster secret and the application token
	mu      sync.Mutex
	clients map[string]*nodeclient.Client
	closed  bool
}

func newNodeClients(dial ...nodeclient.DialOption) *nodeClients {
	return &nodeClients{dial: dial, clients: map[string]*nodeclient.Client{}}
}

func (n *nodeClients) client(addr string) (*nodeclient.Client, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("client: node %s: %w", addr, errClosed)
	}
	if cl := n.clients[addr]; cl != nil {
		return cl, nil
	}
	cl, err := nodeclient.Dial(addr, n.dial...)
	if err != nil {
		return nil, err
	}
	n.clients[addr] = cl
	return cl, nil
}

// Probe dials the node afresh: the kept client of a node that was
// unreachable may still be waiting out its reconnection backoff, and
// would say Unavailable for a node that answers again.
func (n *nodeClients) Probe(ctx context.Context, addr string) error {
	cl, err := nodeclient.Dial(addr, n.dial...)
	if err != nil {
		return err
	}
	defer cl.Close()
	_, err = cl.Status(ctx)
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return err
	}
	return nil
}

func (n *nodeClients) PutBlock(ctx context.Context, addr string, id blockstore.BlockID, data []byte) error {
	cl, err := n.client(addr)
	if err == nil {
		_, _, err = cl.PutBlock(ctx, id, blockstore.DiskOnly, 0, data)
	}
	return err
}

func (n *nodeClients) CheckpointStatus(ctx context.Context, addr, app, store string, keys []string) ([]*shufflepb.CheckpointPartState, error) {
	cl, err := n.client(addr)
	if err != nil {
		return nil, err
	}
	return cl.CheckpointStatus(ctx, app, store, keys)
}

func (n *nodeClients) GetBlock(ctx context.Context, addr string, id blockstore.BlockID) ([]byte, bool, error) {
	cl, err := n.client(addr)
	if err != nil {
		return nil, false, err
	}
	data, _, found, err := cl.GetBlock(ctx, id)
	return data, found, err
}

func (n *nodeClients) RemoveBlocks(ctx context.Context, addr, app string, rdd int) error {
	cl, err := n.client(addr)
	if err == nil {
		_, err = cl.RemoveBlocks(ctx, app, rdd)
	}
	return err
}

// Close closes every client; calls after it fail.
func (n *nodeClients) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	for addr, cl := range n.clients {
		cl.Close()
		delete(n.clients, addr)
	}
	return nil
}
