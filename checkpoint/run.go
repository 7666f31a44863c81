package checkpoint

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"shoal/internal/ident"
)

// The layout of a store shared by runs (doc.go, "Runs"):
//
//	APP/RUN/_run.json            RunMarker: the run began (BeginRun)
//	APP/RUN/_uses/APP2/RUN2/NAME  the run reads checkpoint NAME of run APP2/RUN2 (RecordUse)
//	APP/RUN/NAME/part-00000 ...  its checkpoints, as in layout.go
//	APP/RUN/NAME/manifest.json
//	APP/RUN/_end.json            RunEnd: the run ended (EndRun)
//
// Checkpoint names start with a letter or digit (ValidateName), so the
// '_' names never collide with one. Keys of two elements (NAME/...) are
// checkpoints of the layout before runs, at the store's root.
const (
	runMarkerFile = "_run.json"
	runEndFile    = "_end.json"
	runUsesDir    = "_uses"
)

// RunID identifies a run: one driver's life (a client.Context), under
// the application's name. Its checkpoints live under APP/RUN/ in the
// store (RunStore), so retention in one run never sees another's.
type RunID struct {
	App string `json:"app"`
	Run string `json:"run"`
}

// NewRunID makes the ID of a run of app beginning at now: the UTC time to
// the millisecond and 32 random bits, e.g. 20260301T120000.123Z-9f3a07c2,
// so runs sort by start and two runs of one application never share one.
func NewRunID(app string, now time.Time) (RunID, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return RunID{}, fmt.Errorf("checkpoint: run ID: %w", err)
	}
	id := RunID{App: app, Run: now.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b[:])}
	return id, id.Validate()
}

// String is the run's prefix in a store, APP/RUN.
func (r RunID) String() string { return r.App + "/" + r.Run }

// IsZero reports whether r names no run: the store's root, where
// checkpoints of the layout before runs are.
func (r RunID) IsZero() bool { return r == RunID{} }

// Validate reports whether r may name a run: App and Run are each one
// path element as a checkpoint name is (ValidateName).
func (r RunID) Validate() error {
	if !ident.Valid(r.App) {
		return invalidf("application name %q cannot name runs in a checkpoint store: it must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit (set client.Options.App)", r.App)
	}
	if !ident.Valid(r.Run) {
		return invalidf("run ID %q must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. 20260301T120000.123Z-9f3a07c2)", r.Run)
	}
	return nil
}

// Ref names a checkpoint in a store: checkpoint Name of run RunID, or,
// with a zero RunID, checkpoint Name at the store's root (the layout
// before runs).
type Ref struct {
	RunID
	Name string
}

// String is APP/RUN/NAME, or NAME at the root; ParseRef reads it back.
func (r Ref) String() string {
	if r.RunID.IsZero() {
		return r.Name
	}
	return r.RunID.String() + "/" + r.Name
}

// ParseRef reads APP/RUN/NAME, or NAME (a zero RunID).
func ParseRef(s string) (Ref, error) {
	parts := strings.Split(s, "/")
	var r Ref
	switch len(parts) {
	case 1:
		r.Name = parts[0]
	case 3:
		r = Ref{RunID{parts[0], parts[1]}, parts[2]}
		if err := r.RunID.Validate(); err != nil {
			return Ref{}, err
		}
	default:
		return Ref{}, invalidf("checkpoint %q: want NAME or APP/RUN/NAME", s)
	}
	if err := ValidateName(r.Name); err != nil {
		return Ref{}, err
	}
	return r, nil
}

// Ref is where the manifest's checkpoint is: its App, Run and Name.
func (m *Manifest) Ref() Ref { return Ref{RunID{m.App, m.Run}, m.Name} }

// RunStore is the part of st that holds run id's checkpoints: a Store
// whose keys are relative to APP/RUN/, on which WritePartition,
// WriteManifest, List, ReadPartition and Prune work as on a store of
// their own. A zero id is st itself.
func RunStore(st Store, id RunID) (Store, error) {
	if id.IsZero() {
		return st, nil
	}
	if err := id.Validate(); err != nil {
		return nil, err
	}
	return &subStore{base: st, prefix: id.String()}, nil
}

