package client

import (
	"errors"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"shoal/client/clientpb"
	"shoal/compute/computepb"
)

// What a task reports beyond compute's own fields, and what the driver
// tells a worker's runner outside of tasks. compute carries both as
// opaque bytes (TaskUpdate.report, ClientMessage.payload); their encoding
// is this package's, the protobuf messages of clientpb/report.proto with
// a version number. Both ends are the same binary (the plan's canary
// checks it), so the version only turns a mismatch into a clear error.

// reportVersion is the version of the Report and Message encodings.
const reportVersion = 1

// taskReport is a task's decoded report: what the driver's scheduler
// applies when the task ends (blockReports, checkpointReports, and the
// accumulators when it succeeded).
type taskReport struct {
	blocks      []*clientpb.BlockReport
	checkpoints []*clientpb.CheckpointReport
	accums      map[uint32]int64 // accumulator ID → what the task added
}

// encodeReport encodes what tc recorded for the driver: nil if nothing,
// so that a task without cached blocks, checkpoints or accumulators
// sends no report at all.
func encodeReport(tc *taskContext) ([]byte, error) {
	if len(tc.blocks) == 0 && len(tc.checkpoints) == 0 && len(tc.accums) == 0 {
		return nil, nil
	}
	r := &clientpb.Report{Version: reportVersion, Blocks: tc.blocks, Checkpoints: tc.checkpoints}
	// In ID order, so that equal reports encode equally.
	ids := make([]uint32, 0, len(tc.accums))
	for id := range tc.accums {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		r.Accumulators = append(r.Accumulators, &clientpb.Accumulator{Id: id, Value: tc.accums[id].v})
	}
	b, err := proto.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("client: task %d: encoding its report of %d blocks, %d checkpoint partitions and %d accumulators: %w",
			tc.task.GetTaskId(), len(r.Blocks), len(r.Checkpoints), len(r.Accumulators), err)
	}
	return b, nil
}

// decodeReport decodes the report of a task update, the only place the
// driver reads TaskUpdate.report. An empty report is an empty taskReport.
// An error says that the update's report cannot be read: the scheduler
// then fails the task with it.
func decodeReport(u *computepb.TaskUpdate) (taskReport, error) {
	b := u.GetReport()
	if len(b) == 0 {
		return taskReport{}, nil
	}
	var r clientpb.Report
	if err := proto.Unmarshal(b, &r); err != nil {
		return taskReport{}, fmt.Errorf("client: task %d sent a report of %d bytes that does not decode (%v): the worker is not running this driver's program", u.GetTaskId(), len(b), err)
	}
	if r.Version != reportVersion {
		return taskReport{}, fmt.Errorf("client: task %d sent a report of version %d; this driver reads version %d (the worker runs another build of the program)", u.GetTaskId(), r.Version, reportVersion)
	}
	rep := taskReport{blocks: r.Blocks, checkpoints: r.Checkpoints}
	if len(r.Accumulators) > 0 {
		rep.accums = make(map[uint32]int64, len(r.Accumulators))
		for _, a := range r.Accumulators {
			rep.accums[a.Id] += a.Value
		}
	}
	return rep, nil
}

// failReport makes u, whose report did not decode, a FAILED update with
// err: what the task did is not known, so it did not succeed. The
// failure is the infrastructure's, not the task's code's, and counts
// against the partition like any other (MaxTaskFailures).
func failReport(u *computepb.TaskUpdate, err error) {
	u.State, u.Error, u.UserError = computepb.TaskState_TASK_STATE_FAILED, err.Error(), false
}

// encodeDropBlocks is the message that asks a worker's runner to drop
// the blocks of an RDD from its heap (Unpersist of a MemoryDeser RDD).
func encodeDropBlocks(rdd int) []byte {
	b, err := proto.Marshal(&clientpb.Message{Version: reportVersion, Msg: &clientpb.Message_DropBlocks{DropBlocks: &clientpb.DropBlocks{Rdd: uint32(rdd)}}})
	if err != nil {
		panic(fmt.Sprintf("client: encoding a drop-blocks message: %v", err)) // integers only: cannot fail
	}
	return b
}

// errNoMessage is the error of a message that holds no request the
// runner knows.
var errNoMessage = errors.New("client: the driver's message holds no request this worker knows")

// decodeMessage decodes a message from the driver.
func decodeMessage(payload []byte) (*clientpb.Message, error) {
	var m clientpb.Message
	if err := proto.Unmarshal(payload, &m); err != nil {
		return nil, fmt.Errorf("client: a message from the driver of %d bytes does not decode: %w", len(payload), err)
	}
	if m.Version != reportVersion {
		return nil, fmt.Errorf("client: a message from the driver is of version %d; this worker reads version %d (the driver runs another build of the program)", m.Version, reportVersion)
	}
	if m.Msg == nil {
		return nil, errNoMessage
	}
	return &m, nil
}
