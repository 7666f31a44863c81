package client

import (
	"slices"

	"shoal/internal/fnref"
)

// The DAG scheduler cuts a job's lineage into stages at shuffle
// dependencies. A stage is a pipeline of narrow transformations ending
// either in a shuffle write (a map stage, one per shuffle, kept for the
// context's lifetime so later jobs can skip it) or in the action's sink
// (the job's result stage). A stage's tasks compute one partition each.

type stage struct {
	id       int
	final    *node       // the last node of the pipeline
	shuffle  *shuffleDep // the shuffle a map stage writes; nil for a result stage
	parents  []*stage    // the map stages whose shuffles it reads
	attempts int         // attempts so far, across jobs
	// fetchFailures counts its attempts in a row that ended on fetch
	// failures; a successful attempt resets it.
	fetchFailures int
}

func (st *stage) kind() string {
	if st.shuffle != nil {
		return "map"
	}
	return "result"
}

func (st *stage) name() string { return st.final.displayName() }

// resultStage makes the result stage of a job on final, a new one per
// job, with the map stages it reads; those are made once per context
// (scheduler.mapStage), so a later job finds them with their outputs.
func (s *scheduler) resultStage(final *node) *stage {
	s.stageIDs++
	st := &stage{id: s.stageIDs, final: final}
	for _, sd := range shuffleDeps(final, nil) {
		st.parents = append(st.parents, s.mapStage(sd))
	}
	return st
}

// needed is the map stages st reads now: its parents, less those whose
// shuffles are read only below an RDD whose every partition is cached in
// a node (cut).
func (s *scheduler) needed(st *stage) []*stage {
	var out []*stage
	for _, sd := range shuffleDeps(st.final, s.cached) {
		out = append(out, s.mapStage(sd))
	}
	return out
}

// shuffleDeps returns the shuffles read by the pipeline ending at n: those
// reachable through narrow dependencies, in order of first appearance,
// not looking below a node for which cut (if not nil) is true.
func shuffleDeps(n *node, cut func(*node) bool) []*shuffleDep {
	var out []*shuffleDep
	seen := map[int]bool{}
	stack := []*node{n}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n.id] {
			continue
		}
		seen[n.id] = true
		if cut != nil && cut(n) {
			continue
		}
		for i := len(n.deps) - 1; i >= 0; i-- {
			d := n.deps[i]
			if d.kind == depShuffle {
				if !slices.ContainsFunc(out, func(s *shuffleDep) bool { return s.id == d.shuffle.id }) {
					out = append(out, d.shuffle)
				}
				continue
			}
			stack = append(stack, d.parent)
		}
	}
	return out
}

// pipeline returns the nodes of the stage ending at final in topological
// order (parents first) and the shuffles they read, not looking below a
// node for which cut (if not nil) is true.
func pipeline(final *node, cut func(*node) bool) (nodes []*node, inputs []int) {
	seen := map[int]bool{}
	// Iterative post-order: a node is emitted after its narrow parents.
	type frame struct {
		n    *node
		next int
	}
	stack := []frame{{n: final}}
	seen[final.id] = true
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if top.next == 0 && cut != nil && cut(top.n) {
			top.next = len(top.n.deps)
		}
		if top.next < len(top.n.deps) {
			d := top.n.deps[top.next]
			top.next++
			if d.kind == depShuffle {
				if !slices.Contains(inputs, d.shuffle.id) {
					inputs = append(inputs, d.shuffle.id)
				}
				continue
			}
			if !seen[d.parent.id] {
				seen[d.parent.id] = true
				stack = append(stack, frame{n: d.parent})
			}
			continue
		}
		nodes = append(nodes, top.n)
		stack = stack[:len(stack)-1]
	}
	return nodes, inputs
}

// buildPlan is the plan of a stage ending at final, with sink. A
// persisted node is followed by its cache op, which its children read
// through; one whose every partition is held in a node is planned as a
// source: its cache op alone, with no lineage below it. A node being
// checkpointed is followed (after its cache op) by its checkpoint's write
// op.
func (s *scheduler) buildPlan(final *node, sink opSpec) (stagePlan, []int) {
	nodes, inputs := pipeline(final, s.cached)
	index := make(map[int]int, len(nodes))
	plan := stagePlan{Canary: fnref.Canary(), Sink: sink}
	for _, n := range nodes {
		leaf := s.cached(n)
		if !leaf {
			op := planOp{Node: n.id, Spec: n.spec}
			for _, d := range n.deps {
				if d.kind == depNarrow {
					op.Parents = append(op.Parents, index[d.parent.id])
				}
			}
			plan.Ops = append(plan.Ops, op)
		}
		if n.persist != nil {
			op := planOp{Node: n.id, Spec: n.persist.cache}
			op.Spec.Params = s.cacheParams(n, leaf)
			if !leaf {
				op.Parents = []int{len(plan.Ops) - 1}
			}
			plan.Ops = append(plan.Ops, op)
		}
		if cp := n.ckpt; cp != nil && !cp.done && !cp.local {
			op := planOp{Node: n.id, Spec: cp.write, Parents: []int{len(plan.Ops) - 1}}
			op.Spec.Params = s.ckptWriteParams(n)
			plan.Ops = append(plan.Ops, op)
			cp.planned = true
		}
		index[n.id] = len(plan.Ops) - 1
	}
	return plan, inputs
}
