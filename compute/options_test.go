package compute_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"shoal/compute"
	"shoal/compute/computepb"
)

func TestWorkerFromEnv(t *testing.T) {
	t.Setenv(compute.EnvRole, "")
	if _, ok := compute.WorkerFromEnv(); ok {
		t.Fatal("not a worker, but WorkerFromEnv says it is")
	}
	want := compute.WorkerOptions{DriverAddr: "127.0.0.1:1", NodeAddr: "127.0.0.1:2", App: "app", WorkerID: "w-0-3", Slots: 3, HeartbeatInterval: 250 * time.Millisecond, DriverTimeout: 3 * time.Second, ServeShuffle: true}
	for _, kv := range want.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	got, ok := compute.WorkerFromEnv()
	if !ok || got.DriverAddr != want.DriverAddr || got.NodeAddr != want.NodeAddr || got.App != want.App ||
		got.WorkerID != want.WorkerID || got.Slots != want.Slots || got.HeartbeatInterval != want.HeartbeatInterval ||
		got.DriverTimeout != want.DriverTimeout || got.ServeShuffle != want.ServeShuffle {
		t.Fatalf("WorkerFromEnv = %+v, %v; want %+v", got, ok, want)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}

	t.Setenv(compute.EnvSlots, "many")
	t.Setenv(compute.EnvDriver, "")
	t.Setenv(compute.EnvWorkerID, "../x")
	t.Setenv(compute.EnvServeShuffle, "maybe")
	t.Setenv(compute.EnvDriverTimeout, "-1s")
	got, _ = compute.WorkerFromEnv()
	got.EnsureDefaults()
	err := got.Validate()
	for _, want := range []string{"SHOAL_SLOTS=\"many\"", "DriverAddr is empty", "worker ID \"../x\"", "SHOAL_SERVE_SHUFFLE=\"maybe\"", "SHOAL_DRIVER_TIMEOUT=\"-1s\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to mention %s", err, want)
		}
	}
	// RunWorker refuses bad options before touching the network.
	if err := compute.RunWorker(context.Background(), got, nil); err == nil {
		t.Error("RunWorker with bad options succeeded")
	}
}

func TestOptionsValidate(t *testing.T) {
	e := compute.EndpointOptions{App: "a/b", HeartbeatTimeout: -1}
	e.EnsureDefaults()
	if err := e.Validate(); err == nil || !strings.Contains(err.Error(), "negative") || !strings.Contains(err.Error(), "application ID") {
		t.Errorf("endpoint options: %v", err)
	}
	e = compute.EndpointOptions{HeartbeatTimeout: time.Second, HeartbeatInterval: time.Second}
	e.EnsureDefaults()
	if err := e.Validate(); err == nil || !strings.Contains(err.Error(), "HeartbeatInterval 1s is not under HeartbeatTimeout 1s") {
		t.Errorf("endpoint options with an interval as long as the timeout: %v", err)
	}
	// By default both ends of a stream give up on a silent peer after the
	// same time, well after the other's heartbeat interval.
	var w compute.WorkerOptions
	w.EnsureDefaults()
	var d compute.EndpointOptions
	d.EnsureDefaults()
	if w.DriverTimeout != d.HeartbeatTimeout || d.HeartbeatInterval*5 > w.DriverTimeout || w.HeartbeatInterval*5 > d.HeartbeatTimeout {
		t.Errorf("defaults: worker DriverTimeout %v, HeartbeatInterval %v; endpoint HeartbeatTimeout %v, HeartbeatInterval %v",
			w.DriverTimeout, w.HeartbeatInterval, d.HeartbeatTimeout, d.HeartbeatInterval)
	}
	l := compute.LocalOptions{Nodes: -1, CacheBytes: -1}
	l.EnsureDefaults()
	if err := l.Validate(); err == nil || !strings.Contains(err.Error(), "DriverAddr") || !strings.Contains(err.Error(), "Nodes -1") || !strings.Contains(err.Error(), "CacheBytes -1") {
		t.Errorf("local options: %v", err)
	}
	if _, err := compute.StartLocal(context.Background(), l); err == nil {
		t.Error("StartLocal with bad options succeeded")
	}
}

