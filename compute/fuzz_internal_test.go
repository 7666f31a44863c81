package compute

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"shoal/compute/computepb"
	"shoal/internal/fuzzmsg"
)

// FuzzEndpointConnect drives the driver endpoint's one RPC, Connect, in
// process with a worker's stream whose messages are decoded from the
// fuzzer's bytes (each prefixed by its length as a uvarint), with the
// application's token, another, or none (who). Connect must never
// panic, must return once the stream ends, and must fail only with a
// status that names what was wrong.
func FuzzEndpointConnect(f *testing.F) {
	hello := &computepb.WorkerMessage{Msg: &computepb.WorkerMessage_Hello{Hello: &computepb.Hello{WorkerId: "w-1", App: "app", Slots: 2, NodeAddr: "127.0.0.1:1", Pid: 7}}}
	update := &computepb.WorkerMessage{Msg: &computepb.WorkerMessage_TaskUpdate{TaskUpdate: &computepb.TaskUpdate{TaskId: 3, State: computepb.TaskState_TASK_STATE_SUCCEEDED, Result: []byte("r")}}}
	beat := &computepb.WorkerMessage{Msg: &computepb.WorkerMessage_Heartbeat{Heartbeat: &computepb.Heartbeat{}}}
	var seed []byte
	for _, m := range []*computepb.WorkerMessage{hello, update, beat} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		seed = append(seed, fuzzmsg.Frame(b)...)
	}
	f.Add(uint8(0), seed)
	f.Add(uint8(1), seed)
	f.Add(uint8(2), seed[:len(seed)/2])

	e, err := NewEndpoint(EndpointOptions{App: "app", Token: "the-token", HeartbeatTimeout: 2 * time.Second, HeartbeatInterval: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close() })
	go func() {
		for range e.Events() { // the scheduler's part: drained
		}
	}()
	callers := []context.Context{
		metadata.NewIncomingContext(context.Background(), metadata.Pairs(tokenMetadata, "the-token")),
		metadata.NewIncomingContext(context.Background(), metadata.Pairs(tokenMetadata, "another")),
		context.Background(),
	}
	f.Fuzz(func(t *testing.T, who uint8, payload []byte) {
		ctx, cancel := context.WithCancel(callers[int(who)%len(callers)])
		defer cancel()
		st := &fuzzWorkerStream{ctx: ctx, msgs: fuzzmsg.Split(payload)}
		done := make(chan error, 1)
		go func() { done <- (driverService{e: e}).Connect(st) }()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Connect did not return 10 s after its stream ended")
		}
		if st.decodeErr.Load() {
			return
		}
		switch status.Code(err) {
		case codes.Unknown, codes.Internal:
			t.Fatalf("an error that names no cause: %v", err)
		}
	})
}

// fuzzWorkerStream is a worker's side of Connect: it sends msgs, then
// ends its stream (io.EOF); what the driver sends is dropped.
type fuzzWorkerStream struct {
	ctx       context.Context
	msgs      [][]byte
	decodeErr atomic.Bool
}

func (s *fuzzWorkerStream) Context() context.Context     { return s.ctx }
func (s *fuzzWorkerStream) SetHeader(metadata.MD) error  { return nil }
func (s *fuzzWorkerStream) SendHeader(metadata.MD) error { return nil }
func (s *fuzzWorkerStream) SetTrailer(metadata.MD)       {}
func (s *fuzzWorkerStream) SendMsg(any) error            { return nil }
func (s *fuzzWorkerStream) RecvMsg(any) error            { return io.EOF }

func (s *fuzzWorkerStream) Send(m *computepb.DriverMessage) error {
	_, err := proto.Marshal(m)
	return err
}

// Recv is called by one goroutine at a time (awaitHello's, then
// recvLoop's, which starts after it).
func (s *fuzzWorkerStream) Recv() (*computepb.WorkerMessage, error) {
	if len(s.msgs) == 0 {
		return nil, io.EOF
	}
	m := &computepb.WorkerMessage{}
	if err := proto.Unmarshal(s.msgs[0], m); err != nil {
		s.decodeErr.Store(true)
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	s.msgs = s.msgs[1:]
	return m, nil
}