// subStore is a Store under a prefix of another.
type subStore struct {
	base   Store
	prefix string // without a trailing '/'
}

func (s *subStore) key(k string) string { return s.prefix + "/" + k }

func (s *subStore) Put(ctx context.Context, key string, data []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return s.base.Put(ctx, s.key(key), data)
}

func (s *subStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return s.base.Get(ctx, s.key(key))
}

func (s *subStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	objs, err := s.base.List(ctx, s.prefix+"/"+prefix)
	if err != nil {
		return nil, err
	}
	for i := range objs {
		objs[i].Key = strings.TrimPrefix(objs[i].Key, s.prefix+"/")
	}
	return objs, nil
}

func (s *subStore) Delete(ctx context.Context, keys ...string) error {
	full := make([]string, len(keys))
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
		full[i] = s.key(k)
	}
	return s.base.Delete(ctx, full...)
}

func (s *subStore) String() string { return strings.TrimSuffix(s.base.String(), "/") + "/" + s.prefix }

// dirStoreOf returns the local directory store st is, or is a part of.
func dirStoreOf(st Store) (*DirStore, bool) {
	if s, ok := st.(*subStore); ok {
		st = s.base
	}
	d, ok := st.(*DirStore)
	return d, ok
}

// RunMarker is a run's APP/RUN/_run.json: written when the run first
// completes a checkpoint or reads another run's (BeginRun). It says who
// began the run, for people.
type RunMarker struct {
	App     string    `json:"app"`
	Run     string    `json:"run"`
	Started time.Time `json:"started"`
	Host    string    `json:"host,omitempty"`
	PID     int       `json:"pid,omitempty"`
}

// RunEnd is a run's APP/RUN/_end.json, written when it ends (EndRun,
// from client.Context.Close). A run without one is running, or its
// driver died; only a run with one is finished.
type RunEnd struct {
	Ended  time.Time `json:"ended"`
	Status string    `json:"status,omitempty"`
}

// BeginRun writes run m's marker. Writing it again replaces it.
func BeginRun(ctx context.Context, st Store, m RunMarker) error {
	id := RunID{m.App, m.Run}
	if err := id.Validate(); err != nil {
		return err
	}
	if m.Started.IsZero() {
		m.Started = time.Now().UTC()
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return invalidf("run %s marker: %v", id, err)
	}
	if err := st.Put(ctx, id.String()+"/"+runMarkerFile, b); err != nil {
		return fmt.Errorf("checkpoint: begin run %s: %w", id, err)
	}
	return nil
}

// EndRun writes run id's end marker: from then on the run is finished,
// and PruneRuns may delete its checkpoints.
func EndRun(ctx context.Context, st Store, id RunID, e RunEnd) error {
	if err := id.Validate(); err != nil {
		return err
	}
	if e.Ended.IsZero() {
		e.Ended = time.Now().UTC()
	}
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return invalidf("run %s end marker: %v", id, err)
	}
	if err := st.Put(ctx, id.String()+"/"+runEndFile, b); err != nil {
		return fmt.Errorf("checkpoint: end run %s: %w", id, err)
	}
	return nil
}

// RecordUse records that run user reads checkpoint used of another run:
// while user is not finished, PruneRuns keeps that checkpoint. Record it
// before reading the checkpoint's manifest.
func RecordUse(ctx context.Context, st Store, user RunID, used Ref) error {
	if err := user.Validate(); err != nil {
		return err
	}
	if used.RunID.IsZero() {
		return invalidf("RecordUse of checkpoint %s: it belongs to no run", used.Name)
	}
	if err := errors.Join(used.RunID.Validate(), ValidateName(used.Name)); err != nil {
		return err
	}
	if err := st.Put(ctx, user.String()+"/"+runUsesDir+"/"+used.String(), nil); err != nil {
		return fmt.Errorf("checkpoint: run %s reads %s: %w", user, used, err)
	}
	return nil
}

