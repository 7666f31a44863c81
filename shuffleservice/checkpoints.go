package shuffleservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"shoal/checkpoint"
	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// The checkpoint service: PutCheckpoint, CheckpointStatus and
// GetCheckpoint put the checkpoint uploader (uploader.go) on the wire.
// See doc.go, "Checkpoints".

// PutCheckpoint receives a checkpoint partition and commits it.
func (s *Server) PutCheckpoint(stream shufflepb.Shuffle_PutCheckpointServer) error {
	resp, err := s.putCheckpoint(stream.Context(), stream.Recv)
	if err != nil {
		return nodewire.ToStatus(err)
	}
	return stream.SendAndClose(resp)
}

// ckptPartFromPB checks a CheckpointPart against the node: its store must
// be the node's, its key a store key, its size within MaxBlockBytes.
func (s *Server) ckptPartFromPB(app string, p *shufflepb.CheckpointPart) (ckptKey, error) {
	if err := shuffle.ValidateID("application", app); err != nil {
		return ckptKey{}, err
	}
	if err := s.ckpt.checkStore(p.GetStore()); err != nil {
		return ckptKey{}, err
	}
	if err := checkpoint.CheckKey(p.GetKey()); err != nil {
		return ckptKey{}, fmt.Errorf("%w: checkpoint partition: %w", shuffle.ErrInvalidArgument, err)
	}
	if size := p.GetSize(); size > uint64(s.opts.MaxBlockBytes) {
		return ckptKey{}, fmt.Errorf("%w: checkpoint partition %s of %d bytes exceeds this node's maximum block size of %d bytes (--max-block-bytes); use more partitions or raise the limit",
			shuffle.ErrInvalidArgument, p.GetKey(), size, s.opts.MaxBlockBytes)
	}
	return ckptKey{app: app, key: p.GetKey()}, nil
}

// putCheckpoint checks the header of a PutCheckpoint stream before it
// receives any data: a bad part, a store not the node's, an unknown
// application or a full upload queue is refused at once, and a partition
// the node holds already is answered held. It then receives exactly the
// header's size in bytes (within BlockBytesInFlight, with PutBlock),
// checks them against the partition's own checksums and commits them.
func (s *Server) putCheckpoint(ctx context.Context, recv func() (*shufflepb.PutCheckpointChunk, error)) (*shufflepb.PutCheckpointResponse, error) {
	if s.isClosed.Load() {
		return nil, shuffle.ErrClosed
	}
	first, err := recv()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: PutCheckpoint stream ended before its header", shuffle.ErrInvalidArgument)
	}
	if err != nil {
		return nil, err
	}
	h := first.GetHeader()
	if h == nil {
		return nil, fmt.Errorf("%w: the first chunk of a PutCheckpoint stream carries no header", shuffle.ErrInvalidArgument)
	}
	k, err := s.ckptPartFromPB(h.GetApp(), h.GetPart())
	if err != nil {
		return nil, err
	}
	// An application writes only under its own runs (APP/RUN/...): it may
	// read another's checkpoints, never overwrite them.
	if !strings.HasPrefix(k.key, k.app+"/") {
		return nil, fmt.Errorf("%w: application %q may not write checkpoint partition %s: an application writes only under %s/", shuffle.ErrPermissionDenied, k.app, k.key, k.app)
	}
	if _, err := s.app(k.app); err != nil {
		return nil, err
	}
	size, crc := int64(h.GetPart().GetSize()), h.GetPart().GetCrc32C()
	held, err := s.ckpt.reserve(k, size, crc)
	if err != nil || held {
		return &shufflepb.PutCheckpointResponse{Held: held}, err
	}
	committed := false
	defer func() {
		if !committed {
			s.ckpt.release(size)
		}
	}()
	if err := s.putSem.Acquire(ctx, size); err != nil {
		return nil, err
	}
	defer s.putSem.Release(size)
	data, err := recvExactly(first, recv, uint64(size), shuffle.ErrInvalidArgument, "checkpoint partition "+k.key)
	if err != nil {
		return nil, err
	}
	if err := checkpoint.CheckObject(data, size, crc); err != nil {
		return nil, corruptf("checkpoint partition %s was damaged in flight or is not one: %v (hand it over again)", k.key, err)
	}
	committed = true // commit releases the reservation itself on error
	if err := s.ckpt.commit(k, crc, data); err != nil {
		return nil, err
	}
	if _, err := s.app(k.app); err != nil {
		// Removed while the partition was received: it must not outlive
		// its application.
		_, _ = s.ckpt.dropApp(k.app)
		return nil, err
	}
	return &shufflepb.PutCheckpointResponse{}, nil
}

