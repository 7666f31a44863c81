package client

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"shoal/client/clientpb"
	"shoal/compute"
	"shoal/compute/computepb"
)

// A task's report round-trips through TaskUpdate.report; a task with
// nothing to report sends no bytes; a report that cannot be read is an
// error naming the task, never a panic.
func TestReportEncoding(t *testing.T) {
	full := &taskContext{
		task: &computepb.RunTask{TaskId: 7},
		blocks: []*clientpb.BlockReport{
			{Kind: clientpb.BlockReport_KIND_STORED, Rdd: 3, Partition: 1, Level: "MemorySer", Where: "127.0.0.1:1", Bytes: 10},
			{Kind: clientpb.BlockReport_KIND_MISSING, Rdd: 3, Partition: 2, Where: "w-0-0", Reason: "evicted"},
		},
		checkpoints: []*clientpb.CheckpointReport{
			{Kind: clientpb.CheckpointReport_KIND_WRITTEN, Rdd: 4, Partition: 0, Uri: "file:///c/p0", PartInfo: []byte(`{"size":1}`)},
		},
		accums: map[uint32]*accCell{2: {v: -5}, 1: {v: 1 << 40}},
	}
	b, err := encodeReport(full)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := decodeReport(&computepb.TaskUpdate{TaskId: 7, Report: b})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.blocks) != 2 || !proto.Equal(rep.blocks[0], full.blocks[0]) || !proto.Equal(rep.blocks[1], full.blocks[1]) {
		t.Errorf("blocks %v, want %v", rep.blocks, full.blocks)
	}
	if len(rep.checkpoints) != 1 || !proto.Equal(rep.checkpoints[0], full.checkpoints[0]) {
		t.Errorf("checkpoints %v, want %v", rep.checkpoints, full.checkpoints)
	}
	if len(rep.accums) != 2 || rep.accums[1] != 1<<40 || rep.accums[2] != -5 {
		t.Errorf("accumulators %v, want 1:%d 2:-5", rep.accums, int64(1<<40))
	}

	empty := &taskContext{task: &computepb.RunTask{TaskId: 8}, accums: map[uint32]*accCell{}}
	if b, err := encodeReport(empty); err != nil || b != nil {
		t.Errorf("empty report encoded as %x, %v; want no bytes", b, err)
	}
	if rep, err := decodeReport(&computepb.TaskUpdate{TaskId: 8}); err != nil || rep.blocks != nil || rep.checkpoints != nil || rep.accums != nil {
		t.Errorf("no report decoded as %+v, %v; want an empty one", rep, err)
	}

	v0, _ := proto.Marshal(&clientpb.Report{Blocks: []*clientpb.BlockReport{{Rdd: 1}}})
	v2, _ := proto.Marshal(&clientpb.Report{Version: reportVersion + 1})
	for _, tc := range []struct {
		name   string
		report []byte
		want   []string
	}{
		{"garbage", []byte{0xff, 0xff, 0xff}, []string{"task 9", "does not decode"}},
		{"truncated", b[:len(b)-1], []string{"task 9", "does not decode"}},
		{"no version", v0, []string{"task 9", "version 0", "reads version 1"}},
		{"next version", v2, []string{"task 9", "version 2", "reads version 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &computepb.TaskUpdate{TaskId: 9, State: computepb.TaskState_TASK_STATE_SUCCEEDED, Report: tc.report}
			_, err := decodeReport(u)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			failReport(u, err)
			if u.State != computepb.TaskState_TASK_STATE_FAILED || u.UserError || u.Error != err.Error() {
				t.Errorf("update after failReport: %v", u)
			}
		})
	}
}

// FuzzDecodeReport: whatever the bytes, decodeReport returns a report or
// an error.
func FuzzDecodeReport(f *testing.F) {
	b, _ := encodeReport(&taskContext{
		task:   &computepb.RunTask{TaskId: 1},
		blocks: []*clientpb.BlockReport{{Kind: clientpb.BlockReport_KIND_HIT, Rdd: 1, Where: "n"}},
		accums: map[uint32]*accCell{1: {v: 3}},
	})
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := decodeReport(&computepb.TaskUpdate{TaskId: 1, Report: data})
		if err != nil && (rep.blocks != nil || rep.checkpoints != nil || rep.accums != nil) {
			t.Fatalf("an error (%v) with a report %+v", err, rep)
		}
	})
}

// The runner reads the driver's drop-blocks message; a message it cannot
// read is an error, never a panic.
func TestRunnerMessage(t *testing.T) {
	r := newRunner()
	t.Cleanup(func() { r.Close() })
	r.heap.put(0, 5, 0, []int{1}, 8)
	r.heap.put(0, 6, 0, []int{2}, 8)
	if err := r.Message(encodeDropBlocks(5)); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := r.heap.get(5, 0); ok {
		t.Error("a block of RDD 5 is still in the heap after its drop-blocks message")
	}
	if _, _, ok := r.heap.get(6, 0); !ok {
		t.Error("the block of RDD 6 was dropped with RDD 5's")
	}
	other, _ := proto.Marshal(&clientpb.Message{Version: reportVersion + 1, Msg: &clientpb.Message_DropBlocks{DropBlocks: &clientpb.DropBlocks{Rdd: 6}}})
	none, _ := proto.Marshal(&clientpb.Message{Version: reportVersion})
	for _, tc := range []struct {
		name    string
		payload []byte
		want    string
	}{
		{"garbage", []byte{0xff}, "does not decode"},
		{"next version", other, "version 2"},
		{"no request", none, "no request"},
	} {
		if err := r.Message(tc.payload); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one that says %q", tc.name, err, tc.want)
		}
	}
	if _, _, ok := r.heap.get(6, 0); !ok {
		t.Error("an unreadable message dropped a block")
	}
}

// Each runner has its own caches, released by Close, after which tasks
// fail.
func TestRunnerLifetime(t *testing.T) {
	a, b := newRunner(), newRunner()
	a.heap.put(0, 1, 0, []int{1}, 8)
	a.broadcasts.entry(3).ok = true
	if _, _, ok := b.heap.get(1, 0); ok {
		t.Error("a block stored by one runner is in another's heap")
	}
	if b.broadcasts.entry(3).ok {
		t.Error("a broadcast fetched by one runner is in another's cache")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := a.heap.get(1, 0); ok || a.heap.used != 0 {
		t.Errorf("the heap holds %d bytes after Close", a.heap.used)
	}
	if a.broadcasts.entry(3).ok {
		t.Error("a broadcast is cached after Close")
	}
	if _, err := a.stores.open(context.Background(), ckptParams{URI: "mem://x"}); err == nil {
		t.Error("a checkpoint store opened after Close")
	}
	_, err := a.Run(context.Background(), &compute.TaskEnv{}, &computepb.RunTask{TaskId: 4})
	if err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("a task run after Close: %v, want an error saying the runner is closed", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := b.stores.open(context.Background(), ckptParams{URI: "mem://x", Run: "app/run-1", Name: "ck"}); err != nil {
		t.Errorf("the other runner's store: %v", err)
	}
	b.Close()
}
