package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRunIDAndRef(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 123e6, time.UTC)
	id, err := NewRunID("pagerank", now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id.Run, "20260301T120000.123Z-") || len(id.Run) != len("20260301T120000.123Z-")+8 {
		t.Errorf("run ID %q", id.Run)
	}
	if other, _ := NewRunID("pagerank", now); other == id {
		t.Errorf("two runs begun at the same millisecond share the ID %s", id)
	}
	for _, tc := range []struct {
		in   string
		want Ref
		err  bool
	}{
		{in: "ranks-000030", want: Ref{Name: "ranks-000030"}},
		{in: "app/run-1/ranks-000030", want: Ref{RunID{"app", "run-1"}, "ranks-000030"}},
		{in: "app/run-1", err: true},
		{in: "a/b/c/d", err: true},
		{in: "app/../ranks", err: true},
		{in: "/run/ranks", err: true},
		{in: "app/run/_run.json", err: true},
		{in: "", err: true},
	} {
		got, err := ParseRef(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("ParseRef(%q).String() = %q", tc.in, got.String())
		}
	}
	for _, app := range []string{"", "my app", "a/b", ".hidden", "_x", strings.Repeat("a", 129)} {
		if _, err := NewRunID(app, now); !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "Options.App") {
			t.Errorf("NewRunID(%q): %v, want an error saying to set Options.App", app, err)
		}
	}
}

