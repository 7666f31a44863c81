package main

import (
	"context"
	"os"

	"shoal/shuffleservice"
)

// runNode runs a node service until ctx is cancelled (SIGINT, SIGTERM):
// shuffleservice.RunNodeCommand, which user programs serve too (through
// client.Init), so its flags and its stdout line are the same everywhere.
func runNode(ctx context.Context, args []string) error {
	return shuffleservice.RunNodeCommand(ctx, args, os.Stdout, os.Stderr)
}
