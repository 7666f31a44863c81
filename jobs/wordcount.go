package jobs

import (
	"context"
	"strconv"
	"strings"

	"shoal/client"
)

// WordCount counts the words of the text at input (strings.Fields
// splits lines) and writes "word<TAB>count" part files to output.
func WordCount(ctx context.Context, c *client.Context, input, output string, parts int) error {
	words := client.FlatMap(client.TextFile(c, input, parts), splitFields).SetName("words")
	counts := client.ReduceByKey(client.Map(words, countOne), addCounts, parts).SetName("counts")
	return client.SaveAsTextFile(ctx, client.Map(counts, formatCount), output)
}

func splitFields(line string, emit func(string)) {
	for _, w := range strings.Fields(line) {
		emit(w)
	}
}

func countOne(w string) client.KV[string, int64] { return client.KV[string, int64]{Key: w, Value: 1} }

func addCounts(a, b int64) int64 { return a + b }

func formatCount(kv client.KV[string, int64]) string {
	return kv.Key + "\t" + strconv.FormatInt(kv.Value, 10)
}