// Run is what a store holds of one run (Runs).
type Run struct {
	// ID is the run; zero for the checkpoints at the store's root, of the
	// layout before runs.
	ID RunID
	// Marker and End are its markers, nil if absent: a run without End
	// is running or its driver died.
	Marker *RunMarker
	End    *RunEnd
	// Checkpoints are its complete checkpoints by Seq, with App and Run
	// set to where they are; Incomplete the names of those without a
	// manifest (being written, or their writer failed).
	Checkpoints []Manifest
	Incomplete  []string
	// Uses are the checkpoints of other runs it reads (RecordUse).
	Uses []Ref
	// Problems are what could not be read (a manifest or marker that
	// fails its checks), one line each.
	Problems []string
	// Objects and Bytes count everything under the run's prefix; Newest
	// is the ModTime of the newest, by the store's clock.
	Objects int
	Bytes   int64
	Newest  time.Time

	stored map[string]*storedCheckpoint // by checkpoint name
	keys   []string                     // its markers and uses, relative to the run
}

// Finished reports whether the run wrote its end marker.
func (r *Run) Finished() bool { return r.End != nil }

// Runs lists the runs of st by run ID then application (so by start,
// for the IDs NewRunID makes), and the checkpoints of the layout before
// runs as a first Run with a zero ID, if there are any. It reads every
// manifest and marker; what fails its checks is named in Problems, not
// an error. Keys that fit neither layout are left out.
func Runs(ctx context.Context, st Store) ([]*Run, error) {
	objs, err := st.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("checkpoint: list runs: %w", err)
	}
	byID := map[RunID]*Run{}
	objsOf := map[RunID][]ObjectInfo{}
	var out []*Run
	for _, o := range objs {
		var id RunID
		rel := o.Key
		switch elems := strings.SplitN(o.Key, "/", 3); len(elems) {
		case 2: // NAME/part-NNNNN, NAME/manifest.json: the layout before runs
			if checkpointOf(o.Key) == "" {
				continue
			}
		case 3:
			id = RunID{elems[0], elems[1]}
			if id.Validate() != nil {
				continue
			}
			rel = elems[2]
		default:
			continue
		}
		r := byID[id]
		if r == nil {
			r = &Run{ID: id, stored: map[string]*storedCheckpoint{}}
			byID[id] = r
			out = append(out, r)
		}
		r.Objects++
		r.Bytes += o.Size
		if o.ModTime.After(r.Newest) {
			r.Newest = o.ModTime
		}
		o.Key = rel
		objsOf[id] = append(objsOf[id], o)
	}
	for _, r := range out {
		if err := r.read(ctx, st, objsOf[r.ID]); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b *Run) int {
		return cmp.Or(cmp.Compare(a.ID.Run, b.ID.Run), cmp.Compare(a.ID.App, b.ID.App))
	})
	return out, nil
}

// read fills r from its objects (keys relative to the run).
func (r *Run) read(ctx context.Context, st Store, objs []ObjectInfo) error {
	rst, err := RunStore(st, r.ID)
	if err != nil {
		return err
	}
	for _, o := range objs {
		switch {
		case r.ID.IsZero():
		case o.Key == runMarkerFile:
			r.keys = append(r.keys, o.Key)
			var m RunMarker
			if err := getJSON(ctx, rst, o.Key, &m); err != nil {
				r.Problems = append(r.Problems, err.Error())
			} else {
				r.Marker = &m
			}
		case o.Key == runEndFile:
			r.keys = append(r.keys, o.Key)
			var e RunEnd
			if err := getJSON(ctx, rst, o.Key, &e); err != nil {
				// It was written, so the run ended; when is unknown.
				r.Problems = append(r.Problems, err.Error())
			}
			r.End = &e
		case strings.HasPrefix(o.Key, runUsesDir+"/"):
			r.keys = append(r.keys, o.Key)
			if u, err := ParseRef(strings.TrimPrefix(o.Key, runUsesDir+"/")); err == nil && !u.RunID.IsZero() {
				r.Uses = append(r.Uses, u)
			}
		}
	}
	for _, c := range groupCheckpoints(objs) {
		r.stored[c.name] = c
		if !c.complete {
			r.Incomplete = append(r.Incomplete, c.name)
			continue
		}
		m, err := ReadManifest(ctx, rst, c.name)
		if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrAccessDenied) || ctx.Err() != nil {
			return err
		} else if err != nil {
			r.Problems = append(r.Problems, err.Error())
			continue
		}
		m.App, m.Run = r.ID.App, r.ID.Run
		r.Checkpoints = append(r.Checkpoints, m)
	}
	sortManifests(r.Checkpoints)
	return nil
}

