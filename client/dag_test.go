package client

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"shoal/compute/computepb"
)

// The DAG tests build lineage graphs and cut them into stages without a
// cluster: a Context with zero fields builds graphs (NewContext is needed
// only to run them), and a scheduler on it has pure parts, resultStage,
// mapStage, missing and buildPlan, that plan a job without running it.

// Every RDD of the DAG tests is a pair RDD of these; the functions are
// never called.
type dagRec = KV[string, int64]

func dagSame(kv dagRec) dagRec                            { return kv }
func dagKeepAll(dagRec) bool                              { return true }
func dagInc(v int64) int64                                { return v + 1 }
func dagSum(a, b int64) int64                             { return a + b }
func dagAddPair(p Pair[int64, int64]) int64               { return p.First + p.Second }
func dagFlatten(kv KV[string, Pair[int64, int64]]) dagRec { return dagRec{kv.Key, kv.Value.First} }

// dagHarness is a graph under construction and the scheduler that cuts it.
type dagHarness struct {
	c    *Context
	s    *scheduler
	rdds map[string]*RDD[dagRec]
}

func newDAGHarness() *dagHarness {
	c := &Context{}
	f := newFakeCluster(1, 1, 1)
	return &dagHarness{c: c, s: newScheduler(c, f, f, f), rdds: map[string]*RDD[dagRec]{}}
}

// build runs one line of the build command, `NAME = OP [RDD...] [parts=N]`,
// and names the RDD it makes NAME.
func (h *dagHarness) build(line string) (*RDD[dagRec], error) {
	f := strings.Fields(line)
	if len(f) < 3 || f[1] != "=" {
		return nil, fmt.Errorf("%q: want NAME = OP [RDD...] [parts=N]", line)
	}
	name, op := f[0], f[2]
	var in []*RDD[dagRec]
	parts := 0
	for _, a := range f[3:] {
		if v, ok := strings.CutPrefix(a, "parts="); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("%q: %v", line, err)
			}
			parts = n
			continue
		}
		r := h.rdds[a]
		if r == nil {
			return nil, fmt.Errorf("%q: no RDD %q", line, a)
		}
		in = append(in, r)
	}
	inputs := map[string]int{
		"parallelize": 0, "map": 1, "mapValues": 1, "filter": 1, "reduceByKey": 1,
		"partitionBy": 1, "coalesce": 1, "join": 2, "union": -1,
	}
	want, ok := inputs[op]
	switch {
	case !ok:
		return nil, fmt.Errorf("%q: unknown operator %q", line, op)
	case want >= 0 && len(in) != want || want < 0 && len(in) == 0:
		return nil, fmt.Errorf("%q: %s takes %d RDDs, got %d", line, op, want, len(in))
	}
	var r *RDD[dagRec]
	switch op {
	case "parallelize":
		r = Parallelize(h.c, []dagRec{}, parts)
	case "map":
		r = Map(in[0], dagSame)
	case "mapValues":
		r = MapValues(in[0], dagInc)
	case "filter":
		r = Filter(in[0], dagKeepAll)
	case "reduceByKey":
		r = ReduceByKey(in[0], dagSum, parts)
	case "partitionBy":
		r = PartitionBy(in[0], HashPartitioner(parts))
	case "coalesce":
		r = Coalesce(in[0], parts)
	case "join":
		// Join's records are pairs; mapValues makes them dagRecs again,
		// keeping the join's partitioner.
		r = MapValues(Join(in[0], in[1], parts), dagAddPair)
	case "union":
		r = Union(in...)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%q: %v", line, err)
	}
	if _, ok := h.rdds[name]; ok {
		return nil, fmt.Errorf("%q: %s is defined already", line, name)
	}
	// A no-op (partitionBy of an RDD so partitioned) returns its input:
	// give it its own name only if it has none.
	if r.n.name == "" {
		r.SetName(name)
	}
	h.rdds[name] = r
	return r, nil
}

// label is a node as plans print it: NAME (op#ID), or op#ID if unnamed.
func label(n *node) string {
	if n.name == "" {
		return fmt.Sprintf("%s#%d", n.op, n.id)
	}
	return fmt.Sprintf("%s (%s#%d)", n.name, n.op, n.id)
}

