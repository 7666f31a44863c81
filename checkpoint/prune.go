package checkpoint

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// Prune applies the retention rule to st and returns the names of the
// checkpoints it deleted:
//
//   - the complete checkpoints beyond the newest keep (by Seq) are deleted,
//     manifest first, so one whose deletion is cut short is a leftover
//     without a manifest, never a complete checkpoint with parts missing;
//   - a checkpoint without a manifest is deleted if every one of its
//     objects was written before the oldest kept checkpoint's first object
//     (by the store's clock): its writer stopped before that checkpoint
//     was begun, so it is a failed write, not one in progress. Those
//     written since are left alone: they may be being written.
//
// With no complete checkpoint, nothing is deleted. keep must be at least 1.
// A manifest that cannot be read stops Prune before it deletes anything.
//
// Prune sees only st: given a run's part of a store (RunStore), it
// never touches another run's checkpoints.
//
// In a local directory Prune also removes the temporary files of writes
// that a crash cut short (the local store's, invisible to List) once they
// are staleTempAge old, in the whole directory: no write takes that long.
func Prune(ctx context.Context, st Store, keep int) (deleted []string, err error) {
	if keep < 1 {
		return nil, invalidf("Prune keep %d: keep at least 1 checkpoint", keep)
	}
	if d, ok := dirStoreOf(st); ok {
		if err := d.removeStaleTemps(ctx, time.Now().Add(-staleTempAge)); err != nil {
			return nil, fmt.Errorf("checkpoint: prune: %w", err)
		}
	}
	objs, err := st.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("checkpoint: prune: %w", err)
	}
	type complete struct {
		c *storedCheckpoint
		m Manifest
	}
	var done []complete
	var leftovers []*storedCheckpoint
	for _, c := range groupCheckpoints(objs) {
		if !c.complete {
			leftovers = append(leftovers, c)
			continue
		}
		m, err := ReadManifest(ctx, st, c.name)
		if err != nil {
			return nil, fmt.Errorf("checkpoint: prune: %w (nothing deleted)", err)
		}
		done = append(done, complete{c, m})
	}
	if len(done) == 0 {
		return nil, nil
	}
	// Newest first.
	slices.SortFunc(done, func(a, b complete) int {
		return -cmp.Or(cmp.Compare(a.m.Seq, b.m.Seq), a.m.Created.Compare(b.m.Created), cmp.Compare(a.m.Name, b.m.Name))
	})
	kept := done[:min(keep, len(done))]
	cutoff := kept[0].c.oldest
	for _, k := range kept[1:] {
		if k.c.oldest.Before(cutoff) {
			cutoff = k.c.oldest
		}
	}
	for _, d := range slices.Backward(done[len(kept):]) { // oldest first
		if err := st.Delete(ctx, ManifestKey(d.c.name)); err != nil {
			return deleted, fmt.Errorf("checkpoint: prune %s: %w", d.c.name, err)
		}
		if err := st.Delete(ctx, d.c.keys...); err != nil {
			return deleted, fmt.Errorf("checkpoint: prune %s (its manifest is deleted): %w", d.c.name, err)
		}
		deleted = append(deleted, d.c.name)
	}
	for _, c := range leftovers {
		if !c.newest.Before(cutoff) {
			continue
		}
		// It may have been completed since the listing: then it stays.
		again, err := st.List(ctx, c.name+"/")
		if err != nil {
			return deleted, fmt.Errorf("checkpoint: prune %s: %w", c.name, err)
		}
		if slices.ContainsFunc(again, func(o ObjectInfo) bool { return o.Key == ManifestKey(c.name) }) {
			continue
		}
		if err := st.Delete(ctx, c.keys...); err != nil {
			return deleted, fmt.Errorf("checkpoint: prune %s: %w", c.name, err)
		}
		deleted = append(deleted, c.name)
	}
	return deleted, nil
}
