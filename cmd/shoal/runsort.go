package main

import (
	"context"
	"fmt"
	"os"

	"shoal/client"
	"shoal/jobs"
)

// runSortJob runs the sort job and reports its size and speed.
func runSortJob(ctx context.Context, sc *client.Context, c runConfig) error {
	st, err := jobs.Sort(ctx, sc, c.input, c.output, c.partitions)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "sort: %d records (%.1f MB) in %.2fs, %.0f MB/s\n",
		st.Records, float64(st.Bytes)/1e6, st.Seconds, float64(st.Bytes)/1e6/st.Seconds)
	return nil
}
