package jobs

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"shoal/checkpoint"
	"shoal/client"
)

// PageRankResult is what the pagerank job reports besides its output.
type PageRankResult struct {
	Pages int64
	Top   []client.KV[string, float64] // the highest ranks, best first
	// ResumedFrom is the iteration whose checkpoint the run started from
	// (Resume), 0 if it started from the input; ResumedRun the run that
	// wrote it, APP/RUN (checkpoint.RunID).
	ResumedFrom int
	ResumedRun  string
	// Planning is the driver's planning time of each iteration run
	// (client.Context.PlanTime), first to last: a lineage that grows with
	// the iterations must not make it grow.
	Planning []time.Duration
}

// PageRankOptions configure PageRankWith.
type PageRankOptions struct {
	Iterations, Partitions, Top int
	// CheckpointEvery, if positive, checkpoints ranks[i] every that many
	// iterations (the context needs a CheckpointDir): the lineage of a
	// later iteration, and what a lost node costs, reach back at most that
	// far.
	CheckpointEvery int
	// Resume starts from the newest complete checkpoint of a pagerank of
	// this input (client.Context.InputIdentity) in as many partitions, of any run
	// in the store, at an iteration no later than Iterations, if there is
	// one.
	Resume bool
	// Resumed, if set, is called once the checkpoint to resume from is
	// chosen, before the first iteration: with it, or with a zero
	// Manifest if there is none.
	Resumed func(m checkpoint.Manifest)
	// BeforeIteration, if set, is called before iteration i's first job
	// (experiments inject faults there).
	BeforeIteration func(i int)
}

// PageRank ranks the pages of the edge list at input (RefPageRank defines
// the input and the computation) for iterations steps and writes
// "page<TAB>rank" part files to output.
func PageRank(ctx context.Context, c *client.Context, input, output string, iterations, parts, top int) (*PageRankResult, error) {
	return PageRankWith(ctx, c, input, output, PageRankOptions{Iterations: iterations, Partitions: parts, Top: top})
}