// runOf returns the part of st of run app/run.
func runOf(t *testing.T, st Store, app, run string) Store {
	t.Helper()
	rs, err := RunStore(st, RunID{app, run})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// testRunsIsolated: two runs write checkpoints of the same names and
// sequence numbers into one store; retention in one never touches the
// other (issue 16: a second run's checkpoint of iteration 1 was deleted
// because the first run's iterations 4 and 5 ranked above it).
func testRunsIsolated(t *testing.T, st Store) {
	ctx := context.Background()
	first, second := runOf(t, st, "pagerank", "run-1"), runOf(t, st, "pagerank", "run-2")
	for seq := int64(1); seq <= 5; seq++ {
		if _, err := writeCheckpoint(ctx, first, "ranks-"+string(rune('0'+seq)), seq, [][]byte{records(uint64(seq), 100)}); err != nil {
			t.Fatal(err)
		}
		if _, err := Prune(ctx, first, 2); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := writeCheckpoint(ctx, second, "ranks-1", 1, [][]byte{records(7, 100)}); err != nil {
		t.Fatal(err)
	}
	deleted, err := Prune(ctx, second, 2)
	if err != nil || len(deleted) != 0 {
		t.Fatalf("the second run's Prune deleted %v, %v; want nothing", deleted, err)
	}
	if _, err := ReadManifest(ctx, second, "ranks-1"); err != nil {
		t.Fatalf("the second run's newest checkpoint: %v", err)
	}
	for _, tc := range []struct {
		st   Store
		want []string
	}{{first, []string{"ranks-4", "ranks-5"}}, {second, []string{"ranks-1"}}} {
		ms, err := List(ctx, tc.st)
		if err != nil || !slices.Equal(names(ms), tc.want) {
			t.Errorf("List(%s) = %v, %v; want %v", tc.st, names(ms), err, tc.want)
		}
	}
	if got, want := PartitionURI(second, "ranks-1", 0), strings.TrimSuffix(st.String(), "/")+"/pagerank/run-2/ranks-1/part-00000"; got != want {
		t.Errorf("PartitionURI = %q, want %q", got, want)
	}
	// Every run's checkpoints, oldest first, with App and Run set.
	all, err := ListAll(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, m := range all {
		refs = append(refs, m.Ref().String())
	}
	if want := []string{"pagerank/run-1/ranks-4", "pagerank/run-1/ranks-5", "pagerank/run-2/ranks-1"}; !slices.Equal(refs, want) {
		t.Errorf("ListAll = %v, want %v", refs, want)
	}
}

// testPruneRuns: PruneRuns deletes finished runs' checkpoints, never one
// that an unfinished run reads, nothing of an unfinished run unless it
// is abandoned, and the layout before runs only when asked.
func testPruneRuns(t *testing.T, st Store) {
	ctx := context.Background()
	write := func(app, run, name string, seq int64, job string) {
		t.Helper()
		rs := runOf(t, st, app, run)
		m := Manifest{Seq: seq, NumPartitions: 1, App: app, Run: run, Job: job}
		info, err := WritePartition(ctx, rs, name, 0, records(uint64(seq), 2000))
		if err != nil {
			t.Fatal(err)
		}
		m.Partitions = []PartInfo{info}
		if err := WriteManifest(ctx, rs, name, m); err != nil {
			t.Fatal(err)
		}
	}
	begin := func(app, run string) {
		t.Helper()
		if err := BeginRun(ctx, st, RunMarker{App: app, Run: run, Host: "h", PID: 1}); err != nil {
			t.Fatal(err)
		}
	}
	end := func(app, run string) {
		t.Helper()
		if err := EndRun(ctx, st, RunID{app, run}, RunEnd{Status: "closed"}); err != nil {
			t.Fatal(err)
		}
	}
	// pr/done: finished; its ranks-2 is read by pr/resumed, which has
	// not finished. pr/running: not finished. wc/done: another
	// application, finished, with an incomplete leftover. An old-layout
	// checkpoint at the root.
	begin("pr", "done")
	write("pr", "done", "ranks-1", 1, "pagerank")
	write("pr", "done", "ranks-2", 2, "pagerank")
	write("pr", "done", "other-1", 3, "other")
	end("pr", "done")
	begin("pr", "resumed")
	if err := RecordUse(ctx, st, RunID{"pr", "resumed"}, Ref{RunID{"pr", "done"}, "ranks-2"}); err != nil {
		t.Fatal(err)
	}
	write("pr", "resumed", "ranks-3", 3, "pagerank")
	begin("pr", "running")
	write("pr", "running", "ranks-1", 1, "pagerank")
	begin("wc", "done")
	write("wc", "done", "counts", 1, "wordcount")
	if _, err := WritePartition(ctx, runOf(t, st, "wc", "done"), "leftover", 0, records(1, 10)); err != nil {
		t.Fatal(err)
	}
	end("wc", "done")
	if _, err := writeCheckpoint(ctx, st, "old-ranks", 1, [][]byte{records(3, 100)}); err != nil {
		t.Fatal(err)
	}

	runs, err := Runs(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, r := range runs {
		listed = append(listed, r.ID.String())
		if len(r.Problems) > 0 {
			t.Errorf("run %s: problems %v", r.ID, r.Problems)
		}
	}
	if want := []string{"/", "pr/done", "wc/done", "pr/resumed", "pr/running"}; !slices.Equal(listed, want) {
		t.Fatalf("Runs = %v, want %v", listed, want)
	}
	if r := runs[3]; r.Finished() || r.Marker == nil || r.Marker.Host != "h" || len(r.Uses) != 1 || r.Uses[0].String() != "pr/done/ranks-2" {
		t.Errorf("run pr/resumed: %+v", r)
	}
	if r := runs[2]; !r.Finished() || r.End.Status != "closed" || !slices.Equal(r.Incomplete, []string{"leftover"}) {
		t.Errorf("run wc/done: %+v", r)
	}
	if len(runs[0].Checkpoints) != 1 || runs[0].Checkpoints[0].App != "" {
		t.Errorf("the old layout: %+v", runs[0])
	}

	refs := func(rs []Ref) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.String())
		}
		slices.Sort(out)
		return out
	}
	// A dry run reports and deletes nothing.
	objsBefore, _ := st.List(ctx, "")
	dry, err := PruneRuns(ctx, st, PruneRunsOptions{App: "pr", DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if objsAfter, _ := st.List(ctx, ""); len(objsAfter) != len(objsBefore) {
		t.Errorf("a dry run deleted %d objects", len(objsBefore)-len(objsAfter))
	}
	if got, want := refs(dry.Deleted), []string{"pr/done/other-1", "pr/done/ranks-1"}; !slices.Equal(got, want) {
		t.Errorf("dry run would delete %v, want %v", got, want)
	}

	// Only pagerank's checkpoints of finished runs of application pr.
	res, err := PruneRuns(ctx, st, PruneRunsOptions{App: "pr", Job: "pagerank"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := refs(res.Deleted), []string{"pr/done/ranks-1"}; !slices.Equal(got, want) {
		t.Errorf("PruneRuns app pr job pagerank deleted %v, want %v", got, want)
	}
	if len(res.Kept) != 1 || res.Kept[0].String() != "pr/done/ranks-2" || res.Kept[0].ReadBy != (RunID{"pr", "resumed"}) {
		t.Errorf("kept %+v, want pr/done/ranks-2 read by pr/resumed", res.Kept)
	}
	if len(res.Removed) != 0 {
		t.Errorf("removed runs %v with a Job filter", res.Removed)
	}

	// Everything finished: pr/done keeps what pr/resumed reads, and its
	// markers; wc/done goes entirely.
	res, err = PruneRuns(ctx, st, PruneRunsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := refs(res.Deleted), []string{"pr/done/other-1", "wc/done/counts", "wc/done/leftover"}; !slices.Equal(got, want) {
		t.Errorf("PruneRuns deleted %v, want %v", got, want)
	}
	if len(res.Removed) != 1 || res.Removed[0] != (RunID{"wc", "done"}) {
		t.Errorf("removed %v, want wc/done", res.Removed)
	}
	if objs, _ := st.List(ctx, "wc/"); len(objs) != 0 {
		t.Errorf("wc/done left %d objects", len(objs))
	}
	for _, ref := range []Ref{{RunID{"pr", "done"}, "ranks-2"}, {RunID{"pr", "running"}, "ranks-1"}, {RunID{"pr", "resumed"}, "ranks-3"}} {
		if _, err := ReadManifest(ctx, runOf(t, st, ref.App, ref.Run), ref.Name); err != nil {
			t.Errorf("%s after PruneRuns: %v", ref, err)
		}
	}
	if _, err := ReadManifest(ctx, st, "old-ranks"); err != nil {
		t.Errorf("the old layout's checkpoint was deleted without OldLayout: %v", err)
	}

	// Once the reader has ended, what it read goes too.
	end("pr", "resumed")
	res, err = PruneRuns(ctx, st, PruneRunsOptions{Run: "done"})
	if err != nil {
		t.Fatal(err)
	}
	if got := refs(res.Deleted); !slices.Equal(got, []string{"pr/done/ranks-2"}) || len(res.Removed) != 1 {
		t.Errorf("after the reader ended: deleted %v, removed %v", got, res.Removed)
	}

	// An unfinished run is abandoned only when asked, and only once it
	// has written nothing for that long.
	res, err = PruneRuns(ctx, st, PruneRunsOptions{AbandonedAfter: time.Hour})
	if err != nil || len(res.Deleted) != 1 || res.Deleted[0].String() != "pr/resumed/ranks-3" {
		t.Errorf("AbandonedAfter 1h: deleted %v, %v; want only the ended run pr/resumed's", res.Deleted, err)
	}
	waitClockPast(t, st, time.Now()) // the store's clock may lag this machine's
	res, err = PruneRuns(ctx, st, PruneRunsOptions{AbandonedAfter: time.Nanosecond})
	if err != nil || len(res.Deleted) != 1 || res.Deleted[0].String() != "pr/running/ranks-1" {
		t.Errorf("AbandonedAfter 1ns: deleted %v, %v; want pr/running/ranks-1", res.Deleted, err)
	}

	if _, err := PruneRuns(ctx, st, PruneRunsOptions{OldLayout: true, App: "pr"}); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("OldLayout with App: %v, want ErrInvalidArgument", err)
	}
	res, err = PruneRuns(ctx, st, PruneRunsOptions{OldLayout: true})
	if err != nil || len(res.Deleted) != 1 || res.Deleted[0].String() != "old-ranks" {
		t.Errorf("OldLayout: deleted %v, %v", res.Deleted, err)
	}
	if objs, _ := st.List(ctx, ""); len(objs) != 1 || objs[0].Key != "clock-probe" {
		t.Errorf("after pruning everything the store holds %v", objs)
	}
}

// A manifest of version 1, from before runs, still reads.
func TestManifestVersion1(t *testing.T) {
	ctx := context.Background()
	st, _ := NewMem("v1")
	info, err := WritePartition(ctx, st, "ranks-000001", 0, records(1, 100))
	if err != nil {
		t.Fatal(err)
	}
	m := Manifest{Version: 1, Name: "ranks-000001", Seq: 1, NumPartitions: 1, Partitions: []PartInfo{info}, Created: time.Now().UTC()}
	if m.CRC32C, err = m.checksum(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m)
	if strings.Contains(string(b), `"app"`) {
		t.Fatalf("a version 1 manifest has no app field: %s", b)
	}
	if err := st.Put(ctx, ManifestKey("ranks-000001"), b); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(ctx, st, "ranks-000001")
	if err != nil || got.Version != 1 || got.App != "" {
		t.Fatalf("version 1 manifest: %+v, %v", got, err)
	}
	if _, err := ReadPartition(ctx, st, got, 0); err != nil {
		t.Fatal(err)
	}
}