// CheckpointStatus reports the state of the partitions asked about.
func (s *Server) CheckpointStatus(ctx context.Context, req *shufflepb.CheckpointStatusRequest) (*shufflepb.CheckpointStatusResponse, error) {
	resp, err := s.checkpointStatus(req)
	if err != nil {
		return nil, nodewire.ToStatus(err)
	}
	return resp, nil
}

// maxStatusKeys bounds the keys of one CheckpointStatus request.
const maxStatusKeys = 65536

func (s *Server) checkpointStatus(req *shufflepb.CheckpointStatusRequest) (*shufflepb.CheckpointStatusResponse, error) {
	if s.isClosed.Load() {
		return nil, shuffle.ErrClosed
	}
	if err := shuffle.ValidateID("application", req.GetApp()); err != nil {
		return nil, err
	}
	if err := s.ckpt.checkStore(req.GetStore()); err != nil {
		return nil, err
	}
	if len(req.GetKeys()) > maxStatusKeys {
		return nil, fmt.Errorf("%w: CheckpointStatus asks about %d partitions, at most %d at once", shuffle.ErrInvalidArgument, len(req.GetKeys()), maxStatusKeys)
	}
	if _, err := s.app(req.GetApp()); err != nil {
		return nil, err
	}
	resp := &shufflepb.CheckpointStatusResponse{}
	for i, st := range s.ckpt.status(req.GetApp(), req.GetKeys()) {
		ps := &shufflepb.CheckpointPartState{Key: req.GetKeys()[i]}
		if st.known {
			ps.State = shufflepb.CheckpointState_CHECKPOINT_STATE_QUEUED
			if st.durable {
				ps.State = shufflepb.CheckpointState_CHECKPOINT_STATE_DURABLE
				ps.DurableUnixMs = st.durableAt.UnixMilli()
			}
			ps.Size, ps.Crc32C, ps.FailedAttempts, ps.LastError, ps.HandedUnixMs = uint64(st.size), st.crc, uint32(st.failed), st.lastErr, st.handed.UnixMilli()
		}
		resp.Parts = append(resp.Parts, ps)
	}
	return resp, nil
}

// GetCheckpoint streams a checkpoint partition.
func (s *Server) GetCheckpoint(req *shufflepb.GetCheckpointRequest, stream shufflepb.Shuffle_GetCheckpointServer) error {
	return nodewire.ToStatus(s.getCheckpoint(stream.Context(), req, stream.Send))
}

func (s *Server) getCheckpoint(ctx context.Context, req *shufflepb.GetCheckpointRequest, send func(*shufflepb.GetCheckpointChunk) error) error {
	if s.isClosed.Load() {
		return shuffle.ErrClosed
	}
	k, err := s.ckptPartFromPB(req.GetApp(), req.GetPart())
	if err != nil {
		return err
	}
	if _, err := s.app(k.app); err != nil {
		return err
	}
	size := int64(req.GetPart().GetSize())
	if err := s.putSem.Acquire(ctx, size); err != nil {
		return err
	}
	defer s.putSem.Release(size)
	data, fromStore, err := s.ckpt.get(ctx, k, size, req.GetPart().GetCrc32C())
	if err != nil {
		return err
	}
	msg := &shufflepb.GetCheckpointChunk{Size: uint64(len(data)), FromStore: fromStore}
	for off := 0; ; {
		end := min(off+s.opts.ChunkSize, len(data))
		msg.Data = data[off:end]
		if err := send(msg); err != nil {
			return err
		}
		if end == len(data) {
			return nil
		}
		off = end
		msg.Size, msg.FromStore = 0, false
	}
}
