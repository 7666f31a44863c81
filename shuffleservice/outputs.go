package shuffleservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"google.golang.org/protobuf/proto"

	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// This file holds the commit of map outputs: checking a request and the
// files it names, and installing, reusing or replacing an output.

// validateMapOutput checks the fields of a map output, not its files.
func validateMapOutput(out *shufflepb.MapOutput) error {
	if out == nil {
		return fmt.Errorf("%w: commit without a map output", shuffle.ErrInvalidArgument)
	}
	if k := out.GetKind(); k != shufflepb.OutputKind_OUTPUT_KIND_SORTED && k != shufflepb.OutputKind_OUTPUT_KIND_HASH {
		return fmt.Errorf("%w: shuffle %d map %d: output kind %v (want SORTED or HASH)", shuffle.ErrInvalidArgument, out.GetShuffle(), out.GetMap(), k)
	}
	if n := len(out.GetLengths()); n < 1 || n > shuffle.MaxPartitions {
		return fmt.Errorf("%w: shuffle %d map %d: %d reduce partitions outside [1, %d]", shuffle.ErrInvalidArgument, out.GetShuffle(), out.GetMap(), n, shuffle.MaxPartitions)
	}
	var sum uint64
	for r, l := range out.GetLengths() {
		if l > math.MaxInt64-sum {
			return fmt.Errorf("%w: shuffle %d map %d: length %d of reduce %d overflows the output's size", shuffle.ErrInvalidArgument, out.GetShuffle(), out.GetMap(), l, r)
		}
		sum += l
	}
	return nil
}

// outputSize is the bytes on disk of a map output.
func outputSize(out *shufflepb.MapOutput) int64 {
	var n int64
	for _, l := range out.Lengths {
		n += int64(l)
	}
	if out.Kind == shufflepb.OutputKind_OUTPUT_KIND_SORTED {
		n += int64(shuffle.IndexSize(len(out.Lengths)))
	}
	return n
}

// outputFiles lists the final files of a map output.
func outputFiles(l shuffle.Layout, app string, out *shufflepb.MapOutput) []string {
	if out.Kind == shufflepb.OutputKind_OUTPUT_KIND_SORTED {
		return []string{l.DataPath(app, out.Shuffle, out.Map, out.Attempt), l.IndexPath(app, out.Shuffle, out.Map, out.Attempt)}
	}
	files := make([]string, len(out.Lengths))
	for r := range out.Lengths {
		files[r] = l.HashPath(app, out.Shuffle, out.Map, out.Attempt, r)
	}
	return files
}

// CommitMapOutput records a finished map output.
func (s *Server) CommitMapOutput(ctx context.Context, req *shufflepb.CommitRequest) (*shufflepb.CommitResponse, error) {
	committed, reused, err := s.commit(ctx, req.GetApp(), req.GetOutput())
	if err != nil {
		return nil, nodewire.ToStatus(err)
	}
	return &shufflepb.CommitResponse{Committed: committed, Reused: reused}, nil
}