// PageRankWith is PageRank with checkpoints and resumption.
//
// links (page → its out-links) and ranks are hash-partitioned alike, so
// joining them each iteration is narrow: only the contributions are
// shuffled (the RDD paper's optimisation). The rank held by dangling pages
// is summed by a small job each iteration (a Fold: 0 when no page is
// dangling) and spread over all pages. RDDs are named by iteration:
// contribs[i], ranks[i]; checkpoints pagerank-ranks-NNNNNN in the run's
// part of the store, with the iteration as their Seq, job "pagerank" and
// the input's identity.
func PageRankWith(ctx context.Context, c *client.Context, input, output string, o PageRankOptions) (*PageRankResult, error) {
	parts := o.Partitions
	var inputID string
	if o.CheckpointEvery > 0 || o.Resume {
		var err error
		if inputID, err = c.InputIdentity(ctx, input); err != nil {
			return nil, fmt.Errorf("jobs: pagerank: %w", err)
		}
	}
	edges := client.FlatMap(client.TextFile(c, input, parts), parseEdge).SetName("edges")
	// Every iteration reads links and pages: they are kept on two nodes,
	// so that losing one does not send the recomputation of an iteration
	// back to the input.
	links := client.GroupByKey(edges, parts).SetName("links").Persist(client.MemoryAndDisk2)
	pages := client.ReduceByKey(client.FlatMap(edges, edgeEnds), keepOne, parts).SetName("pages").Persist(client.MemoryAndDisk2)
	res := &PageRankResult{}
	var ranks *client.RDD[client.KV[string, float64]]
	var err error
	if o.Resume {
		var m checkpoint.Manifest
		if ranks, m, err = resumeRanks(ctx, c, inputID, parts, o.Iterations); err != nil {
			return nil, err
		}
		if ranks != nil {
			res.ResumedRun = m.Ref().RunID.String()
			res.Pages, _ = strconv.ParseInt(m.Meta["pages"], 10, 64)
			res.ResumedFrom, _ = strconv.Atoi(m.Meta["iteration"])
		}
		if o.Resumed != nil {
			o.Resumed(m)
		}
	}
	if ranks == nil {
		if res.Pages, err = client.Count(ctx, pages); err != nil {
			return nil, err
		}
		if res.Pages == 0 {
			return nil, fmt.Errorf("jobs: pagerank: %s has no edges", input)
		}
		ranks = client.MapValuesWith[string, bool, float64](pages, constRank{Rank: 1 / float64(res.Pages)}).SetName("ranks[0]")
	}
	n := res.Pages
	for i := res.ResumedFrom + 1; i <= o.Iterations; i++ {
		if o.BeforeIteration != nil {
			o.BeforeIteration(i)
		}
		planned := c.PlanTime()
		joined := client.Cogroup(links, ranks, parts)
		dangling, err := client.Fold(ctx, client.FlatMap(joined, danglingRank), 0, addFloat)
		if err != nil {
			return nil, fmt.Errorf("jobs: pagerank iteration %d: %w", i, err)
		}
		contribs := client.FlatMap(joined, contributions).SetName(fmt.Sprintf("contribs[%d]", i))
		sums := client.ReduceByKey(contribs, addFloat, parts)
		ranks = client.MapValuesWith[string, client.Pair[[]bool, []float64], float64](
			client.Cogroup(pages, sums, parts),
			newRank{N: float64(n), Dangling: dangling},
		).SetName(fmt.Sprintf("ranks[%d]", i))
		res.Planning = append(res.Planning, c.PlanTime()-planned)
		if o.CheckpointEvery > 0 && i%o.CheckpointEvery == 0 && i < o.Iterations {
			ranks.CheckpointAs(client.CheckpointInfo{
				Name: fmt.Sprintf("pagerank-ranks-%06d", i), Seq: int64(i), Job: "pagerank", Input: inputID,
				Meta: map[string]string{
					"partitions": strconv.Itoa(parts), "pages": strconv.FormatInt(n, 10), "iteration": strconv.Itoa(i),
				},
			})
		}
	}
	if o.Top > 0 {
		best, err := client.Collect(ctx, client.MapPartitions(ranks, top10))
		if err != nil {
			return nil, err
		}
		slices.SortFunc(best, byRankDesc)
		res.Top = best[:min(o.Top, len(best))]
	}
	if err := client.SaveAsTextFile(ctx, client.Map(ranks, formatRank), output); err != nil {
		return nil, err
	}
	if o.CheckpointEvery > 0 {
		// Checkpoints through the nodes complete after their jobs: the
		// run ends with every one of them complete in the store.
		if err := c.WaitCheckpoints(ctx); err != nil {
			return nil, fmt.Errorf("jobs: pagerank: %w", err)
		}
	}
	return res, nil
}

// resumeRanks returns the ranks of the newest complete checkpoint (by
// creation, across runs) of a pagerank of the input identified by input
// in parts partitions at an iteration no later than maxIter, and its
// manifest; nil ranks if there is none.
func resumeRanks(ctx context.Context, c *client.Context, input string, parts, maxIter int) (*client.RDD[client.KV[string, float64]], checkpoint.Manifest, error) {
	ms, err := c.ListCheckpoints(ctx)
	if err != nil {
		return nil, checkpoint.Manifest{}, err
	}
	for _, m := range slices.Backward(ms) {
		if m.Job != "pagerank" || m.Input != input || m.Meta["partitions"] != strconv.Itoa(parts) {
			continue
		}
		pages, err1 := strconv.ParseInt(m.Meta["pages"], 10, 64)
		it, err2 := strconv.Atoi(m.Meta["iteration"])
		if err := errors.Join(err1, err2); err != nil {
			return nil, checkpoint.Manifest{}, fmt.Errorf("jobs: pagerank: checkpoint %s: %w", m.Ref(), err)
		}
		if it > maxIter || pages <= 0 {
			continue
		}
		ranks, err := client.ReadCheckpoint[client.KV[string, float64]](ctx, c, m.Ref().String())
		if err != nil {
			return nil, checkpoint.Manifest{}, err
		}
		ranks.SetName(fmt.Sprintf("ranks[%d]", it))
		return ranks, m, nil
	}
	return nil, checkpoint.Manifest{}, nil
}