// TestEndpointProtocol speaks the protocol by hand: refused Hellos, a
// duplicate worker ID, and a worker that closes its stream.
func TestEndpointProtocol(t *testing.T) {
	const hbInterval = 50 * time.Millisecond
	ep, err := compute.NewEndpoint(compute.EndpointOptions{App: "app", HeartbeatTimeout: 5 * time.Second, HeartbeatInterval: hbInterval})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	conn, err := grpc.NewClient(ep.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	driver := computepb.NewDriverClient(conn)
	// A stream without the application's token, or with another, is
	// refused before its Hello is read.
	for _, token := range []string{"", "not-the-token"} {
		cctx := ctx
		if token != "" {
			cctx = metadata.AppendToOutgoingContext(ctx, "shoal-app-token", token)
		}
		s, err := driver.Connect(cctx)
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.Unauthenticated || strings.Contains(err.Error(), ep.Token()) {
			t.Errorf("token %q: %v, want Unauthenticated not quoting the token", token, err)
		}
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "shoal-app-token", ep.Token())
	connect := func(h *computepb.Hello) (computepb.Driver_ConnectClient, error) {
		s, err := driver.Connect(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.Send(&computepb.WorkerMessage{Msg: &computepb.WorkerMessage_Hello{Hello: h}}); err != nil {
			return nil, err
		}
		m, err := s.Recv()
		if err != nil {
			return nil, err
		}
		if m.GetWelcome() == nil {
			t.Fatalf("first message %v, want Welcome", m)
		}
		return s, nil
	}
	for _, h := range []*computepb.Hello{
		{WorkerId: "w1", App: "other", Slots: 1},
		{WorkerId: "", App: "app", Slots: 1},
		{WorkerId: "w1", App: "app", Slots: 0},
	} {
		if _, err := connect(h); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Hello %v: %v, want InvalidArgument", h, err)
		}
	}
	s, err := connect(&computepb.Hello{WorkerId: "w1", App: "app", Slots: 1, Pid: 42, NodeAddr: "n:1"})
	if err != nil {
		t.Fatal(err)
	}
	// A Hello without shuffle_addr: the node service holds its outputs.
	if ev := <-ep.Events(); ev.Kind != compute.WorkerAdded || ev.Worker != (compute.WorkerInfo{ID: "w1", Node: "n:1", ShuffleAddr: "n:1", Pid: 42, Slots: 1}) {
		t.Fatalf("event %+v", ev)
	}
	if _, err := connect(&computepb.Hello{WorkerId: "w1", App: "app", Slots: 1}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("duplicate worker: %v, want AlreadyExists", err)
	}
	// The driver heartbeats at its interval while it has nothing to say.
	heartbeats := 0
	start := time.Now()
	for heartbeats < 3 {
		m, err := s.Recv()
		if err != nil || m.GetHeartbeat() == nil {
			t.Fatalf("Recv = %v, %v; want a Heartbeat", m, err)
		}
		heartbeats++
	}
	if d := time.Since(start); d < 2*hbInterval || d > 40*hbInterval {
		t.Errorf("3 heartbeats in %v at an interval of %v", d, hbInterval)
	}
	if err := ep.Run("w1", &computepb.RunTask{TaskId: 7, Plan: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if m, err := recvSkippingHeartbeats(s); err != nil || m.GetRunTask().GetTaskId() != 7 {
		t.Fatalf("Recv = %v, %v; want RunTask 7", m, err)
	}
	upd := &computepb.TaskUpdate{TaskId: 7, State: computepb.TaskState_TASK_STATE_SUCCEEDED, Result: []byte("r")}
	if err := s.Send(&computepb.WorkerMessage{Msg: &computepb.WorkerMessage_TaskUpdate{TaskUpdate: upd}}); err != nil {
		t.Fatal(err)
	}
	if ev := <-ep.Events(); ev.Kind != compute.TaskUpdate || string(ev.Update.GetResult()) != "r" {
		t.Fatalf("event %+v", ev)
	}
	s.CloseSend()
	if ev := <-ep.Events(); ev.Kind != compute.WorkerLost || !strings.Contains(ev.Reason, "closed its stream") {
		t.Fatalf("event %+v", ev)
	}
	if _, err := recvSkippingHeartbeats(s); status.Code(err) != codes.Aborted {
		t.Errorf("stream end: %v, want Aborted", err)
	}
	if err := ep.Kill("w1", 7); !errors.Is(err, compute.ErrWorkerGone) {
		t.Errorf("Kill on a lost worker: %v", err)
	}
	ep.Close()
	if _, ok := <-ep.Events(); ok {
		t.Error("events open after Close")
	}
	if err := ep.Close(); err != nil {
		t.Error(err)
	}
}

// recvSkippingHeartbeats receives the driver's next message other than a
// Heartbeat.
func recvSkippingHeartbeats(s computepb.Driver_ConnectClient) (*computepb.DriverMessage, error) {
	for {
		m, err := s.Recv()
		if err != nil || m.GetHeartbeat() == nil {
			return m, err
		}
	}
}
