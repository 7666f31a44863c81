package shuffleservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"shoal/blockstore"
	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// The block service: PutBlock, GetBlock and RemoveBlocks put the node's
// block store (package blockstore) on the wire. See doc.go, "Cached
// blocks", for the protocol.

// PutBlock receives a block and stores it.
func (s *Server) PutBlock(stream shufflepb.Shuffle_PutBlockServer) error {
	resp, err := s.putBlock(stream.Context(), stream.Recv)
	if err != nil {
		return nodewire.ToStatus(err)
	}
	return stream.SendAndClose(resp)
}

// putBlock checks the header of a PutBlock stream before it receives any
// data: a bad ID or level, a size above MaxBlockBytes or an unknown
// application is refused at once. It then waits until the block's size
// fits in BlockBytesInFlight, receives exactly that many bytes, checks
// their CRC32-C and stores them.
func (s *Server) putBlock(ctx context.Context, recv func() (*shufflepb.PutBlockChunk, error)) (*shufflepb.PutBlockResponse, error) {
	if s.isClosed.Load() {
		return nil, shuffle.ErrClosed
	}
	first, err := recv()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: PutBlock stream ended before its header", blockstore.ErrInvalidArgument)
	}
	if err != nil {
		return nil, err
	}
	h := first.GetHeader()
	if h == nil {
		return nil, fmt.Errorf("%w: the first chunk of a PutBlock stream carries no header", blockstore.ErrInvalidArgument)
	}
	id, err := blockIDFromPB(h.GetId())
	if err != nil {
		return nil, err
	}
	level, err := putLevelFromPB(h.GetLevel())
	if err != nil {
		return nil, fmt.Errorf("%w (block %s)", err, id)
	}
	if level != blockstore.DiskOnly && s.opts.CacheBytes == 0 {
		return nil, fmt.Errorf("%w: block %s at %v: this node has no memory for blocks (--cache-bytes 0); put it DiskOnly", blockstore.ErrInvalidArgument, id, level)
	}
	size := h.GetSize()
	if size > uint64(s.opts.MaxBlockBytes) {
		return nil, fmt.Errorf("%w: block %s of %d bytes exceeds this node's maximum block size of %d bytes (--max-block-bytes); split the partition or raise the limit",
			blockstore.ErrInvalidArgument, id, size, s.opts.MaxBlockBytes)
	}
	a, err := s.app(id.App)
	if err != nil {
		return nil, err
	}
	if err := s.putSem.Acquire(ctx, int64(size)); err != nil {
		return nil, err
	}
	defer s.putSem.Release(int64(size))

	data, err := recvExactly(first, recv, size, blockstore.ErrInvalidArgument, "block "+id.String())
	if err != nil {
		return nil, err
	}
	if sum := nodewire.Checksum(data); sum != h.GetCrc32C() {
		return nil, corruptf("block %s was damaged in flight: CRC32-C %08x, the header says %08x (put it again)", id, sum, h.GetCrc32C())
	}
	stored, evicted, err := s.blocks.Put(ctx, id, level, int(h.GetPriority()), data)
	if cur, _ := s.app(id.App); cur != a {
		// The application was removed while the block was received or
		// stored: perhaps after the block store forgot its blocks (the
		// block must not outlive it), perhaps while its directory moved to
		// the trash under the block's file (the put then failed).
		if err == nil {
			if _, err := s.blocks.Remove(id); err != nil && !errors.Is(err, blockstore.ErrClosed) {
				s.log.Warn("cannot remove the block of a removed application", "block", id, "err", err)
			}
		}
		return nil, fmt.Errorf("%w: %q was removed from this node while its block %s was being stored", shuffle.ErrUnknownApp, id.App, id)
	}
	if err != nil {
		return nil, err
	}
	s.m.blockPuts.Add(1)
	s.m.blockBytesIn.Add(size)
	resp := &shufflepb.PutBlockResponse{Stored: nodewire.LevelToPB(stored)}
	for _, e := range evicted {
		if e.ID.App != id.App {
			continue // another application's block: not the caller's to know
		}
		resp.Evicted = append(resp.Evicted, &shufflepb.EvictedBlock{Id: nodewire.BlockIDToPB(e.ID), Level: nodewire.LevelToPB(e.Level), ToDisk: e.ToDisk})
	}
	return resp, nil
}

// GetBlock streams a block, or one chunk with found unset.
func (s *Server) GetBlock(req *shufflepb.GetBlockRequest, stream shufflepb.Shuffle_GetBlockServer) error {
	return nodewire.ToStatus(s.getBlock(stream.Context(), req, stream.Send))
}

