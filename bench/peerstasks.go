package bench

import (
	"context"
	"fmt"
	"time"

	"shoal/client"
)

// TasksConfig is `shoal bench tasks`: the cost of a task. Wide: Records
// records (i, 1) made by Range in Maps partitions, keyed as RunReduce keys
// them (onto Records keys), summed by ReduceByKey into Reduces partitions,
// and the keys counted: Maps + Reduces tasks. Narrow: the same records in
// Maps partitions, mapped and counted in one stage: Maps tasks.
type TasksConfig struct {
	Maps, Reduces int
	Records       int64
	Narrow        bool
	// Options configure the local cluster (the embedded default when
	// zero); starting it is not timed.
	Options client.Options
}

// TasksResult is what `shoal bench tasks --json` prints.
type TasksResult struct {
	Kind    string  `json:"kind"` // wide or narrow
	Maps    int     `json:"maps"`
	Reduces int     `json:"reduces,omitempty"`
	Records int64   `json:"records"`
	Tasks   int     `json:"tasks"`
	Seconds float64 `json:"seconds"` // the job, from its submission to its answer
	// MsPerTask is Seconds over Tasks, in milliseconds.
	MsPerTask float64 `json:"ms_per_task"`
	// Count is the job's answer, Want what it must be (Records: every key
	// is distinct, and the narrow job counts every record).
	Count int64 `json:"count"`
	Want  int64 `json:"want"`
}

// RunTasks runs the job once and fails if its answer is wrong.
func RunTasks(ctx context.Context, cfg TasksConfig) (*TasksResult, error) {
	if cfg.Maps <= 0 || cfg.Records <= 0 || !cfg.Narrow && cfg.Reduces <= 0 {
		return nil, fmt.Errorf("bench: tasks needs positive maps, records and (wide) reduces")
	}
	c, err := client.NewContext(ctx, cfg.Options)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res := &TasksResult{Kind: "wide", Maps: cfg.Maps, Reduces: cfg.Reduces, Records: cfg.Records, Want: cfg.Records}
	// keyPrime is odd and not a multiple of 5, so i*keyPrime mod Records
	// is a bijection when Records is a product of 2s and 5s; Want is
	// computed, not assumed, for other counts.
	res.Want = distinctKeys(cfg.Records)
	pairs := client.MapWith[int64, client.KV[int64, int64]](client.Range(c, 0, cfg.Records, cfg.Maps), keyed{cfg.Records})
	start := time.Now()
	if cfg.Narrow {
		res.Kind, res.Reduces, res.Want = "narrow", 0, cfg.Records
		res.Count, err = client.Count(ctx, pairs)
		res.Tasks = cfg.Maps
	} else {
		res.Count, err = client.Count(ctx, client.ReduceByKey(pairs, sum, cfg.Reduces))
		res.Tasks = cfg.Maps + cfg.Reduces
	}
	if err != nil {
		return nil, err
	}
	res.Seconds = time.Since(start).Seconds()
	res.MsPerTask = 1000 * res.Seconds / float64(res.Tasks)
	if res.Count != res.Want {
		return res, fmt.Errorf("bench: tasks counted %d, want %d", res.Count, res.Want)
	}
	return res, nil
}

// distinctKeys is the number of distinct keys i*keyPrime mod n for i in
// [0, n).
func distinctKeys(n int64) int64 {
	seen := make(map[int64]struct{}, n)
	k := keyed{n}
	for i := range n {
		seen[k.Map(i).Key] = struct{}{}
	}
	return int64(len(seen))
}
