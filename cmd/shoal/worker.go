package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"shoal/client"
	"shoal/compute"
)

// runWorkerIfAsked runs this process as a worker when its environment
// says so (compute.WorkerFromEnv: SHOAL_ROLE=worker, set by the launcher),
// and reports whether it did. main calls it first, before parsing any
// command: a worker has no command line of its own. The worker runs until
// its driver shuts it down or is lost, or until SIGINT/SIGTERM; it logs to
// stderr.
// envCPUProfileDir, if set, names a directory where each worker and node
// service writes a CPU profile of its life (worker-ID.pprof,
// node-PID.pprof), for studying where a job's time goes.
const envCPUProfileDir = "SHOAL_CPUPROFILE_DIR"

func runWorkerIfAsked() (ran bool, err error) {
	opts, ok := compute.WorkerFromEnv()
	if !ok {
		return false, nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	stopProfile, err := profileIfAsked("worker-" + opts.WorkerID)
	if err != nil {
		return true, err
	}
	defer stopProfile()
	return true, client.RunWorker(ctx, opts)
}

// profileIfAsked starts a CPU profile of this process into
// $SHOAL_CPUPROFILE_DIR/NAME.pprof when that variable is set; stop ends
// it and closes the file.
func profileIfAsked(name string) (stop func(), err error) {
	dir := os.Getenv(envCPUProfileDir)
	if dir == "" {
		return func() {}, nil
	}
	return startCPUProfile(filepath.Join(dir, name+".pprof"))
}