func partitionerString(p *Partitioner) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprintf("%s/%d", p.Kind, p.N)
}

// describe prints a node as the build command does.
func describe(n *node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d parts, partitioner %s", label(n), n.parts, partitionerString(n.part))
	for _, d := range n.deps {
		if d.kind == depShuffle {
			fmt.Fprintf(&b, ", reads shuffle %d of %s", d.shuffle.id, label(d.parent))
		}
	}
	return b.String()
}

// jobStages returns the stages of a job whose result stage is result,
// parents first, each once: the order in which scheduler.ensure visits
// them. It walks without recursion, for long lineages.
func jobStages(s *scheduler, result *stage) []*stage {
	var out []*stage
	seen := map[int]bool{result.id: true}
	type frame struct {
		st   *stage
		next int
	}
	stack := []frame{{st: result}}
	for len(stack) > 0 {
		top := &stack[len(stack)-1]
		if parents := s.needed(top.st); top.next < len(parents) {
			p := parents[top.next]
			top.next++
			if !seen[p.id] {
				seen[p.id] = true
				stack = append(stack, frame{st: p})
			}
			continue
		}
		out = append(out, top.st)
		stack = stack[:len(stack)-1]
	}
	return out
}

func stageIDs(stages []*stage) string {
	if len(stages) == 0 {
		return "none"
	}
	ids := make([]string, len(stages))
	for i, st := range stages {
		ids[i] = strconv.Itoa(st.id)
	}
	return strings.Join(ids, ",")
}

// printStage prints a stage and the plan its tasks would run.
func printStage(b *strings.Builder, s *scheduler, st *stage) {
	fmt.Fprintf(b, "stage %d %s %s: %d partitions, parents %s\n", st.id, st.kind(), st.name(), st.final.parts, stageIDs(s.needed(st)))
	sink := opSpec{}
	if st.shuffle != nil {
		sink = st.shuffle.write
	}
	plan, inputs := s.buildPlan(st.final, sink)
	nodes, _ := pipeline(st.final, s.cached)
	byID := map[int]*node{}
	for _, n := range nodes {
		byID[n.id] = n
	}
	for i, op := range plan.Ops {
		n := byID[op.Node]
		if n == nil {
			panic(fmt.Sprintf("plan op %d is node %d, not in the pipeline", i, op.Node))
		}
		cacheOp := n.persist != nil && op.Spec.Factory == n.persist.cache.Factory
		if cacheOp {
			leaf := ""
			if len(op.Parents) == 0 {
				leaf = ", cached: no lineage"
			}
			fmt.Fprintf(b, "  op %d cache %s (%v%s)", i, label(n), n.persist.level, leaf)
		} else {
			fmt.Fprintf(b, "  op %d %s", i, label(n))
		}
		if len(op.Parents) > 0 {
			fmt.Fprintf(b, " <- ops %s", intsString(op.Parents))
		}
		for _, d := range n.deps {
			if d.kind == depShuffle && !cacheOp {
				fmt.Fprintf(b, " <- shuffle %d", d.shuffle.id)
			}
		}
		b.WriteString("\n")
	}
	if len(inputs) > 0 {
		fmt.Fprintf(b, "  inputs: shuffles %s\n", intsString(inputs))
	}
	if st.shuffle != nil {
		fmt.Fprintf(b, "  sink: write shuffle %d, %s\n", st.shuffle.id, partitionerString(st.shuffle.part))
	}
}

// printMissing prints the plan of a job on final (planStages, what
// ensure runs) without running anything, then the result stage's
// partitions parts.
func printMissing(b *strings.Builder, s *scheduler, final *node, parts []int) {
	result := s.resultStage(final)
	for _, step := range s.planStages(s.needed(result), map[int]bool{}) {
		st := step.st
		if len(step.missing) == 0 {
			fmt.Fprintf(b, "skip stage %d map %s: all %d outputs of shuffle %d registered\n", st.id, st.name(), st.final.parts, st.shuffle.id)
		} else {
			fmt.Fprintf(b, "submit stage %d map %s: partitions %s of %d\n", st.id, st.name(), intsString(step.missing), st.final.parts)
		}
	}
	fmt.Fprintf(b, "submit stage %d result %s: partitions %s\n", result.id, result.name(), intsString(parts))
}

