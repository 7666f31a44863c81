package client

import "reflect"

// Accumulator is a counter that tasks add to and the driver reads. An
// update from a partition is applied once, however many attempts of it
// ran. Put one in the exported fields of a struct given to a ...With
// transformation; on a worker it is bound to the task running it.
type Accumulator struct {
	ID   uint32 `json:"id"`
	Name string `json:"name"`
	cell *accCell
}

type accCell struct{ v int64 }

// Add adds v. On the driver (outside a task) it does nothing.
func (a Accumulator) Add(v int64) {
	if a.cell != nil {
		a.cell.v += v
	}
}

// NewAccumulator registers an accumulator with the context.
func (c *Context) NewAccumulator(name string) Accumulator {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := uint32(len(c.accums) + 1)
	c.accums = append(c.accums, 0)
	return Accumulator{ID: id, Name: name}
}

// Value is the accumulator's total over the partitions computed so far.
func (c *Context) Value(a Accumulator) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a.ID == 0 || int(a.ID) > len(c.accums) {
		return 0
	}
	return c.accums[a.ID-1]
}

// applyAccumulators adds a successful task's updates (its report's).
func (c *Context) applyAccumulators(updates map[uint32]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, v := range updates {
		if id == 0 || int(id) > len(c.accums) {
			continue
		}
		c.accums[id-1] += v
	}
}

var accumulatorType = reflect.TypeFor[Accumulator]()

// bindAccumulators gives every Accumulator field of *v (a struct, or
// nested structs) a cell of tc, and every Broadcast field its cache.
func bindAccumulators(tc *taskContext, v any) {
	rv := reflect.ValueOf(v).Elem()
	var walk func(rv reflect.Value)
	walk = func(rv reflect.Value) {
		if rv.Kind() != reflect.Struct {
			return
		}
		if b, ok := rv.Addr().Interface().(broadcastBinder); ok {
			b.bindBroadcast(tc)
			return
		}
		if rv.Type() == accumulatorType {
			a := rv.Addr().Interface().(*Accumulator)
			cell := tc.accums[a.ID]
			if cell == nil {
				cell = &accCell{}
				tc.accums[a.ID] = cell
			}
			a.cell = cell
			return
		}
		for i := range rv.NumField() {
			if f := rv.Field(i); f.CanSet() {
				walk(f)
			}
		}
	}
	if rv.CanAddr() {
		walk(rv)
	}
}
