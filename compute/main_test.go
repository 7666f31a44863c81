package compute_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/compute"
	"shoal/compute/computepb"
)

// TestMain makes the test binary a worker when started as one: the tests
// use os.Args[0] as the workers' binary, as a user program would use its
// own.
func TestMain(m *testing.M) {
	if opts, ok := compute.WorkerFromEnv(); ok {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		err := compute.RunWorker(ctx, opts, testRunner{})
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testRunner runs plans of the form "command:argument":
//
//	echo:TEXT   succeeds with result TEXT
//	fail:MSG    fails with a UserError MSG
//	panic:MSG   panics with MSG
//	sleep:MS    sleeps MS milliseconds, or until cancelled
//	node        succeeds with the worker's node address as result
//	hang        stops its own process (SIGSTOP), as a hung worker
type testRunner struct{}

func (testRunner) Run(ctx context.Context, env *compute.TaskEnv, t *computepb.RunTask) (*computepb.TaskUpdate, error) {
	cmd, arg, _ := strings.Cut(string(t.GetPlan()), ":")
	switch cmd {
	case "echo":
		return &computepb.TaskUpdate{Result: []byte(arg)}, nil
	case "fail":
		return nil, compute.UserError{Err: errors.New(arg)}
	case "panic":
		panic(arg)
	case "sleep":
		ms, err := strconv.Atoi(arg)
		if err != nil {
			return nil, err
		}
		timer := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer timer.Stop()
		select {
		case <-timer.C:
			return &computepb.TaskUpdate{Result: []byte("slept")}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "node":
		return &computepb.TaskUpdate{Result: []byte(env.NodeAddr)}, nil
	case "hang":
		syscall.Kill(os.Getpid(), syscall.SIGSTOP)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("testRunner: unknown plan %q", t.GetPlan())
}