func intsString(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

// printOutputs prints which map outputs of a shuffle are registered.
func printOutputs(s *scheduler, shuffle int) string {
	outs := s.outputs[shuffle]
	var have, miss []int
	for i, o := range outs {
		if o == nil {
			miss = append(miss, i)
		} else {
			have = append(have, i)
		}
	}
	return fmt.Sprintf("shuffle %d: registered [%s] missing [%s]\n", shuffle, intsString(have), intsString(miss))
}

// TestDAG runs testdata/dag. Commands:
//
//	build
//	NAME = OP [RDD...] [parts=N]
//	...
//
// adds RDDs to the graph (each a KV[string,int64]); OP is parallelize,
// map, mapValues, filter, reduceByKey, partitionBy, coalesce, join (then
// mapValues back to int64 values) or union. It prints each new node.
//
//	stages RDD
//
// cuts a job on RDD into stages and prints them, parents first, with the
// plan their tasks run: ops (parents as op indexes, shuffles read), the
// shuffles the stage reads and, for a map stage, the shuffle it writes.
// Map stages are made once per graph; each job has a new result stage.
//
//	outputs shuffle=S [have=M,M...]
//	lost shuffle=S map=M
//
// registers exactly the map outputs have of shuffle S (whose map stage
// must exist), or forgets one as a fetch failure does.
//
//	missing RDD [parts=P,P...]
//
// prints what a job on RDD would run: stages skipped, and partitions
// submitted (the result stage's: parts, default all). Regenerate the
// expected outputs with -rewrite.
func TestDAG(t *testing.T) {
	datadriven.Walk(t, "testdata/dag", func(t *testing.T, path string) {
		h := newDAGHarness()
		rdd := func(d *datadriven.TestData) *RDD[dagRec] {
			if len(d.CmdArgs) == 0 {
				d.Fatalf(t, "%s: name an RDD", d.Cmd)
			}
			r := h.rdds[d.CmdArgs[0].Key]
			if r == nil {
				d.Fatalf(t, "%s: no RDD %q", d.Cmd, d.CmdArgs[0].Key)
			}
			return r
		}
		ints := func(d *datadriven.TestData, key string) ([]int, bool) {
			a, ok := d.Arg(key)
			if !ok {
				return nil, false
			}
			var out []int
			for _, v := range a.Vals {
				for _, f := range strings.Split(v, ",") {
					if f == "" {
						continue
					}
					n, err := strconv.Atoi(f)
					if err != nil {
						d.Fatalf(t, "%s=%s: %v", key, v, err)
					}
					out = append(out, n)
				}
			}
			return out, true
		}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var b strings.Builder
			switch d.Cmd {
			case "build":
				for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
					if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
						continue
					}
					r, err := h.build(line)
					if err != nil {
						return "error: " + err.Error() + "\n"
					}
					fmt.Fprintln(&b, describe(r.n))
				}
			case "stages":
				for _, st := range jobStages(h.s, h.s.resultStage(rdd(d).n)) {
					printStage(&b, h.s, st)
				}
			case "outputs", "lost":
				shuffle, _ := ints(d, "shuffle")
				if len(shuffle) != 1 {
					d.Fatalf(t, "%s: give shuffle=S", d.Cmd)
				}
				st := h.s.mapStages[shuffle[0]]
				if st == nil {
					return fmt.Sprintf("error: shuffle %d has no map stage yet (cut a job that reads it first)\n", shuffle[0])
				}
				if d.Cmd == "lost" {
					m, _ := ints(d, "map")
					if len(m) != 1 {
						d.Fatalf(t, "lost: give map=M")
					}
					h.s.lostOutput(shuffle[0], m[0])
					return printOutputs(h.s, shuffle[0])
				}
				outs := make([]*computepb.MapLocation, st.final.parts)
				have, _ := ints(d, "have")
				for _, m := range have {
					if m < 0 || m >= len(outs) {
						return fmt.Sprintf("error: shuffle %d has maps 0-%d, not %d\n", shuffle[0], len(outs)-1, m)
					}
					outs[m] = &computepb.MapLocation{Node: "node-a"}
				}
				h.s.outputs[shuffle[0]] = outs
				return printOutputs(h.s, shuffle[0])
			case "persist":
				level := MemorySer
				if a, ok := d.Arg("level"); ok {
					l, err := ParseStorageLevel(a.Vals[0])
					if err != nil {
						d.Fatalf(t, "%v", err)
					}
					level = l
				}
				rdd(d).Persist(level)
				return ""
			case "blocks":
				r := rdd(d)
				have, _ := ints(d, "have")
				for p := range r.n.parts {
					delete(h.s.blocks, blockKey{r.n.id, p})
				}
				for _, p := range have {
					h.s.blocks[blockKey{r.n.id, p}] = []string{"node-a"}
				}
				return fmt.Sprintf("%s: blocks held %s of %d; cached as a source: %v\n", label(r.n), intsString(have), r.n.parts, h.s.cached(r.n))
			case "missing":
				r := rdd(d)
				parts, ok := ints(d, "parts")
				if !ok {
					parts = allParts(r.n)
				}
				printMissing(&b, h.s, r.n, parts)
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
			}
			return b.String()
		})
	})
}

