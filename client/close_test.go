package client_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"shoal/client"
	"shoal/client/eventlog"
	"shoal/internal/poll"
)

// Close is safe at any moment: a job running ends with an error that
// names the close within 5 s, and every process the context started is
// gone. (The result-block fetch case runs against the fake cluster, where
// a fetch can be held: TestFakeCloseWhileFetchingResult.)

func slowIdentity(x int64) int64 { time.Sleep(20 * time.Millisecond); return x }

// children counts this process's child processes.
func children(t *testing.T) int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	me := strconv.Itoa(os.Getpid())
	n := 0
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, not ')'.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 {
			if f := strings.Fields(string(b[i+1:])); len(f) > 1 && f[1] == me {
				n++
			}
		}
	}
	return n
}

// closeWhen runs job on a new context, closes the context once the event
// log holds an event that until accepts, and checks what Close must do.
func closeWhen(t *testing.T, opts client.Options, job func(c *client.Context) error, until func(eventlog.Event) bool) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc: child processes cannot be counted")
	}
	before := children(t)
	c, log := newContextWith(t, opts)
	errc := make(chan error, 1)
	go func() { errc <- job(c) }()
	tail := eventlog.Tail{Path: log}
	poll.WaitFor(t, 60*time.Second, "the moment to close", func() bool {
		evs, err := tail.Poll()
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if until(ev) {
				return true
			}
		}
		return false
	})
	closed := time.Now()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "the context was closed while it ran") {
			t.Fatalf("the job's error %v, want one naming the close", err)
		}
	case <-time.After(5*time.Second - time.Since(closed)):
		t.Fatal("the job did not end within 5 s of Close")
	}
	if n := children(t); n > before {
		t.Fatalf("%d child processes after Close, %d before", n, before)
	}
}

func TestCloseDuringMapStage(t *testing.T) {
	closeWhen(t, client.Options{Nodes: 1, WorkersPerNode: 2}, func(c *client.Context) error {
		_, err := client.Count(context.Background(), client.ReduceByKey(client.Map(client.Map(client.Range(c, 0, 400, 4), slowIdentity), modKey), addInt64, 2))
		return err
	}, func(ev eventlog.Event) bool {
		ts, ok := ev.(*eventlog.TaskStart)
		return ok && ts.Kind == eventlog.KindMap
	})
}

func TestCloseDuringCheckpointWrite(t *testing.T) {
	// The tasks write the store: a checkpoint through the nodes is
	// durable after its job (TestCloseWaitsForCheckpoints).
	opts := client.Options{Nodes: 1, WorkersPerNode: 2, CheckpointDir: t.TempDir(), CheckpointVia: client.CheckpointViaTask}
	closeWhen(t, opts, func(c *client.Context) error {
		_, err := client.Count(context.Background(), client.Map(client.Range(c, 0, 400, 8), slowIdentity).Checkpoint())
		return err
	}, func(ev eventlog.Event) bool {
		_, ok := ev.(*eventlog.CheckpointWritten)
		return ok
	})
}
