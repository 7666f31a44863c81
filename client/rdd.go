package client

import (
	"encoding/json"
	"fmt"
	"iter"

	"shoal/internal/fnref"
)

// RDD is a resilient distributed dataset of T: an immutable, partitioned
// collection computed from its lineage. Building one runs nothing; an
// action (Count, Collect, SaveAsTextFile, ...) runs a job.
//
// Functions given to transformations must be top-level functions or
// struct values (the ...With variants): they travel to workers by name
// (docs/DESIGN.md §7). A function literal is rejected; the error surfaces at
// the first action and says what to write instead.
type RDD[T any] struct {
	n *node
}

// KV is a key-value record, the element of pair RDDs.
type KV[K comparable, V any] struct {
	Key   K
	Value V
}

// Pair holds two values, e.g. the two sides of a join.
type Pair[A, B any] struct {
	First  A
	Second B
}

// Context returns the context the RDD belongs to.
func (r *RDD[T]) Context() *Context { return r.n.ctx }

// ID is the RDD's identifier within its context.
func (r *RDD[T]) ID() int { return r.n.id }

// NumPartitions is the number of partitions.
func (r *RDD[T]) NumPartitions() int { return r.n.parts }

// SetName names the RDD; the name appears in stage names and the event
// log. It returns r.
func (r *RDD[T]) SetName(name string) *RDD[T] {
	r.n.name = name
	return r
}

// Name is the RDD's name, or a description of the operator that made it.
func (r *RDD[T]) Name() string { return r.n.displayName() }

// Err reports an error in building r or its lineage (an anonymous
// function, a bad argument). Actions report it too.
func (r *RDD[T]) Err() error { return r.n.lineageErr() }

// node is an RDD without its element type: the lineage graph and the
// scheduler work on nodes.
type node struct {
	ctx   *Context
	id    int
	op    string // the operator, e.g. "map", for names
	name  string // set by SetName
	parts int
	deps  []*dep
	spec  opSpec
	// parentParts, if set, maps partitions [lo, hi) of n to the range of
	// partitions of deps[i] that computing them reads (empty: none);
	// nil: the same range of every parent (taskinputs.go).
	parentParts func(i, lo, hi int) (int, int)
	// part is the partitioner of a pair RDD whose keys are known to be
	// partitioned by it (after a shuffle), or nil.
	part *Partitioner
	// persist is set by Persist, ckpt by Checkpoint and LocalCheckpoint.
	persist *persistence
	ckpt    *checkpointing
	err     error
}

func (n *node) displayName() string {
	if n.name != "" {
		return n.name
	}
	return fmt.Sprintf("%s#%d", n.op, n.id)
}

// lineageErr is the first building error in n's lineage.
func (n *node) lineageErr() error {
	seen := map[int]bool{}
	var walk func(n *node) error
	walk = func(n *node) error {
		if seen[n.id] {
			return nil
		}
		seen[n.id] = true
		if n.err != nil {
			return n.err
		}
		for _, d := range n.deps {
			if err := walk(d.parent); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(n)
}

// depKind is how a partition of a node depends on its parent.
type depKind uint8

const (
	// depNarrow: the op reads parent partitions within the same task.
	depNarrow depKind = iota
	// depShuffle: the op reads a shuffle written by a map stage.
	depShuffle
)

type dep struct {
	kind    depKind
	parent  *node
	shuffle *shuffleDep // depShuffle
}

// shuffleDep is a shuffle: the parent's records are written by key into
// Partitioner.N reduce partitions and read by the child.
type shuffleDep struct {
	id     int
	parent *node
	part   *Partitioner
	// write is the map side: a sink factory that writes the parent's
	// records (KV[K,V]) into the shuffle, combining values if asked.
	write opSpec
}

// opSpec is what a worker needs to rebuild an op: a factory, found by
// name in the worker's copy of the binary, and its parameters.
type opSpec struct {
	Factory fnref.Ref       `json:"factory"`
	Params  json.RawMessage `json:"params,omitempty"`
}

// seqFn computes one partition of a node as a sequence of records. It
// runs on a worker; errors are recorded in the task and end the sequence.
type seqFn[T any] func(tc *taskContext, part int) iter.Seq[T]

// newNode adds a node to ctx's graph.
func newNode(ctx *Context, op string, parts int, spec opSpec, deps ...*dep) *node {
	return &node{ctx: ctx, id: ctx.nextID(), op: op, parts: parts, spec: spec, deps: deps}
}

// narrow is a narrow dependency on p.
func narrow(p *node) *dep { return &dep{kind: depNarrow, parent: p} }

// mustSpec builds an opSpec of a framework operator type; params are
// marshalled to JSON.
func mustSpec(factory any, params any) opSpec {
	s := opSpec{Factory: fnref.MustOfType(factory)}
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			panic(fmt.Sprintf("client: marshal params of %s: %v", s.Factory.Name, err))
		}
		s.Params = b
	}
	return s
}

// userFn returns a reference to a user's function, or records on n why it
// cannot travel to workers.
func userFn(n *node, what string, f any) fnref.Ref {
	if f == nil {
		n.setErr(fmt.Errorf("client: %s: nil function", what))
		return fnref.Ref{}
	}
	ref, err := fnref.Of(f)
	if err != nil {
		n.setErr(fmt.Errorf("client: %s: %w", what, err))
	}
	return ref
}

func (n *node) setErr(err error) {
	if n.err == nil {
		n.err = err
	}
}
