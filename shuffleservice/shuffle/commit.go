package shuffle

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"strconv"

	"shoal/shuffleservice/shufflepb"
)

// The commit protocol shared by every writer (docs/DESIGN.md §3):
//
//  1. every file is written under a temporary name, FINAL + ".tmp-" + a
//     suffix unique to the writer, so that a crash leaves only garbage the
//     node sweeps at startup;
//  2. a sorted output's index (R+1 offsets) is written under a temporary
//     name too;
//  3. the files are renamed to their final names: data then index, or the
//     R files of a hash output in order;
//  4. the writer calls Committer.CommitMapOutput with the block lengths and
//     returns the output the node now serves. When the node reused an
//     earlier attempt, this attempt's final files are removed.
//
// Any error before step 4 removes every file of the attempt (temporary and
// final). An error of the commit call itself leaves the final files alone:
// the node may have committed them, and it sweeps uncommitted files itself.
//
// Files are not fsynced: a map output lost with its machine is recomputed
// like any other lost output.

// writerState is where a writer is in its life.
type writerState uint8

const (
	stateOpen      writerState = iota // accepting records
	stateFailed                       // an I/O error happened; only Discard helps
	stateCommitted                    // the commit call was made; files belong to the node
	stateDiscarded                    // every file removed
)

// writerBase holds what every writer shares: its options, its files and
// its statistics.
type writerBase struct {
	opts  WriterOptions
	dir   string
	token string // unique suffix of this writer's temporary names
	enc   *FrameEncoder
	state writerState
	err   error // why the writer failed (stateFailed)

	data, index string // final names of a sorted output

	temps  map[string]struct{} // files under a temporary name
	finals []string            // files renamed into place, not yet committed
	stats  WriterStats
}

func newWriterBase(opts WriterOptions) (*writerBase, error) {
	dir, err := mkdirMap(&opts)
	if err != nil {
		return nil, err
	}
	enc, err := NewFrameEncoder(opts.Codec)
	if err != nil {
		return nil, err
	}
	return &writerBase{
		opts:  opts,
		data:  opts.Layout.DataPath(opts.App, opts.Shuffle, opts.Map, opts.Attempt),
		index: opts.Layout.IndexPath(opts.App, opts.Shuffle, opts.Map, opts.Attempt),
		dir:   dir,
		token: strconv.FormatUint(rand.Uint64(), 36),
		enc:   enc,
		temps: make(map[string]struct{}),
	}, nil
}

func (b *writerBase) dataPath() string  { return b.data }
func (b *writerBase) indexPath() string { return b.index }

func (b *writerBase) hashPath(r int) string {
	o := &b.opts
	return o.Layout.HashPath(o.App, o.Shuffle, o.Map, o.Attempt, r)
}

// tempPath is the temporary name of final; what tells apart the several
// temporary files of one final name (spill runs, bypass partitions).
func (b *writerBase) tempPath(final, what string) string {
	return final + TempSuffix + what + b.token
}

// Stats reports what the writer did so far.
func (b *writerBase) Stats() WriterStats { return b.stats }

// checkOpen is the guard of Write and Commit.
func (b *writerBase) checkOpen() error {
	switch b.state {
	case stateOpen:
		return nil
	case stateFailed:
		return fmt.Errorf("shuffle: writer of map %d of shuffle %d failed earlier (discard it): %w", b.opts.Map, b.opts.Shuffle, b.err)
	}
	return fmt.Errorf("%w: writer of map %d of shuffle %d is committed or discarded", ErrClosed, b.opts.Map, b.opts.Shuffle)
}

// fail records an I/O error: the writer accepts nothing more and its files
// are removed at once (Discard would do the same).
func (b *writerBase) fail(err error) error {
	if b.state == stateOpen {
		b.state = stateFailed
		b.err = err
	}
	b.removeFiles()
	return err
}

// createTemp creates a temporary file, remembered for removal.
func (b *writerBase) createTemp(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("shuffle: writer: %w", err)
	}
	b.temps[path] = struct{}{}
	return f, nil
}

// removeTemp removes a temporary file that is no longer needed.
func (b *writerBase) removeTemp(path string) error {
	delete(b.temps, path)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("shuffle: writer: %w", err)
	}
	return nil
}

