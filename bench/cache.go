package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"shoal/client"
	"shoal/jobs"
)

// CacheConfig is the block store's benchmark: the ecommerce job's
// purchases counted by recomputing them from the CSV, against counting
// them from their cached blocks.
type CacheConfig struct {
	Rows       int64 // rows of generated ecommerce CSV
	Partitions int
	Runs       int                 // timed counts of each kind
	Level      client.StorageLevel // default MemorySer
	// Dir holds the generated CSV; default a temporary directory.
	Dir     string
	Options client.Options
}

// CacheResult holds every timed run and their medians.
type CacheResult struct {
	Rows             int64     `json:"rows"`
	InputBytes       int64     `json:"input_bytes"`
	Purchases        int64     `json:"purchases"`
	Partitions       int       `json:"partitions"`
	Level            string    `json:"level"`
	RecomputeSeconds []float64 `json:"recompute_seconds"`
	CachedSeconds    []float64 `json:"cached_seconds"`
	MedianRecompute  float64   `json:"median_recompute_seconds"`
	MedianCached     float64   `json:"median_cached_seconds"`
	Speedup          float64   `json:"speedup"` // median recompute / median cached
}

// RunCache generates the CSV, persists the purchases (the first count,
// not timed, computes and stores them), then times Runs counts of each
// kind, alternating, on the same cluster.
func RunCache(ctx context.Context, cfg CacheConfig) (*CacheResult, error) {
	if cfg.Rows <= 0 || cfg.Partitions <= 0 || cfg.Runs <= 0 {
		return nil, fmt.Errorf("bench: cache needs positive rows, partitions and runs")
	}
	if cfg.Level == 0 {
		cfg.Level = client.MemorySer
	}
	dir, done, err := workDir(cfg.Dir, "cache")
	if err != nil {
		return nil, err
	}
	defer done()
	input := filepath.Join(dir, "events.csv")
	size, err := generate(input, cfg.Rows)
	if err != nil {
		return nil, err
	}
	c, err := client.NewContext(ctx, cfg.Options)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res := &CacheResult{Rows: cfg.Rows, InputBytes: size, Partitions: cfg.Partitions, Level: cfg.Level.String()}

	bad := c.NewAccumulator("bad rows")
	fresh := jobs.Purchases(c, input, cfg.Partitions, bad, false)
	cached := jobs.Purchases(c, input, cfg.Partitions, bad, false).Persist(cfg.Level)
	if res.Purchases, err = client.Count(ctx, cached); err != nil {
		return nil, err
	}
	count := func(r *client.RDD[client.KV[string, jobs.SessionAgg]]) (float64, error) {
		start := time.Now()
		n, err := client.Count(ctx, r)
		if err == nil && n != res.Purchases {
			err = fmt.Errorf("bench: counted %d purchases, the first count %d", n, res.Purchases)
		}
		return time.Since(start).Seconds(), err
	}
	for range cfg.Runs {
		s, err := count(fresh)
		if err != nil {
			return nil, err
		}
		res.RecomputeSeconds = append(res.RecomputeSeconds, s)
		if s, err = count(cached); err != nil {
			return nil, err
		}
		res.CachedSeconds = append(res.CachedSeconds, s)
	}
	res.MedianRecompute, res.MedianCached = median(res.RecomputeSeconds), median(res.CachedSeconds)
	res.Speedup = res.MedianRecompute / res.MedianCached
	return res, nil
}

// generate writes rows of ecommerce CSV to path and returns its size.
func generate(path string, rows int64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	if err := jobs.GenEcommerce(f, rows, 1); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}