func (s *Server) getBlock(ctx context.Context, req *shufflepb.GetBlockRequest, send func(*shufflepb.GetBlockChunk) error) error {
	if s.isClosed.Load() {
		return shuffle.ErrClosed
	}
	id, err := blockIDFromPB(req.GetId())
	if err != nil {
		return err
	}
	if _, err := s.app(id.App); err != nil {
		return err
	}
	data, level, found, err := s.blocks.Get(ctx, id)
	if err != nil {
		return err
	}
	if !found {
		return send(&shufflepb.GetBlockChunk{})
	}
	msg := &shufflepb.GetBlockChunk{Found: true, Level: nodewire.LevelToPB(level), Size: uint64(len(data)), Crc32C: nodewire.Checksum(data)}
	for off := 0; ; {
		end := min(off+s.opts.ChunkSize, len(data))
		msg.Data = data[off:end]
		// gRPC's Send marshals the message before it returns, so msg is
		// reused (as in Fetch).
		if err := send(msg); err != nil {
			return err
		}
		s.m.blockBytesOut.Add(uint64(end - off))
		if end == len(data) {
			return nil
		}
		off = end
		msg.Found, msg.Level, msg.Size, msg.Crc32C = false, 0, 0, 0
	}
}

// RemoveBlocks removes every block of one RDD of an application.
func (s *Server) RemoveBlocks(ctx context.Context, req *shufflepb.RemoveBlocksRequest) (*shufflepb.RemoveBlocksResponse, error) {
	n, err := s.removeBlocks(req.GetApp(), req.GetRdd())
	if err != nil {
		return nil, nodewire.ToStatus(err)
	}
	return &shufflepb.RemoveBlocksResponse{Removed: uint64(n)}, nil
}

func (s *Server) removeBlocks(app string, rdd int64) (int, error) {
	if s.isClosed.Load() {
		return 0, shuffle.ErrClosed
	}
	// Partition 0 stands for every partition: only app and rdd are checked.
	if _, err := blockIDFromPB(&shufflepb.BlockId{App: app, Rdd: rdd}); err != nil {
		return 0, err
	}
	if _, err := s.app(app); err != nil {
		return 0, err
	}
	n, err := s.blocks.RemoveRDD(app, int(rdd))
	if err == nil {
		s.log.Debug("blocks removed", "app", app, "rdd", rdd, "blocks", n)
	}
	return n, err
}

// blockIDFromPB returns the block ID of id, or an error wrapping
// blockstore.ErrInvalidArgument if it is not a valid one.
func blockIDFromPB(id *shufflepb.BlockId) (blockstore.BlockID, error) {
	rdd, part := id.GetRdd(), id.GetPartition()
	if rdd < 0 || rdd > math.MaxInt32 || part < 0 || part > math.MaxInt32 {
		return blockstore.BlockID{}, fmt.Errorf("%w: block %s/rdd_%d_%d: RDD and partition must be in [0, %d]",
			blockstore.ErrInvalidArgument, id.GetApp(), rdd, part, math.MaxInt32)
	}
	b := blockstore.BlockID{App: id.GetApp(), RDD: int(rdd), Partition: int(part)}
	if err := b.Validate(); err != nil {
		return blockstore.BlockID{}, err
	}
	return b, nil
}

// putLevelFromPB returns the level a put asks for: MemorySer,
// MemoryAndDisk or DiskOnly.
func putLevelFromPB(l shufflepb.BlockLevel) (blockstore.Level, error) {
	level, ok := nodewire.LevelFromPB(l)
	if !ok || level == blockstore.None {
		return blockstore.None, fmt.Errorf("%w: level %v (want MEMORY_SER, MEMORY_AND_DISK or DISK_ONLY)", blockstore.ErrInvalidArgument, l)
	}
	return level, nil
}

// putChunk is a chunk of a client-streaming put (PutBlock, PutCheckpoint):
// a header in the first only, data in any.
type putChunk[H any] interface {
	GetHeader() H
	GetData() []byte
}

// recvExactly receives the data of a put stream whose first chunk
// (header included) is first: exactly size bytes, from first and the
// chunks recv returns until io.EOF. More or fewer bytes, or a second
// header, is an error wrapping invalid that names what.
func recvExactly[H comparable, C putChunk[H]](first C, recv func() (C, error), size uint64, invalid error, what string) ([]byte, error) {
	var none H
	data := make([]byte, 0, size)
	for chunk := first; ; {
		if len(chunk.GetData()) > cap(data)-len(data) {
			return nil, fmt.Errorf("%w: %s: the stream carries more than the %d bytes its header announced", invalid, what, size)
		}
		data = append(data, chunk.GetData()...)
		var err error
		chunk, err = recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if chunk.GetHeader() != none {
			return nil, fmt.Errorf("%w: %s: the stream carries a second header", invalid, what)
		}
	}
	if uint64(len(data)) != size {
		return nil, fmt.Errorf("%w: %s: the stream ended after %d of the %d bytes its header announced", invalid, what, len(data), size)
	}
	return data, nil
}
