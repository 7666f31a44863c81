package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"shoal/blockstore"
)

// Broadcast is a read-only value that tasks read through Value. Put it in
// an exported field of a struct given to a ...With transformation.
//
// NewBroadcast stores the value's encoding once in every node service, as
// a block (docs/DESIGN.md §4); only its ID travels with tasks. Each worker
// fetches it from its node the first time a task uses it, decodes it once
// and keeps it for its life, shared by its tasks: do not modify it.
type Broadcast[T any] struct {
	ID   uint32 `json:"id"`
	cell *broadcastCell[T]
}

type broadcastCell[T any] struct {
	value T
	err   error
}

// NewBroadcast encodes v and stores it in the node services. It waits for
// a running job to end.
func NewBroadcast[T any](c *Context, v T) (Broadcast[T], error) {
	cd, err := codecOf[T]()
	if err != nil {
		return Broadcast[T]{}, fmt.Errorf("client: broadcast of %T: %w", v, err)
	}
	// Broadcasts and RDDs share the ID space: a broadcast is block 0 of
	// its ID.
	id := c.nextID()
	if err := c.storeBroadcast(id, cd.Append(nil, v)); err != nil {
		return Broadcast[T]{}, err
	}
	return Broadcast[T]{ID: uint32(id), cell: &broadcastCell[T]{value: v}}, nil
}

// Value is the broadcast value. It panics if the value could not be had
// (the task then fails with the reason).
func (b Broadcast[T]) Value() T {
	c := b.cell
	if c == nil {
		c = &broadcastCell[T]{err: errors.New("not bound to a task (a Broadcast works in a field of a struct given to a ...With transformation)")}
	}
	if c.err != nil {
		panic(fmt.Errorf("client: broadcast %d: %w", b.ID, c.err))
	}
	return c.value
}

// storeBroadcast puts a broadcast's bytes in every live node service and
// keeps them for nodes started later.
// NewBroadcast takes no context: the call waits for the running job,
// and the stores are bounded by broadcastTimeout and end with the context.
func (c *Context) storeBroadcast(id int, data []byte) error {
	return c.callAsync(context.Background(), func(s *scheduler, reply func(error)) {
		s.broadcasts[id] = data
		s.putBroadcasts(s.life, s.liveNodes(), map[int][]byte{id: data}, reply)
	})
}

// putBroadcasts stores broadcasts in the nodes at addrs, on disk (a
// worker reads one once, and it survives a restart of the node), off the
// loop, and replies when they are stored.
func (s *scheduler) putBroadcasts(ctx context.Context, addrs []string, broadcasts map[int][]byte, reply func(error)) {
	nodes, app := s.nodes, s.c.app
	async(s, ctx, broadcastTimeout, func(ctx context.Context) error {
		var errs []error
		for _, addr := range addrs {
			for _, id := range slices.Sorted(maps.Keys(broadcasts)) {
				if err := nodes.PutBlock(ctx, addr, blockstore.BlockID{App: app, RDD: id}, broadcasts[id]); err != nil {
					errs = append(errs, fmt.Errorf("client: store broadcast %d in node %s: %w", id, addr, err))
				}
			}
		}
		return errors.Join(errs...)
	}, reply)
}

// broadcastTimeout bounds storing broadcasts in the nodes.
const broadcastTimeout = 5 * time.Minute

// broadcastCache is the broadcasts a worker (its runner) has fetched, by
// ID: decoded values, shared by its tasks.
type broadcastCache struct {
	mu sync.Mutex
	m  map[uint32]*fetchedBroadcast
}

func newBroadcastCache() *broadcastCache {
	return &broadcastCache{m: map[uint32]*fetchedBroadcast{}}
}

// entry returns the broadcast's entry, made empty the first time.
func (c *broadcastCache) entry(id uint32) *fetchedBroadcast {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.m[id]
	if f == nil {
		f = &fetchedBroadcast{}
		c.m[id] = f
	}
	return f
}

// clear forgets every broadcast: tasks that hold one keep their value.
func (c *broadcastCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}

type fetchedBroadcast struct {
	mu    sync.Mutex // held while it is fetched
	value any
	ok    bool
}

// bindBroadcast gives a Broadcast decoded on a worker its value: fetched
// from the worker's node service the first time, once per worker (a
// failed fetch is tried again by the next task).
func (b *Broadcast[T]) bindBroadcast(tc *taskContext) {
	f := tc.runner.broadcasts.entry(b.ID)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ok {
		v, err := fetchBroadcast[T](tc, b.ID)
		if err != nil {
			err = fmt.Errorf("client: broadcast %d: %w", b.ID, err)
			tc.fail(err)
			b.cell = &broadcastCell[T]{err: err}
			return
		}
		f.value, f.ok = v, true
		tc.addMetric("broadcast_fetches", 1)
	}
	b.cell = &broadcastCell[T]{value: f.value.(T)}
}

func fetchBroadcast[T any](tc *taskContext, id uint32) (T, error) {
	var zero T
	cl, err := tc.env.Clients(tc.env.NodeAddr)
	if err != nil {
		return zero, err
	}
	data, _, found, err := cl.GetBlock(tc.ctx, blockstore.BlockID{App: tc.env.App, RDD: int(id)})
	switch {
	case err != nil:
		return zero, fmt.Errorf("fetch from node %s: %w", tc.env.NodeAddr, err)
	case !found:
		return zero, fmt.Errorf("node %s does not hold it", tc.env.NodeAddr)
	}
	cd, err := codecOf[T]()
	if err != nil {
		return zero, err
	}
	return cd.Decode(data)
}

type broadcastBinder interface{ bindBroadcast(tc *taskContext) }