// rename moves a finished temporary file to its final name.
func (b *writerBase) rename(tmp, final string) error {
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("shuffle: writer: %w", err)
	}
	delete(b.temps, tmp)
	b.finals = append(b.finals, final)
	return nil
}

// removeFiles removes every temporary and final file of the writer.
func (b *writerBase) removeFiles() error {
	var errs []error
	for p := range b.temps {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		delete(b.temps, p)
	}
	for _, p := range b.finals {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	b.finals = b.finals[:0]
	if len(errs) > 0 {
		return fmt.Errorf("shuffle: writer: discard: %w", errors.Join(errs...))
	}
	return nil
}

// discard is the shared part of Discard: closeFiles closes what the writer
// holds open before its files are removed.
func (b *writerBase) discard(closeFiles func()) error {
	if b.state == stateCommitted || b.state == stateDiscarded {
		return nil
	}
	closeFiles()
	b.enc.Close()
	b.state = stateDiscarded
	return b.removeFiles()
}

// writeIndexTemp writes the index of blocks with the given lengths under a
// temporary name and returns that name.
func (b *writerBase) writeIndexTemp(lengths []uint64) (string, error) {
	tmp := b.tempPath(b.indexPath(), "")
	f, err := b.createTemp(tmp)
	if err != nil {
		return "", err
	}
	idx := EncodeIndex(OffsetsOf(lengths))
	_, err = f.Write(idx)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("shuffle: writer: write index %s: %w", tmp, err)
	}
	b.stats.BytesWritten += int64(len(idx))
	return tmp, nil
}

// commitSorted runs steps 2-4 for a data file written to dataTmp.
func (b *writerBase) commitSorted(ctx context.Context, c Committer, dataTmp string, lengths []uint64) (*shufflepb.MapOutput, error) {
	idxTmp, err := b.writeIndexTemp(lengths)
	if err != nil {
		return nil, b.fail(err)
	}
	if err := b.rename(dataTmp, b.dataPath()); err != nil {
		return nil, b.fail(err)
	}
	if err := b.rename(idxTmp, b.indexPath()); err != nil {
		return nil, b.fail(err)
	}
	b.stats.FilesCreated = 2
	return b.commitCall(ctx, c, shufflepb.OutputKind_OUTPUT_KIND_SORTED, lengths)
}

// commitCall is step 4: the final files are in place.
func (b *writerBase) commitCall(ctx context.Context, c Committer, kind shufflepb.OutputKind, lengths []uint64) (*shufflepb.MapOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, b.fail(fmt.Errorf("shuffle: writer: commit of map %d: %w", b.opts.Map, err))
	}
	b.state = stateCommitted
	b.enc.Close()
	o := &b.opts
	out := &shufflepb.MapOutput{
		Shuffle: o.Shuffle,
		Map:     o.Map,
		Attempt: o.Attempt,
		Epoch:   o.Epoch,
		Kind:    kind,
		Lengths: lengths,
	}
	committed, err := c.CommitMapOutput(ctx, o.App, out)
	if err != nil {
		// The node may or may not have committed the files: leave them.
		return nil, fmt.Errorf("shuffle: writer: commit map %d attempt %d of shuffle %d: %w", o.Map, o.Attempt, o.Shuffle, err)
	}
	if committed == nil {
		return nil, fmt.Errorf("shuffle: writer: commit map %d attempt %d of shuffle %d: node returned no output", o.Map, o.Attempt, o.Shuffle)
	}
	if committed.GetAttempt() != o.Attempt {
		// The node serves an earlier attempt; ours is garbage. A failed
		// removal leaves files the node sweeps as uncommitted.
		_ = b.removeFiles()
	}
	b.finals = nil
	return committed, nil
}

// beginCommit is the guard of Commit.
func (b *writerBase) beginCommit(ctx context.Context, c Committer) error {
	if err := b.checkOpen(); err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("%w: writer: commit with a nil Committer", ErrInvalidArgument)
	}
	if err := ctx.Err(); err != nil {
		return b.fail(fmt.Errorf("shuffle: writer: commit of map %d: %w", b.opts.Map, err))
	}
	return nil
}
