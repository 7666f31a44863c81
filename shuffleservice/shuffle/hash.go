package shuffle

import (
	"context"

	"shoal/shuffleservice/shufflepb"
)

// commitHash commits a ModeHash output: R files, one per reduce partition,
// every one created even if empty, so a map output is always R files.
// Each file is a block: whole frames.
func (w *bucketWriter) commitHash(ctx context.Context, c Committer) (*shufflepb.MapOutput, error) {
	if err := w.finishFiles(true); err != nil {
		return nil, w.fail(err)
	}
	for r, tmp := range w.paths {
		if err := w.rename(tmp, w.hashPath(r)); err != nil {
			return nil, w.fail(err)
		}
		w.stats.BytesWritten += w.sizes[r]
	}
	w.stats.FilesCreated = len(w.paths)
	return w.commitCall(ctx, c, shufflepb.OutputKind_OUTPUT_KIND_HASH, w.lengths())
}
