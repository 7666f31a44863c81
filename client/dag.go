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
	for _, sd := range shuffleDeps(final) {
		st.parents = append(st.parents, s.mapStage(sd))
	}
	return st
}

// shuffleDeps returns the shuffles read by the pipeline ending at n: those
// reachable through narrow dependencies, in order of first appearance.
func shuffleDeps(n *node) []*shuffleDep {
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
// order (parents first) and the shuffles they read.
func pipeline(final *node) (nodes []*node, inputs []int) {
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

// buildPlan is the plan of a stage ending at final, with sink.
func buildPlan(final *node, sink opSpec) (stagePlan, []int) {
	nodes, inputs := pipeline(final)
	index := make(map[int]int, len(nodes))
	plan := stagePlan{Canary: fnref.Canary(), Sink: sink}
	for i, n := range nodes {
		index[n.id] = i
		op := planOp{Node: n.id, Spec: n.spec}
		for _, d := range n.deps {
			if d.kind == depNarrow {
				op.Parents = append(op.Parents, index[d.parent.id])
			}
		}
		plan.Ops = append(plan.Ops, op)
	}
	return plan, inputs
}
