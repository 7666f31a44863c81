package client

import (
	"fmt"

	"shoal/internal/codec"
)

// Broadcast is a read-only value that tasks read through Value. Put it in
// an exported field of a struct given to a ...With transformation. Its
// encoding travels with each task that uses it and is decoded once per
// task, when the task's operators are rebuilt.
//
// Broadcasts are meant for lookup tables of moderate size. (The node
// services do not hold them as blocks yet: a large one costs its size in
// every task it travels with.)
type Broadcast[T any] struct {
	ID   uint32 `json:"id"`
	Data []byte `json:"data"`
	cell *broadcastCell[T]
}

type broadcastCell[T any] struct {
	value T
	err   error
	ready bool
}

// NewBroadcast encodes v for the workers.
func NewBroadcast[T any](c *Context, v T) (Broadcast[T], error) {
	cd, err := codec.For[T]()
	if err != nil {
		return Broadcast[T]{}, fmt.Errorf("client: broadcast of %T: %w", v, err)
	}
	c.mu.Lock()
	c.broadcasts++
	id := c.broadcasts
	c.mu.Unlock()
	return Broadcast[T]{ID: id, Data: cd.Append(nil, v), cell: &broadcastCell[T]{value: v, ready: true}}, nil
}

// Value is the broadcast value. It panics if the value cannot be decoded
// (the task then fails with the reason).
func (b Broadcast[T]) Value() T {
	c := b.cell
	if c == nil {
		c = &broadcastCell[T]{}
	}
	if !c.ready {
		c.ready = true
		cd, err := codec.For[T]()
		if err == nil {
			c.value, err = cd.Decode(b.Data)
		}
		c.err = err
	}
	if c.err != nil {
		panic(fmt.Errorf("client: broadcast %d: %w", b.ID, c.err))
	}
	return c.value
}

// bindBroadcast gives a decoded Broadcast a cell, so that Value decodes
// once per task.
func (b *Broadcast[T]) bindBroadcast() {
	if b.cell == nil {
		b.cell = &broadcastCell[T]{}
	}
}

type broadcastBinder interface{ bindBroadcast() }
