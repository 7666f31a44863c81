// Command wordfreq counts the words of a text file or directory with
// shoal, as a user's own program would: it imports the client package and
// is its own cluster.
//
//	go build -o wordfreq ./examples/wordfreq
//	./wordfreq --input book.txt --output counts --nodes 2 --workers-per-node 2 --top 10
//
// It writes every word's count as part files in --output (word<TAB>count,
// one per line) and prints the --top most frequent words. Words are
// lowercased and stripped of leading and trailing punctuation; words
// shorter than --min-length are counted together under "(short)".
//
// # How it distributes itself
//
// NewContext starts a local cluster of --nodes node services, each with
// --workers-per-node workers, all of them child processes running this
// same binary: a node service is `wordfreq node --listen ... --dir ...`
// with SHOAL_ROLE=node in its environment, a worker is wordfreq started
// with SHOAL_ROLE=worker. client.Init, the first call in main, reads that
// role: it runs the node service or the worker and exits, so only the
// driver (no role) goes on to parse the flags and build the job. Init must
// therefore come before anything else main does.
//
// The functions given to the transformations reach the workers by name,
// which is the same in every copy of the binary: they are top-level
// functions (splitWords, add) or struct values whose exported fields are
// their parameters (countWord's MinLength travels with the tasks as JSON).
// A function literal would lose what it captured, so shoal rejects it.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"shoal/client"
)

func main() {
	client.Init() // in a node service or worker copy of this binary, runs it and exits

	input := flag.String("input", "", "text `FILE` or directory to count (required)")
	output := flag.String("output", "", "`DIR` for the counts' part files; must not exist or be empty (required)")
	nodes := flag.Int("nodes", 2, "node services (simulated machines) to start")
	workers := flag.Int("workers-per-node", 2, "workers per node service")
	top := flag.Int("top", 10, "print the `N` most frequent words")
	minLength := flag.Int("min-length", 1, "count words shorter than `N` characters together, as \"(short)\"")
	flag.Parse()
	if *input == "" || *output == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: wordfreq --input FILE --output DIR [flags]")
		flag.PrintDefaults()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *input, *output, *nodes, *workers, *top, *minLength); err != nil {
		fmt.Fprintf(os.Stderr, "wordfreq: %v\n", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, input, output string, nodes, workers, top, minLength int) error {
	c, err := client.NewContext(ctx, client.Options{Nodes: nodes, WorkersPerNode: workers})
	if err != nil {
		return err
	}
	defer c.Close()

	words := client.FlatMap(client.TextFile(c, input, nodes*workers), splitWords)
	pairs := client.MapWith[string, client.KV[string, int64]](words, countWord{MinLength: minLength})
	counts := client.ReduceByKey(pairs, add, 0).SetName("counts")
	if err := client.SaveAsTextFile(ctx, counts, output); err != nil {
		return err
	}

	// A second job on the same RDD: its shuffle is written already, so
	// only the reduce side runs.
	all, err := client.Collect(ctx, counts)
	if err != nil {
		return err
	}
	slices.SortFunc(all, func(a, b client.KV[string, int64]) int {
		return cmp.Or(cmp.Compare(b.Value, a.Value), cmp.Compare(a.Key, b.Key))
	})
	for _, kv := range all[:min(top, len(all))] {
		fmt.Printf("%s\t%d\n", kv.Key, kv.Value)
	}
	return c.Close()
}

// splitWords emits the words of a line, lowercased, without the
// punctuation around them ("Hello," is "hello"; "don't" stays whole).
func splitWords(line string, emit func(string)) {
	for _, f := range strings.Fields(line) {
		if w := strings.TrimFunc(strings.ToLower(f), isPunct); w != "" {
			emit(w)
		}
	}
}

func isPunct(r rune) bool { return unicode.IsPunct(r) || unicode.IsSymbol(r) }

// shortWords is the key under which countWord counts short words; no
// word of splitWords can be it, as it ends in punctuation.
const shortWords = "(short)"

// countWord pairs a word with a count of 1. Its exported field is its
// parameter: the value travels to the workers with each task.
type countWord struct {
	MinLength int // words of fewer characters are counted as shortWords
}

func (c countWord) Map(w string) client.KV[string, int64] {
	if utf8.RuneCountInString(w) < c.MinLength {
		w = shortWords
	}
	return client.KV[string, int64]{Key: w, Value: 1}
}

func add(a, b int64) int64 { return a + b }
