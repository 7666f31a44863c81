package nodeclient

import (
	"context"
	"errors"
	"fmt"
	"io"

	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// CheckpointPart names a checkpoint partition object in a node's
// checkpoint store: the store's URI, the object's key, its size and its
// checksum (checkpoint.PartInfo's Size and CRC32C).
type CheckpointPart struct {
	Store, Key string
	Size       int64
	CRC32C     uint32
}

func (p CheckpointPart) pb() *shufflepb.CheckpointPart {
	return &shufflepb.CheckpointPart{Store: p.Store, Key: p.Key, Size: uint64(p.Size), Crc32C: p.CRC32C}
}

// PutCheckpoint hands a checkpoint partition object (checkpoint.
// EncodePartition) to the node, which commits it and uploads it to the
// store in the background. held is true if the node held that
// partition already (nothing was sent again). Errors match
// shuffle.ErrQueueFull (the node's upload queue is full: try again
// later), ErrNoCheckpointStore (the node holds another store, or none),
// ErrInvalidArgument, ErrUnknownApp, ErrCorrupt (damaged in flight: put
// it again), or are retryable (shuffle.IsRetryable).
func (c *Client) PutCheckpoint(ctx context.Context, app string, part CheckpointPart, data []byte) (held bool, err error) {
	ctx, end := c.bound(ctx, "PutCheckpoint of "+part.Key, c.times.put(len(data)))
	defer end(&err)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.PutCheckpoint(ctx)
	if err != nil {
		return false, nodewire.FromStatus(err)
	}
	msg := &shufflepb.PutCheckpointChunk{Header: &shufflepb.PutCheckpointHeader{App: app, Part: part.pb()}}
	if err := sendInChunks(data, func(chunk []byte, first bool) error {
		if !first {
			msg.Header = nil
		}
		msg.Data = chunk
		return stream.Send(msg)
	}); err != nil {
		return false, nodewire.FromStatus(err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return false, nodewire.FromStatus(err)
	}
	return resp.GetHeld(), nil
}

// CheckpointStatus asks the node about partitions of its checkpoint
// store, by key; the answer's i-th state is keys[i]'s.
func (c *Client) CheckpointStatus(ctx context.Context, app, store string, keys []string) (_ []*shufflepb.CheckpointPartState, err error) {
	ctx, end := c.bound(ctx, "CheckpointStatus", c.times.call)
	defer end(&err)
	resp, err := c.rpc.CheckpointStatus(ctx, &shufflepb.CheckpointStatusRequest{App: app, Store: store, Keys: keys})
	if err != nil {
		return nil, nodewire.FromStatus(err)
	}
	if len(resp.GetParts()) != len(keys) {
		return nil, fmt.Errorf("%w: node %s answered CheckpointStatus of %d partitions with %d", shuffle.ErrCorrupt, c.addr, len(keys), len(resp.GetParts()))
	}
	return resp.GetParts(), nil
}

// GetCheckpoint returns a checkpoint partition object from the node: its
// local copy, or (fromStore) the store's, read through the node, which
// keeps a copy. The caller checks the object (checkpoint.DecodePartition).
// Errors match shuffle.ErrCheckpointStore (the node could not read it
// from the store), ErrNoCheckpointStore, ErrCorrupt, or are retryable.
func (c *Client) GetCheckpoint(ctx context.Context, app string, part CheckpointPart) (data []byte, fromStore bool, err error) {
	ctx, idle, cancel := watchIdle(ctx, c.times.getIdle)
	defer cancel()
	what := fmt.Sprintf("GetCheckpoint of %s from node %s", part.Key, c.addr)
	stream, err := c.rpc.GetCheckpoint(ctx, &shufflepb.GetCheckpointRequest{App: app, Part: part.pb()})
	if err != nil {
		return nil, false, idle.err(what, err)
	}
	for first := true; ; first = false {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, idle.err(what, err)
		}
		idle.reset()
		if first {
			if chunk.GetSize() != uint64(part.Size) {
				return nil, false, fmt.Errorf("%w: node %s sends %d bytes for %s, want %d", shuffle.ErrCorrupt, c.addr, chunk.GetSize(), part.Key, part.Size)
			}
			fromStore = chunk.GetFromStore()
			data = make([]byte, 0, min(part.Size, getPrealloc))
		}
		if int64(len(chunk.GetData())) > part.Size-int64(len(data)) {
			return nil, false, fmt.Errorf("%w: node %s sent more than the %d bytes of %s", shuffle.ErrCorrupt, c.addr, part.Size, part.Key)
		}
		data = append(data, chunk.GetData()...)
	}
	if int64(len(data)) != part.Size {
		return nil, false, fmt.Errorf("%w: node %s sent %d of the %d bytes of %s", shuffle.ErrCorrupt, c.addr, len(data), part.Size, part.Key)
	}
	return data, fromStore, nil
}