// TestDAGLongLineage cuts the stages of an iterative job, PageRank's
// shape, 1000 iterations deep: each iteration joins the links with the
// ranks (co-partitioned, so without a shuffle) and reduces by key (a
// shuffle). Graph building, stage cutting, planning and a job's walk over
// its stages must neither overflow the stack nor take long.
func TestDAGLongLineage(t *testing.T) {
	const iterations = 1000
	start := time.Now()
	h := newDAGHarness()
	links := ReduceByKey(Parallelize(h.c, []dagRec{}, 4), dagSum, 4)
	ranks := MapValues(links, dagInc)
	for range iterations {
		contribs := Map(Join(links, ranks, 0), dagFlatten)
		ranks = ReduceByKey(contribs, dagSum, 0)
	}
	if err := ranks.Err(); err != nil {
		t.Fatal(err)
	}
	built := time.Since(start)

	result := h.s.resultStage(ranks.n)
	stages := jobStages(h.s, result)
	// One map stage per shuffle: the links' and one per iteration; then
	// the result stage. No stage for the joins.
	if want := 1 + iterations + 1; len(stages) != want || len(h.s.mapStages) != want-1 {
		t.Fatalf("%d stages (%d map stages), want %d", len(stages), len(h.s.mapStages), want)
	}
	// Parents first: the links' stage, iteration 1, 2, ..., the result.
	linksStage := h.s.mapStages[links.n.deps[0].shuffle.id]
	if stages[0] != linksStage || stages[len(stages)-1] != result || !slices.Equal(result.parents, stages[len(stages)-2:len(stages)-1]) {
		t.Fatalf("stages %s, want the links' stage %d first and the result %d last, after its parent", stageIDs(stages), linksStage.id, result.id)
	}
	for i, st := range stages[1 : len(stages)-1] {
		parents := []*stage{linksStage}
		if i > 0 {
			parents = append(parents, stages[i])
		}
		if !slices.Equal(st.parents, parents) {
			t.Fatalf("stage %d (%s) has parents %s, want %s", st.id, st.name(), stageIDs(st.parents), stageIDs(parents))
		}
		plan, inputs := h.s.buildPlan(st.final, opSpec{})
		if i > 0 && len(inputs) != 2 || len(plan.Ops) == 0 {
			t.Fatalf("stage %d (%s): %d ops reading shuffles %v", st.id, st.name(), len(plan.Ops), inputs)
		}
	}

	// With every output registered, a job skips every map stage; ensure
	// walks them all (and reports each skipped, to no event log).
	for id, st := range h.s.mapStages {
		h.s.outputs[id] = make([]*computepb.MapLocation, st.final.parts)
		for m := range h.s.outputs[id] {
			h.s.outputs[id][m] = &computepb.MapLocation{Node: "node-a"}
		}
	}
	js := newJobState(0)
	if err := h.s.ensure(t.Context(), js, result.parents); err != nil {
		t.Fatal(err)
	}
	// Only the stages the job reads are looked at; their ancestors are
	// not needed.
	if len(js.reported) != len(result.parents) {
		t.Fatalf("ensure reported %d stages skipped, want %d", len(js.reported), len(result.parents))
	}
	t.Logf("%d iterations: built in %v, cut and walked in %v", iterations, built, time.Since(start)-built)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v", took)
	}
}