func getJSON(ctx context.Context, st Store, key string, v any) error {
	b, err := st.Get(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return corruptf("%s/%s does not parse: %v", st, key, err)
	}
	return nil
}

// ListAll returns the complete checkpoints of every run in st, oldest
// first by creation (then Seq and Ref), each with App and Run set to
// where it is: what a restarted driver searches to resume (Ref names one
// for reading). Checkpoints of the layout before runs are left out; a
// manifest that fails its checks is an error naming it.
func ListAll(ctx context.Context, st Store) ([]Manifest, error) {
	runs, err := Runs(ctx, st)
	if err != nil {
		return nil, err
	}
	var out []Manifest
	for _, r := range runs {
		if r.ID.IsZero() {
			continue
		}
		if len(r.Problems) > 0 {
			return nil, fmt.Errorf("checkpoint: run %s in %s: %s", r.ID, st, strings.Join(r.Problems, "; "))
		}
		out = append(out, r.Checkpoints...)
	}
	slices.SortFunc(out, func(a, b Manifest) int {
		return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.Ref().String(), b.Ref().String()))
	})
	return out, nil
}

// PruneRunsOptions choose what PruneRuns deletes.
type PruneRunsOptions struct {
	// App and Run, if set, restrict it to the runs of that application,
	// and to that run ID.
	App, Run string
	// Job, if set, restricts it to the checkpoints whose manifest names
	// that job; a run keeps its markers then.
	Job string
	// AbandonedAfter, if positive, also takes the runs without an end
	// marker none of whose objects is newer than that (their driver was
	// killed): the store's clock against this machine's, so leave a
	// margin. Zero never takes a run that has not ended.
	AbandonedAfter time.Duration
	// OldLayout also takes the checkpoints at the store's root, of the
	// layout before runs (no App or Run filter may be set).
	OldLayout bool
	// DryRun deletes nothing and reports what would be deleted.
	DryRun bool
}

// Validate reports what is wrong with o.
func (o *PruneRunsOptions) Validate() error {
	var errs []error
	if o.App != "" && !ident.Valid(o.App) {
		errs = append(errs, invalidf("application %q is not a valid application name", o.App))
	}
	if o.Run != "" && !ident.Valid(o.Run) {
		errs = append(errs, invalidf("run %q is not a valid run ID", o.Run))
	}
	if o.AbandonedAfter < 0 {
		errs = append(errs, invalidf("AbandonedAfter %v is negative", o.AbandonedAfter))
	}
	if o.OldLayout && (o.App != "" || o.Run != "" || o.Job != "") {
		errs = append(errs, invalidf("OldLayout takes the checkpoints at the root, which have no application, run or job: do not combine it with App, Run or Job"))
	}
	return errors.Join(errs...)
}

// PruneRunsResult is what PruneRuns deleted (or, with DryRun, would
// delete).
type PruneRunsResult struct {
	// Deleted are the checkpoints deleted, complete or not.
	Deleted []Ref
	// Bytes is the size of every object deleted.
	Bytes int64
	// Kept are checkpoints of the runs taken that were kept: a run that
	// has not finished reads them.
	Kept []KeptCheckpoint
	// Removed are the runs removed entirely, markers included.
	Removed []RunID
}

// KeptCheckpoint is a checkpoint PruneRuns kept, and the unfinished run
// that reads it.
type KeptCheckpoint struct {
	Ref
	ReadBy RunID
}

