package shuffleservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// Fetch streams the requested blocks as whole, verified frames.
func (s *Server) Fetch(req *shufflepb.FetchRequest, stream shufflepb.Shuffle_FetchServer) error {
	return nodewire.ToStatus(s.fetch(stream.Context(), req, stream.Send))
}

// errOutputGone reports that a committed output's file vanished: it was
// replaced or removed after it was looked up. fetch looks it up again.
var errOutputGone = errors.New("shuffle: map output files gone")

// fetch validates the whole request, then sends its blocks in order
// through send. Nothing is sent for a request that fails validation.
func (s *Server) fetch(ctx context.Context, req *shufflepb.FetchRequest, send func(*shufflepb.FetchChunk) error) error {
	s.m.fetchRequests.Add(1)
	if s.isClosed.Load() {
		return shuffle.ErrClosed
	}
	app := req.GetApp()
	if err := shuffle.ValidateID("application", app); err != nil {
		return err
	}
	a, err := s.app(app)
	if err != nil {
		return err
	}
	var total uint64
	for _, br := range req.GetBlocks() {
		if br.GetReduceStart() > br.GetReduceEnd() {
			return fmt.Errorf("%w: fetch of shuffle %d map %d: reduce range [%d, %d) is reversed", shuffle.ErrInvalidArgument, req.GetShuffle(), br.GetMap(), br.GetReduceStart(), br.GetReduceEnd())
		}
		total += uint64(br.GetReduceEnd() - br.GetReduceStart())
	}
	if max := uint64(s.opts.MaxBlocksPerRequest); total > max {
		return fmt.Errorf("%w: fetch request of %d blocks exceeds %d (split it into several requests)", shuffle.ErrInvalidArgument, total, max)
	}
	for _, br := range req.GetBlocks() {
		if _, err := s.lookup(a, app, req.GetShuffle(), br.GetMap(), br.GetReduceEnd()); err != nil {
			return err
		}
	}

	fs := &fetchStream{s: s, ctx: ctx, send: send, app: app, shuffle: req.GetShuffle()}
	fs.buf = s.getBuf()
	defer func() { s.putBuf(fs.buf) }()
	for _, br := range req.GetBlocks() {
		if err := fs.serveRange(a, br.GetMap(), br.GetReduceStart(), br.GetReduceEnd()); err != nil {
			if errors.Is(err, shuffle.ErrCorrupt) {
				s.m.corrupt.Add(1)
				s.log.Warn("corrupt map output on disk", "err", err)
			}
			return err
		}
	}
	return nil
}

// lookup returns the committed output of (app, shuffle, mapID), checking
// that it has at least end reduce partitions.
func (s *Server) lookup(a *appState, app string, shuffleID, mapID, end uint32) (*output, error) {
	s.mu.RLock()
	o := a.outputs[outputKey{shuffleID, mapID}]
	s.mu.RUnlock()
	if o == nil {
		return nil, fmt.Errorf("%w: app %s shuffle %d map %d has no committed output on this node (recompute the map task)", shuffle.ErrNoMapOutput, app, shuffleID, mapID)
	}
	if r := o.partitions(); uint64(end) > uint64(r) {
		return nil, fmt.Errorf("%w: app %s shuffle %d map %d: reduce partition %d is not below R = %d", shuffle.ErrOutOfRange, app, shuffleID, mapID, end-1, r)
	}
	return o, nil
}

func (s *Server) getBuf() []byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 0, s.opts.ChunkSize+shuffle.FrameHeaderSize)
}

// putBuf keeps buffers of at most a chunk plus a default frame, so one
// fetch of a huge frame does not pin its buffer.
func (s *Server) putBuf(b []byte) {
	if cap(b) <= s.opts.ChunkSize+shuffle.FrameHeaderSize+2*shuffle.DefaultFrameSize {
		b = b[:0]
		s.bufs.Put(&b)
	}
}

// fetchStream is the state of one Fetch: its read buffer and its reusable
// message.
type fetchStream struct {
	s       *Server
	ctx     context.Context
	send    func(*shufflepb.FetchChunk) error
	app     string
	shuffle uint32
	buf     []byte
	msg     shufflepb.FetchChunk
}

// serveRange sends blocks [start, end) of a map output. If the output is
// replaced or removed while it is served, the remaining blocks come from
// the output that replaced it (every block is whole from one attempt).
func (fs *fetchStream) serveRange(a *appState, mapID, start, end uint32) error {
	for tries := 0; ; tries++ {
		o, err := fs.s.lookup(a, fs.app, fs.shuffle, mapID, end)
		if err != nil {
			return err
		}
		next, err := fs.serveOutput(o, start, end)
		if !errors.Is(err, errOutputGone) {
			return err
		}
		if cur, _ := fs.s.lookup(a, fs.app, fs.shuffle, mapID, end); cur == o || tries == 100 {
			// Still committed, yet its file is missing.
			return corruptf("app %s shuffle %d map %d attempt %d: a committed file is missing (recompute the map output)", fs.app, fs.shuffle, mapID, o.pb.Attempt)
		}
		start = next
	}
}

