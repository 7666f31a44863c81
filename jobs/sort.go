package jobs

import (
	"context"
	"time"

	"shoal/client"
)

// SortStats is what the sort job reports besides its output.
type SortStats struct {
	Records int64   // records written
	Bytes   int64   // bytes written: Records * SortRecordSize
	Seconds float64 // wall time of the whole job, sampling included
}

// Sort sorts the gensort records at input by their 10-byte keys into parts
// part files in output, whose concatenation in order is sorted
// (CheckSorted). It samples the keys to choose the range of each part
// (client.SortByKey), so the input is read twice; each reduce task holds
// its part in memory while it sorts it, so choose parts so that the input
// divided by parts fits in a worker's memory. parts <= 0 sorts into as
// many parts as the input has splits.
func Sort(ctx context.Context, c *client.Context, input, output string, parts int) (SortStats, error) {
	start := time.Now()
	records := client.GensortFile(c, input, parts).SetName("records")
	sorted, err := client.SortByKey(ctx, records, true, parts)
	if err != nil {
		return SortStats{}, err
	}
	written := c.NewAccumulator("records written")
	out := client.MapWith[client.KV[string, string], string](sorted.SetName("sorted"), joinRecord{Written: written})
	err = client.SaveAsRawFile(ctx, out, output)
	n := c.Value(written)
	return SortStats{Records: n, Bytes: n * SortRecordSize, Seconds: time.Since(start).Seconds()}, err
}

// joinRecord puts a gensort record back together from its key and the
// rest, and counts it.
type joinRecord struct {
	Written client.Accumulator
}

func (j joinRecord) Map(kv client.KV[string, string]) string {
	j.Written.Add(1)
	return kv.Key + kv.Value
}
