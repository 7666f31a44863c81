// Command hello is the program of the README's first screen: a word count
// in package client. `go run ./examples/hello IN.txt OUTDIR` starts a node
// service and two workers (copies of this binary), counts the words of
// IN.txt and writes word<TAB>count part files under OUTDIR.
package main

import (
	"context"
	"log"
	"os"
	"strings"

	"shoal/client"
)

func main() {
	client.Init() // first: a copy of this binary started as a worker or node service runs here
	ctx := context.Background()
	c, err := client.NewContext(ctx, client.Options{}) // one node service, two workers
	if err != nil {
		log.Fatal(err)
	}
	words := client.FlatMap(client.TextFile(c, os.Args[1], 4), split)
	counts := client.ReduceByKey(client.Map(words, one), add, 4)
	err = client.SaveAsTextFile(ctx, counts, os.Args[2])
	c.Close()
	if err != nil {
		log.Fatal(err)
	}
}

// Functions travel to the workers by name: they must be top-level.
func split(line string, emit func(string)) {
	for _, w := range strings.Fields(line) {
		emit(w)
	}
}
func one(w string) client.KV[string, int] { return client.KV[string, int]{Key: w, Value: 1} }
func add(a, b int) int                    { return a + b }
