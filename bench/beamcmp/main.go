// Command beamcmp times the Apache Beam Go SDK's direct runner on the job
// that `shoal bench reduce` times: Records records (i, 1) for i in
// [0, Records), keyed by i*2654435761 mod Keys, summed by key, and the keys
// counted.
//
// It lives in its own module so that the SDK and its dependencies never
// enter shoal's go.mod. The pipeline is
//
//	Create(seed chunks) → ParDo(expand each chunk to its integers)
//	  → ParDo(key i by i*prime mod Keys, value 1) → stats.SumPerKey
//	  → stats.CountElms → ParDo(check the count, publish it as a gauge)
//
// so the driver holds only a handful of seeds, never the records. The direct
// runner executes it in this process, as one bundle on one goroutine; its
// GroupByKey buffers every record (it does not lift the combiner), which is
// part of what is measured.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/metrics"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/direct"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"
)

// keyPrime spreads the keys over [0, Keys) as i runs; the same constant as
// shoal's bench/reduce.go.
const keyPrime = 2_654_435_761

// seeds is the number of chunks the range is cut into. The direct runner
// runs one bundle on one goroutine, so it only bounds what Create carries.
const seeds = 8

// metricNamespace and metricDistinct name the gauge the check publishes.
const (
	metricNamespace = "beamcmp"
	metricDistinct  = "distinct"
)

func init() {
	register.DoFn2x0[int64, func(int64)](&rangeFn{})
	register.Emitter1[int64]()
	register.DoFn1x2[int64, int64, int64](&keyFn{})
	register.DoFn2x1[context.Context, int, error](&checkFn{})
}

// rangeFn expands seed c into the integers of its chunk of [0, Records).
type rangeFn struct{ Records, Seeds int64 }

func (f *rangeFn) ProcessElement(c int64, emit func(int64)) {
	for i := c * f.Records / f.Seeds; i < (c+1)*f.Records/f.Seeds; i++ {
		emit(i)
	}
}

// keyFn makes the record (i*keyPrime mod Keys, 1).
type keyFn struct{ Keys int64 }

func (f *keyFn) ProcessElement(i int64) (int64, int64) {
	return i * keyPrime % f.Keys, 1
}

// checkFn fails the pipeline unless the key count is Want, and publishes
// the count as the beamcmp/distinct gauge.
type checkFn struct{ Want int64 }

func (f *checkFn) ProcessElement(ctx context.Context, n int) error {
	beam.NewGauge(metricNamespace, metricDistinct).Set(ctx, int64(n))
	if int64(n) != f.Want {
		return fmt.Errorf("beamcmp: the pipeline found %d keys, want %d", n, f.Want)
	}
	return nil
}

// config holds the command's flags.
type config struct {
	records, keys int64
	json, verbose bool
}

// result is what --json prints.
type result struct {
	Runner   string  `json:"runner"`
	Records  int64   `json:"records"`
	Keys     int64   `json:"keys"`
	Seconds  float64 `json:"seconds"`
	Distinct int64   `json:"distinct"`
}

func main() {
	var c config
	// The SDK registers its own flags on flag.CommandLine, so ours go there too.
	flag.Int64Var(&c.records, "records", 10_000_000, "records (i, 1)")
	flag.Int64Var(&c.keys, "keys", 1_000_000, "distinct keys")
	flag.BoolVar(&c.json, "json", false, "print one JSON object")
	flag.BoolVar(&c.verbose, "v", false, "show the SDK's info logs (the pipeline and the execution plan)")
	flag.Parse()
	if err := run(context.Background(), c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	if c.records <= 0 || c.keys <= 0 {
		return errors.New("beamcmp: --records and --keys must be positive")
	}
	if c.records > math.MaxInt64/keyPrime {
		return fmt.Errorf("beamcmp: --records %d overflows i*%d (at most %d)", c.records, keyPrime, math.MaxInt64/keyPrime)
	}
	if !c.verbose {
		log.SetLogger(&log.Standard{Level: log.SevWarn})
	}
	beam.Init()
	want := distinctKeys(c.records, c.keys)

	p, s := beam.NewPipelineWithRoot()
	seedList := make([]int64, seeds)
	for i := range seedList {
		seedList[i] = int64(i)
	}
	ints := beam.ParDo(s, &rangeFn{Records: c.records, Seeds: seeds}, beam.CreateList(s, seedList))
	pairs := beam.ParDo(s, &keyFn{Keys: c.keys}, ints)
	count := stats.CountElms(s, stats.SumPerKey(s, pairs))
	beam.ParDo0(s, &checkFn{Want: want}, count)

	start := time.Now()
	pr, err := direct.Execute(ctx, p)
	if err != nil {
		return err
	}
	res := result{Runner: "direct", Records: c.records, Keys: c.keys, Seconds: time.Since(start).Seconds()}
	gauges := pr.Metrics().Query(func(r metrics.SingleResult) bool {
		return r.Namespace() == metricNamespace && r.Name() == metricDistinct
	}).Gauges()
	if len(gauges) != 1 {
		return fmt.Errorf("beamcmp: the runner reported %d %s/%s gauges, want 1", len(gauges), metricNamespace, metricDistinct)
	}
	res.Distinct = gauges[0].Result().Value

	if c.json {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("reduceByKey of %d records onto %d keys\n", res.Records, res.Keys)
	fmt.Printf("  Beam Go SDK, direct runner   %.2fs   (%d keys)\n", res.Seconds, res.Distinct)
	return nil
}

// distinctKeys is the exact number of distinct i*keyPrime mod keys for i in
// [0, records). The sequence repeats with a period dividing keys, so the
// first min(records, keys) values hold every key there is.
func distinctKeys(records, keys int64) int64 {
	n := min(records, keys)
	seen := make([]bool, keys)
	var d int64
	for i := range n {
		if k := i * keyPrime % keys; !seen[k] {
			seen[k] = true
			d++
		}
	}
	return d
}
