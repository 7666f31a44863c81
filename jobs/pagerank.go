package jobs

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"

	"shoal/client"
)

// PageRankResult is what the pagerank job reports besides its output.
type PageRankResult struct {
	Pages int64
	Top   []client.KV[string, float64] // the highest ranks, best first
}

// PageRank ranks the pages of the edge list at input (RefPageRank defines
// the input and the computation) for iterations steps and writes
// "page<TAB>rank" part files to output.
//
// links (page → its out-links) and ranks are hash-partitioned alike, so
// joining them each iteration is narrow: only the contributions are
// shuffled (the RDD paper's optimisation). The rank held by dangling pages
// is summed by a small job each iteration and spread over all pages.
// RDDs are named by iteration: contribs[i], ranks[i].
func PageRank(ctx context.Context, c *client.Context, input, output string, iterations, parts, top int) (*PageRankResult, error) {
	edges := client.FlatMap(client.TextFile(c, input, parts), parseEdge).SetName("edges")
	links := client.GroupByKey(edges, parts).SetName("links")
	pages := client.ReduceByKey(client.FlatMap(edges, edgeEnds), keepOne, parts).SetName("pages")
	n, err := client.Count(ctx, pages)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("jobs: pagerank: %s has no edges", input)
	}
	ranks := client.MapValuesWith[string, bool, float64](pages, constRank{Rank: 1 / float64(n)}).SetName("ranks[0]")
	for i := 1; i <= iterations; i++ {
		joined := client.Cogroup(links, ranks, parts)
		dangling, err := client.Reduce(ctx, client.FlatMap(joined, danglingRank), addFloat)
		if err != nil {
			return nil, fmt.Errorf("jobs: pagerank iteration %d: %w", i, err)
		}
		contribs := client.FlatMap(joined, contributions).SetName(fmt.Sprintf("contribs[%d]", i))
		sums := client.ReduceByKey(contribs, addFloat, parts)
		ranks = client.MapValuesWith[string, client.Pair[[]bool, []float64], float64](
			client.Cogroup(pages, sums, parts),
			newRank{N: float64(n), Dangling: dangling},
		).SetName(fmt.Sprintf("ranks[%d]", i))
	}
	res := &PageRankResult{Pages: n}
	if top > 0 {
		best, err := client.Collect(ctx, client.MapPartitions(ranks, top10))
		if err != nil {
			return nil, err
		}
		slices.SortFunc(best, byRankDesc)
		res.Top = best[:min(top, len(best))]
	}
	return res, client.SaveAsTextFile(ctx, client.Map(ranks, formatRank), output)
}

// parseEdge reads "src dst"; blank lines and '#' comments are skipped, any
// other line fails the job.
func parseEdge(line string, emit func(client.KV[string, string])) {
	f := strings.Fields(line)
	if len(f) == 0 || strings.HasPrefix(f[0], "#") {
		return
	}
	if len(f) != 2 {
		panic(fmt.Errorf("jobs: pagerank input line %q has %d fields, want 2 (src dst)", line, len(f)))
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