// PruneRuns deletes, on request, the checkpoints of the runs of st that
// have finished (they wrote their end marker, EndRun), and with
// AbandonedAfter those of runs whose driver died, restricted by o. It
// never deletes a checkpoint that a run which has not finished reads
// (RecordUse), nor anything of a run that has not finished (unless
// abandoned). Each checkpoint goes manifest first, so one whose deletion
// is cut short is a leftover without a manifest, never a checkpoint with
// holes; a run whose checkpoints are all gone loses its markers, the end
// marker last, so a cut-short prune is finished by the next.
//
// A run that starts to read a finished run's checkpoint while PruneRuns
// deletes it fails to read it, with an error saying it is incomplete; it
// never reads part of one.
func PruneRuns(ctx context.Context, st Store, o PruneRunsOptions) (PruneRunsResult, error) {
	var res PruneRunsResult
	if err := o.Validate(); err != nil {
		return res, err
	}
	runs, err := Runs(ctx, st)
	if err != nil {
		return res, err
	}
	now := time.Now()
	taken := func(r *Run) bool {
		switch {
		case r.ID.IsZero():
			return o.OldLayout
		case o.OldLayout, o.App != "" && r.ID.App != o.App, o.Run != "" && r.ID.Run != o.Run:
			return false
		case r.Finished():
			return true
		}
		return o.AbandonedAfter > 0 && now.Sub(r.Newest) > o.AbandonedAfter
	}
	readBy := map[Ref]RunID{}
	for _, r := range runs {
		if !r.ID.IsZero() && !taken(r) && !r.Finished() {
			for _, u := range r.Uses {
				readBy[u] = r.ID
			}
		}
	}
	for _, r := range runs {
		if !taken(r) {
			continue
		}
		rst, err := RunStore(st, r.ID)
		if err != nil {
			return res, err
		}
		whole := o.Job == "" && len(r.Problems) == 0
		for _, name := range sortedNames(r.stored) {
			c := r.stored[name]
			ref := Ref{r.ID, name}
			var m *Manifest
			for i := range r.Checkpoints {
				if r.Checkpoints[i].Name == name {
					m = &r.Checkpoints[i]
				}
			}
			switch {
			case c.complete && m == nil: // a manifest that failed its checks: left for a person
				continue
			case o.Job != "" && (m == nil || m.Job != o.Job):
				continue
			}
			if user, ok := readBy[ref]; ok {
				res.Kept = append(res.Kept, KeptCheckpoint{ref, user})
				whole = false
				continue
			}
			if !o.DryRun {
				if c.complete {
					if err := rst.Delete(ctx, ManifestKey(name)); err != nil {
						return res, fmt.Errorf("checkpoint: prune %s: %w", ref, err)
					}
				}
				if err := rst.Delete(ctx, c.keys...); err != nil {
					return res, fmt.Errorf("checkpoint: prune %s (its manifest is deleted): %w", ref, err)
				}
			}
			res.Deleted = append(res.Deleted, ref)
			res.Bytes += c.bytes
		}
		if !whole || r.ID.IsZero() {
			continue
		}
		// The markers last, the end marker after everything else.
		keys := slices.Clone(r.keys)
		slices.SortStableFunc(keys, func(a, b string) int {
			return cmp.Compare(markerOrder(a), markerOrder(b))
		})
		if !o.DryRun {
			for _, k := range keys {
				if err := rst.Delete(ctx, k); err != nil {
					return res, fmt.Errorf("checkpoint: prune run %s: %w", r.ID, err)
				}
			}
		}
		res.Removed = append(res.Removed, r.ID)
	}
	return res, nil
}

// markerOrder orders a run's own keys for deletion: uses, the run
// marker, the end marker.
func markerOrder(key string) int {
	switch key {
	case runMarkerFile:
		return 1
	case runEndFile:
		return 2
	}
	return 0
}

func sortedNames(m map[string]*storedCheckpoint) []string {
	out := make([]string, 0, len(m))
	for name := range m {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
