package compute_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"shoal/compute"
	"shoal/compute/computepb"
	"shoal/shuffleservice/shuffle"
)

// TestMain makes the test binary a worker when started as one: the tests
// use os.Args[0] as the workers' binary, as a user program would use its
// own.
func TestMain(m *testing.M) {
	if opts, ok := compute.WorkerFromEnv(); ok {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		err := compute.RunWorker(ctx, opts, testRunner{messages: &messageLog{}})
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
//	write:N     writes N records (key "k<i>", value the worker's ID) as map
//	            output Partition of shuffle 1 (one reduce partition),
//	            commits it to env.Node and reports it with map_output_node
//	            env.ShuffleAddr; the result is its data file
//	read        reads reduce partition 0 of shuffle 1 from the task's
//	            inputs; the result is "N records from W1,W2,..."
//	report:R    succeeds with R as its opaque report
//	messages    succeeds with the payloads of the messages the Runner has
//	            read (Message), comma-separated, as result
//
// It is a compute.Messenger: it keeps every message it is sent, and
// refuses (with an error the worker logs) one that says "refuse".
type testRunner struct {
	messages *messageLog
}

// messageLog is the messages a testRunner has read.
type messageLog struct {
	mu   sync.Mutex
	list []string
}

func (r testRunner) Message(payload []byte) error {
	if string(payload) == "refuse" {
		return errors.New("testRunner: refused")
	}
	r.messages.mu.Lock()
	defer r.messages.mu.Unlock()
	r.messages.list = append(r.messages.list, string(payload))
	return nil
}

func (r testRunner) Run(ctx context.Context, env *compute.TaskEnv, t *computepb.RunTask) (*computepb.TaskUpdate, error) {
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
	case "write":
		n, err := strconv.Atoi(arg)
		if err != nil {
			return nil, err
		}
		return writeOutput(ctx, env, t, n)
	case "read":
		return readInput(ctx, env, t)
	case "report":
		return &computepb.TaskUpdate{Report: []byte(arg)}, nil
	case "messages":
		r.messages.mu.Lock()
		defer r.messages.mu.Unlock()
		return &computepb.TaskUpdate{Result: []byte(strings.Join(r.messages.list, ","))}, nil
	}
	return nil, fmt.Errorf("testRunner: unknown plan %q", t.GetPlan())
}

func writeOutput(ctx context.Context, env *compute.TaskEnv, t *computepb.RunTask, n int) (*computepb.TaskUpdate, error) {
	w, err := shuffle.NewWriter(shuffle.WriterOptions{
		Layout: env.Layout, App: env.App, Shuffle: 1, Map: t.GetPartition(), Attempt: t.GetAttempt(),
		Epoch: 1, Partitions: 1, Buffers: env.Buffers,
	})
	if err != nil {
		return nil, err
	}
	defer w.Discard()
	for i := range n {
		if err := w.Write(0, fmt.Appendf(nil, "k%d", i), []byte(env.WorkerID)); err != nil {
			return nil, err
		}
	}
	out, err := w.Commit(ctx, env.Node)
	if err != nil {
		return nil, err
	}
	data := env.Layout.DataPath(env.App, 1, t.GetPartition(), t.GetAttempt())
	return &computepb.TaskUpdate{MapOutput: out, MapOutputNode: env.ShuffleAddr, Result: []byte(data)}, nil
}

func readInput(ctx context.Context, env *compute.TaskEnv, t *computepb.RunTask) (*computepb.TaskUpdate, error) {
	var locs []shuffle.MapLocation
	for _, in := range t.GetInputs() {
		for _, m := range in.GetMaps() {
			locs = append(locs, shuffle.MapLocation{Node: m.GetNode(), Output: m.GetOutput()})
		}
	}
	r, err := shuffle.NewReader(ctx, shuffle.ReaderOptions{
		App: env.App, Shuffle: 1, ReduceStart: 0, ReduceEnd: 1, Maps: locs,
		LocalNode: env.ShuffleAddr, LocalLayout: env.Layout, Clients: env.Clients.Fetchers(),
	})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	n, from := 0, map[string]bool{}
	for r.Next() {
		n++
		from[string(r.Value())] = true
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	return &computepb.TaskUpdate{Result: fmt.Appendf(nil, "%d records from %s", n, strings.Join(slices.Sorted(maps.Keys(from)), ","))}, nil
}
