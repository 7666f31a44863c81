package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"shoal/compute"
)

// runWorkerIfAsked runs this process as a worker when its environment
// says so (compute.WorkerFromEnv: SHOAL_ROLE=worker, set by the launcher),
// and reports whether it did. main calls it first, before parsing any
// command: a worker has no command line of its own. The worker runs until
// its driver shuts it down or is lost, or until SIGINT/SIGTERM; it logs to
// stderr.
func runWorkerIfAsked(runner compute.Runner) (ran bool, err error) {
	opts, ok := compute.WorkerFromEnv()
	if !ok {
		return false, nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	return true, compute.RunWorker(ctx, opts, runner)
}
