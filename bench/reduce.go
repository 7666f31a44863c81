package bench

import (
	"context"
	"fmt"
	"time"

	"shoal/client"
)

// ReduceConfig is one run of the reduceByKey benchmark: Records records
// (i, 1) for i in [0, Records), keyed by i*prime mod Keys, summed by key.
type ReduceConfig struct {
	Records, Keys int64
	Partitions    int
	// Options configure the engine's local cluster (the embedded default
	// when zero); Binary defaults to the running executable.
	Options client.Options
}

// ReduceResult compares the engine with one goroutine and a Go map doing
// the same aggregation in one process.
type ReduceResult struct {
	Records        int64   `json:"records"`
	Keys           int64   `json:"keys"`
	Partitions     int     `json:"partitions"`
	EngineSeconds  float64 `json:"engine_seconds"`
	MapSeconds     float64 `json:"go_map_seconds"`
	Ratio          float64 `json:"ratio"` // engine / Go map
	EngineDistinct int64   `json:"engine_distinct"`
	MapDistinct    int64   `json:"go_map_distinct"`
}

// keyPrime spreads the keys over [0, Keys) as i runs.
const keyPrime = 2_654_435_761

type keyed struct{ Keys int64 }

func (k keyed) Map(i int64) client.KV[int64, int64] {
	return client.KV[int64, int64]{Key: i * keyPrime % k.Keys, Value: 1}
}

func sum(a, b int64) int64 { return a + b }

// RunReduce times the engine (records made by Range on the workers,
// ReduceByKey with map-side combine, Count of the keys) against a
// single-goroutine map aggregation of the same records. Starting the
// local cluster is not timed.
func RunReduce(ctx context.Context, cfg ReduceConfig) (*ReduceResult, error) {
	if cfg.Records <= 0 || cfg.Keys <= 0 || cfg.Partitions <= 0 {
		return nil, fmt.Errorf("bench: reduce needs positive records, keys and partitions")
	}
	c, err := client.NewContext(ctx, cfg.Options)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res := &ReduceResult{Records: cfg.Records, Keys: cfg.Keys, Partitions: cfg.Partitions}

	start := time.Now()
	pairs := client.MapWith[int64, client.KV[int64, int64]](client.Range(c, 0, cfg.Records, cfg.Partitions), keyed{cfg.Keys})
	n, err := client.Count(ctx, client.ReduceByKey(pairs, sum, cfg.Partitions))
	if err != nil {
		return nil, err
	}
	res.EngineSeconds, res.EngineDistinct = time.Since(start).Seconds(), n

	start = time.Now()
	m := make(map[int64]int64)
	k := keyed{cfg.Keys}
	for i := range cfg.Records {
		kv := k.Map(i)
		m[kv.Key] += kv.Value
	}
	res.MapSeconds, res.MapDistinct = time.Since(start).Seconds(), int64(len(m))
	res.Ratio = res.EngineSeconds / res.MapSeconds
	if res.EngineDistinct != res.MapDistinct {
		return res, fmt.Errorf("bench: engine found %d keys, the Go map %d", res.EngineDistinct, res.MapDistinct)
	}
	return res, nil
}
