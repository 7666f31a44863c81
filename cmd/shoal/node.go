package main

import (
	"context"
	"os"
	"strconv"

	"shoal/internal/cli"
)

// runNode runs a node service until ctx is cancelled (SIGINT, SIGTERM):
// cli.RunNode, which user programs serve too (through client.Init), so
// its flags and its stdout line are the same everywhere.
func runNode(ctx context.Context, args []string) error {
	stopProfile, err := profileIfAsked("node-" + strconv.Itoa(os.Getpid()))
	if err != nil {
		return err
	}
	defer stopProfile()
	return cli.RunNode(ctx, args, os.Stdout, os.Stderr)
}