// parseEdge reads "src dst"; blank lines and '#' comments are skipped, any
// other line fails the job.
func parseEdge(line string, emit func(client.KV[string, string])) {
	f := strings.Fields(line)
	if len(f) == 0 || strings.HasPrefix(f[0], "#") {
		return
	}
	if len(f) != 2 {
		panic(fmt.Errorf("jobs: pagerank input line %s has %d fields, want 2 (src dst)", quoteShort(line), len(f)))
	}
	emit(client.KV[string, string]{Key: f[0], Value: f[1]})
}

func edgeEnds(e client.KV[string, string], emit func(client.KV[string, bool])) {
	emit(client.KV[string, bool]{Key: e.Key, Value: true})
	emit(client.KV[string, bool]{Key: e.Value, Value: true})
}

func keepOne(a, _ bool) bool { return a }

func addFloat(a, b float64) float64 { return a + b }

type constRank struct{ Rank float64 }

func (c constRank) MapValue(bool) float64 { return c.Rank }

// joinedPage is a page with its out-links (none for a dangling page) and
// its rank: Cogroup(links, ranks). Every page has a rank.
type joinedPage = client.KV[string, client.Pair[[][]string, []float64]]

// linksAndRank returns the page's out-links and rank.
func linksAndRank(p joinedPage) (links []string, rank float64) {
	for _, l := range p.Value.First {
		links = append(links, l...)
	}
	for _, r := range p.Value.Second {
		rank += r
	}
	return links, rank
}

func danglingRank(p joinedPage, emit func(float64)) {
	if links, rank := linksAndRank(p); len(links) == 0 {
		emit(rank)
	}
}

func contributions(p joinedPage, emit func(client.KV[string, float64])) {
	links, rank := linksAndRank(p)
	for _, dst := range links {
		emit(client.KV[string, float64]{Key: dst, Value: rank / float64(len(links))})
	}
}

// newRank is one step of PageRank for a page given the sum of its
// incoming contributions.
type newRank struct {
	N, Dangling float64
}

func (r newRank) MapValue(g client.Pair[[]bool, []float64]) float64 {
	sum := 0.0
	for _, s := range g.Second {
		sum += s
	}
	return (1-PageRankDamping)/r.N + PageRankDamping*(sum+r.Dangling/r.N)
}

func formatRank(kv client.KV[string, float64]) string {
	return kv.Key + "\t" + strconv.FormatFloat(kv.Value, 'g', -1, 64)
}

func byRankDesc(a, b client.KV[string, float64]) int {
	switch {
	case a.Value > b.Value:
		return -1
	case a.Value < b.Value:
		return 1
	}
	return strings.Compare(a.Key, b.Key)
}

// top10 keeps a partition's ten highest ranks.
func top10(in iter.Seq[client.KV[string, float64]]) iter.Seq[client.KV[string, float64]] {
	var best []client.KV[string, float64]
	for kv := range in {
		best = append(best, kv)
		if len(best) > 64 {
			slices.SortFunc(best, byRankDesc)
			best = best[:10]
		}
	}
	slices.SortFunc(best, byRankDesc)
	return slices.Values(best[:min(10, len(best))])
}

// quoteShort quotes s for an error message, cut to its first 100 bytes
// (an input line may be megabytes long).
func quoteShort(s string) string {
	const limit = 100
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:limit], len(s))
}
