package main

import (
	"context"
	"errors"

	"shoal/client"
)

// runSortJob runs the sort job; it lands with the sort job itself.
func runSortJob(ctx context.Context, sc *client.Context, c runConfig) error {
	return errors.New("sort: not built yet")
}