// commit installs out, or keeps the committed output of the same map task:
//
//   - same attempt already committed: an idempotent retry, returns it;
//   - another attempt committed with an epoch >= out's: returns that one
//     with reused set (the caller removes its own files);
//   - another attempt committed with a lower epoch: out replaces it, in the
//     catalogue first (synced), then the old files are deleted.
//
// The returned output is shared: the caller must not modify it.
func (s *Server) commit(ctx context.Context, app string, out *shufflepb.MapOutput) (*shufflepb.MapOutput, bool, error) {
	if err := shuffle.ValidateID("application", app); err != nil {
		return nil, false, err
	}
	if err := validateMapOutput(out); err != nil {
		return nil, false, err
	}
	if err := s.lockCatalog(); err != nil {
		return nil, false, err
	}
	defer s.catMu.RUnlock()
	a, err := s.app(app)
	if err != nil {
		return nil, false, err
	}
	l := s.stripe(app, out.Shuffle, out.Map)
	l.Lock()
	defer l.Unlock()

	key := outputKey{out.Shuffle, out.Map}
	s.mu.RLock()
	cur := a.outputs[key]
	s.mu.RUnlock()
	if cur != nil {
		switch {
		case cur.pb.Attempt == out.Attempt:
			if cur.pb.Kind != out.Kind || !slices.Equal(cur.pb.Lengths, out.Lengths) {
				return nil, false, fmt.Errorf("%w: app %s shuffle %d map %d attempt %d is already committed with other lengths or kind (an attempt number must not be reused for different output)",
					shuffle.ErrInvalidArgument, app, out.Shuffle, out.Map, out.Attempt)
			}
			return cur.pb, false, nil
		case out.Epoch <= cur.pb.Epoch:
			s.m.reused.Add(1)
			return cur.pb, true, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if err := s.verifyFiles(app, out); err != nil {
		return nil, false, err
	}
	pb := &shufflepb.MapOutput{
		Shuffle: out.Shuffle, Map: out.Map, Attempt: out.Attempt, Epoch: out.Epoch,
		Kind: out.Kind, Lengths: slices.Clone(out.Lengths),
	}
	if err := s.cat.putOutput(app, pb); err != nil {
		return nil, false, err
	}
	o := &output{pb: pb, serial: s.nextSerial.Add(1), size: outputSize(pb)}
	s.mu.Lock()
	a.outputs[key] = o
	s.countOutputLocked(app, key, o, 1)
	if cur != nil {
		s.countOutputLocked(app, key, cur, -1)
	}
	s.mu.Unlock()
	s.m.commits.Add(1)
	if cur != nil {
		s.m.replaced.Add(1)
		s.cache.Del(cur.serial)
		s.removeFiles(outputFiles(s.layout, app, cur.pb))
		s.log.Info("map output replaced", "app", app, "shuffle", out.Shuffle, "map", out.Map,
			"old_attempt", cur.pb.Attempt, "old_epoch", cur.pb.Epoch, "attempt", out.Attempt, "epoch", out.Epoch)
	}
	return pb, false, nil
}

// verifyFiles checks that the final files of out exist with the sizes it
// states and, for a sorted output, that its index holds its lengths.
func (s *Server) verifyFiles(app string, out *shufflepb.MapOutput) error {
	what := fmt.Sprintf("commit of app %s shuffle %d map %d attempt %d", app, out.Shuffle, out.Map, out.Attempt)
	if out.Kind == shufflepb.OutputKind_OUTPUT_KIND_HASH {
		for r, l := range out.Lengths {
			if err := checkSize(what, s.layout.HashPath(app, out.Shuffle, out.Map, out.Attempt, r), int64(l)); err != nil {
				return err
			}
		}
		return nil
	}
	offsets := shuffle.OffsetsOf(out.Lengths)
	data := s.layout.DataPath(app, out.Shuffle, out.Map, out.Attempt)
	if err := checkSize(what, data, int64(offsets[len(offsets)-1])); err != nil {
		return err
	}
	index := s.layout.IndexPath(app, out.Shuffle, out.Map, out.Attempt)
	if err := checkSize(what, index, int64(shuffle.IndexSize(len(out.Lengths)))); err != nil {
		return err
	}
	b, err := os.ReadFile(index)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	got, err := shuffle.DecodeIndex(b)
	if err != nil {
		return fmt.Errorf("%s: index file %s: %w", what, index, err)
	}
	if !slices.Equal(got, offsets) {
		return fmt.Errorf("%w: %s: index file %s does not hold the committed lengths", shuffle.ErrInvalidArgument, what, index)
	}
	return nil
}

// checkSize checks that file exists with size bytes.
func checkSize(what, file string, size int64) error {
	fi, err := os.Stat(file)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: %s: file %s does not exist (write it and rename it to its final name before committing)", shuffle.ErrInvalidArgument, what, file)
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s: %s is not a regular file", shuffle.ErrInvalidArgument, what, file)
	case fi.Size() != size:
		return fmt.Errorf("%w: %s: file %s has %d bytes, the commit says %d", shuffle.ErrInvalidArgument, what, file, fi.Size(), size)
	}
	return nil
}

// removeFiles deletes files, ignoring those already gone.
func (s *Server) removeFiles(files []string) {
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("cannot delete file of a map output", "file", f, "err", err)
		}
	}
}

// readIndex reads and verifies the index of a committed sorted output.
func (s *Server) readIndex(app string, o *output) ([]uint64, error) {
	path := s.layout.IndexPath(app, o.pb.Shuffle, o.pb.Map, o.pb.Attempt)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	want := shuffle.IndexSize(o.partitions())
	if fi.Size() != int64(want) {
		return nil, corruptf("index file %s has %d bytes, want %d for %d partitions (recompute the map output)", path, fi.Size(), want, o.partitions())
	}
	b := make([]byte, want)
	if _, err := io.ReadFull(f, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, corruptf("index file %s truncated while read (recompute the map output)", path)
		}
		return nil, err
	}
	offsets, err := shuffle.DecodeIndex(b)
	if err != nil {
		return nil, fmt.Errorf("index file %s: %w (recompute the map output)", path, err)
	}
	for r, l := range o.pb.Lengths {
		if offsets[r+1]-offsets[r] != l {
			return nil, corruptf("index file %s: block %d has %d bytes, the catalogue says %d (recompute the map output)", path, r, offsets[r+1]-offsets[r], l)
		}
	}
	return offsets, nil
}

// cloneOutput returns a copy of a map output safe to hand out.
func cloneOutput(o *shufflepb.MapOutput) *shufflepb.MapOutput {
	return proto.Clone(o).(*shufflepb.MapOutput)
}