// serveOutput sends blocks [start, end) of o. On errOutputGone it returns
// the first block not sent.
func (fs *fetchStream) serveOutput(o *output, start, end uint32) (uint32, error) {
	p := o.pb
	layout := fs.s.layout
	if p.Kind == shufflepb.OutputKind_OUTPUT_KIND_HASH {
		for r := start; r < end; r++ {
			if p.Lengths[r] == 0 {
				if err := fs.sendBlock(nil, "", o, r, 0, 0); err != nil {
					return r, err
				}
				continue
			}
			path := layout.HashPath(fs.app, p.Shuffle, p.Map, p.Attempt, int(r))
			f, err := openData(path)
			if err != nil {
				return r, err
			}
			err = fs.sendBlock(f, path, o, r, 0, int64(p.Lengths[r]))
			f.Close()
			if err != nil {
				return r, err
			}
		}
		return end, nil
	}
	if start == end {
		return end, nil
	}
	offsets, err := fs.s.offsets(fs.app, o)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return start, errOutputGone
		}
		return start, fmt.Errorf("app %s shuffle %d map %d attempt %d: %w", fs.app, p.Shuffle, p.Map, p.Attempt, err)
	}
	path := layout.DataPath(fs.app, p.Shuffle, p.Map, p.Attempt)
	f, err := openData(path)
	if err != nil {
		return start, err
	}
	defer f.Close()
	for r := start; r < end; r++ {
		if err := fs.sendBlock(f, path, o, r, int64(offsets[r]), int64(offsets[r+1])); err != nil {
			return r, err
		}
	}
	return end, nil
}

func openData(path string) (*os.File, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errOutputGone
	}
	return f, err
}

// offsets returns the R+1 offsets of a sorted output, from the index
// cache or, on a miss, from its verified index file.
func (s *Server) offsets(app string, o *output) ([]uint64, error) {
	if off, ok := s.cache.Get(o.serial); ok {
		s.m.cacheHits.Add(1)
		return off, nil
	}
	s.m.cacheMisses.Add(1)
	off, err := s.readIndex(app, o)
	if err != nil {
		return nil, err
	}
	s.cache.Set(o.serial, off, int64(8*len(off)))
	return off, nil
}

// sendBlock sends bytes [start, end) of f, block reduce of o, as chunks
// of whole frames, each verified against its checksum first. A chunk holds
// at most ChunkSize bytes, or one frame if that frame is larger.
func (fs *fetchStream) sendBlock(f *os.File, path string, o *output, reduce uint32, start, end int64) error {
	chunk := int64(max(fs.s.opts.ChunkSize, shuffle.FrameHeaderSize))
	corrupt := func(at int64, format string, args ...any) error {
		return corruptf("app %s shuffle %d map %d attempt %d reduce %d: file %s at offset %d: %s (recompute the map output)",
			fs.app, o.pb.Shuffle, o.pb.Map, o.pb.Attempt, reduce, path, at, fmt.Sprintf(format, args...))
	}
	buf := fs.buf[:cap(fs.buf)]
	// buf[:have] holds the file's bytes from pos on.
	pos, have := start, 0
	read := func(n int) error {
		if n > len(buf) {
			nb := make([]byte, n)
			copy(nb, buf[:have])
			buf = nb
			fs.buf = nb[:0]
		}
		got, err := f.ReadAt(buf[have:n], pos+int64(have))
		if got < n-have {
			if err == nil || errors.Is(err, io.EOF) {
				return corrupt(pos+int64(have+got), "data file truncated: block %d needs bytes up to %d", reduce, end)
			}
			return fmt.Errorf("shuffle: read %s: %w", path, err)
		}
		have = n
		return nil
	}
	for {
		if err := fs.ctx.Err(); err != nil {
			return err
		}
		n := 0 // bytes of whole verified frames at the start of buf
		if pos < end {
			if win := int(min(end-pos, chunk)); have < win {
				if err := read(win); err != nil {
					return err
				}
			}
			for n < have && have-n >= shuffle.FrameHeaderSize {
				size, err := shuffle.FrameSize(buf[n:have])
				if err != nil {
					return corrupt(pos+int64(n), "%v", err)
				}
				if pos+int64(n+size) > end {
					return corrupt(pos+int64(n), "frame of %d bytes overruns the block's end at %d", size, end)
				}
				if n+size > have {
					if n == 0 { // a frame larger than a chunk goes alone
						if err := read(size); err != nil {
							return err
						}
						continue
					}
					break
				}
				if _, _, err := shuffle.NextFrame(buf[n : n+size]); err != nil {
					return corrupt(pos+int64(n), "%v", err)
				}
				n += size
			}
			if n == 0 {
				return corrupt(pos, "block ends inside a frame header (%d bytes left)", end-pos)
			}
		}
		// The message and its data are reused once send returns: gRPC's
		// Send marshals the message before it returns, and this server
		// installs no stats handler that would keep it.
		fs.msg.Map, fs.msg.Reduce = o.pb.Map, reduce
		fs.msg.Data = buf[:n]
		fs.msg.End = pos+int64(n) == end
		if err := fs.send(&fs.msg); err != nil {
			return err
		}
		fs.s.m.bytesServed.Add(uint64(n))
		if fs.msg.End {
			fs.s.m.blocksServed.Add(1)
			return nil
		}
		copy(buf, buf[n:have])
		have -= n
		pos += int64(n)
	}
}
