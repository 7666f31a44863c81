package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"shoal/checkpoint"
	"shoal/client/clientpb"
	"shoal/client/eventlog"
	"shoal/internal/codec"
)

// Checkpoints (docs/DESIGN.md §5). Checkpoint marks an RDD; the tasks that
// first compute its partitions also write them to the checkpoint store
// (a write op follows the RDD in their plan), so it is never computed
// twice for it. After the job that computed them, the driver writes the
// missing ones (if the job computed only some), then the manifest, prunes
// old checkpoints of this run and truncates the lineage: the RDD becomes
// a source that reads its partitions from the store. Everything goes
// under this run's prefix of the store (ckptrun.go).

// CheckpointInfo names a checkpoint in the store.
type CheckpointInfo struct {
	// Name is the checkpoint's name in this run's part of the store, one
	// path element (checkpoint.ValidateName); default "rdd-ID".
	Name string
	// Seq orders this run's checkpoints for retention
	// (Options.CheckpointKeep); default the time of the call in
	// nanoseconds.
	Seq int64
	// Job and Input are recorded in the manifest so that a later run can
	// find a checkpoint of the same computation over the same input
	// (ListCheckpoints): Job names the computation (e.g. "pagerank"),
	// Input identifies its input (InputIdentity). Both optional.
	Job, Input string
	// Meta is kept in the manifest, for the program's own use (PageRank
	// keeps its iteration there to resume from it).
	Meta map[string]string
}

// checkpointing is a node's checkpoint from Checkpoint until its lineage
// is truncated (done).
type checkpointing struct {
	info    CheckpointInfo
	write   opSpec // ckptWriteOp[T]
	read    opSpec // ckptReadOp[T]
	drain   opSpec // countSink[T], for the partitions a job did not compute
	lost    opSpec // lostOp[T], the lineage of a LocalCheckpoint
	parts   map[int]checkpoint.PartInfo
	local   bool // LocalCheckpoint: blocks in the node services, no store
	planned bool // a stage that writes it was planned
	done    bool
	// watch follows the partitions handed to the node services
	// (CheckpointVia "node", ckptnode.go); readParams are the read op's
	// once its manifest is written.
	watch      *ckptWatch
	readParams json.RawMessage
}

// Checkpoint writes the RDD's partitions to the checkpoint store
// (Options.CheckpointDir) when an action first computes them, then
// truncates its lineage: later jobs, and the recomputation of anything
// lost downstream, read them back from the store. It returns r.
func (r *RDD[T]) Checkpoint() *RDD[T] { return r.CheckpointAs(CheckpointInfo{}) }

// CheckpointAs is Checkpoint with a chosen name, sequence number and
// metadata.
func (r *RDD[T]) CheckpointAs(info CheckpointInfo) *RDD[T] {
	n, c := r.n, r.n.ctx
	if info.Name == "" {
		info.Name = fmt.Sprintf("rdd-%d", n.id)
	}
	if info.Seq == 0 {
		info.Seq = time.Now().UnixNano()
	}
	_, runErr := c.CheckpointRun()
	switch err := checkpoint.ValidateName(info.Name); {
	case c.opts.CheckpointDir == "":
		n.setErr(errors.New("client: Checkpoint needs a checkpoint store: set Options.CheckpointDir (shoal run --checkpoint-dir s3://bucket/prefix or file:///path)"))
	case err != nil:
		n.setErr(fmt.Errorf("client: Checkpoint: %w", err))
	case runErr != nil:
		n.setErr(fmt.Errorf("client: Checkpoint: %w", runErr))
	}
	r.markCheckpoint(&checkpointing{info: info})
	return r
}

// LocalCheckpoint keeps the RDD's partitions in the node services' disks
// (Persist(DiskOnly)) and, once every partition is held there, truncates
// its lineage. It is cheaper than Checkpoint and not reliable: a
// partition lost with its node cannot be computed again, and the job
// that needs it fails saying so.
func (r *RDD[T]) LocalCheckpoint() *RDD[T] {
	if r.n.persist == nil {
		r.Persist(DiskOnly)
	}
	r.markCheckpoint(&checkpointing{local: true})
	return r
}

func (r *RDD[T]) markCheckpoint(cp *checkpointing) {
	n, c := r.n, r.n.ctx
	if n.ckpt != nil {
		n.setErr(fmt.Errorf("client: %s is checkpointed already", n.displayName()))
		return
	}
	cp.write = mustSpec(ckptWriteOp[T]{}, nil)
	cp.read = mustSpec(ckptReadOp[T]{}, nil)
	cp.drain = mustSpec(countSink[T]{}, nil)
	cp.lost = mustSpec(lostOp[T]{}, nil)
	cp.parts = map[int]checkpoint.PartInfo{}
	n.ckpt = cp
	c.mu.Lock()
	c.checkpoints = append(c.checkpoints, n)
	c.mu.Unlock()
}

// ReadCheckpoint returns an RDD of a complete checkpoint in the
// context's store: a source with the partitioning it was written with.
// ref is NAME, a checkpoint of this run, or APP/RUN/NAME, one of any run
// (checkpoint.Manifest.Ref, from ListCheckpoints). Reading another run's
// checkpoint is recorded in this run's part of the store first, so that
// `shoal checkpoints prune` keeps it until this run ends. Checkpoints of
// the layout before runs (NAME at the store's root) are not read.
func ReadCheckpoint[T any](ctx context.Context, c *Context, ref string) (*RDD[T], error) {
	root, _, own, err := c.runStore(ctx)
	if err != nil {
		return nil, err
	}
	r, err := checkpoint.ParseRef(ref)
	if err != nil {
		return nil, fmt.Errorf("client: ReadCheckpoint: %w", err)
	}
	if r.RunID.IsZero() {
		r.RunID = own
	} else if r.RunID != own {
		if err := c.recordUse(ctx, root, r); err != nil {
			return nil, err
		}
	}
	st, err := checkpoint.RunStore(root, r.RunID)
	if err != nil {
		return nil, err
	}
	m, err := checkpoint.ReadManifest(ctx, st, r.Name)
	if err != nil {
		return nil, fmt.Errorf("client: ReadCheckpoint %s: %w", r, err)
	}
	m.App, m.Run = r.App, r.Run
	if since := encodingSince(reflect.TypeFor[T]()); m.RecordEncoding < since {
		return nil, fmt.Errorf("client: ReadCheckpoint %s: its %T records were written by an older shoal, which encoded them otherwise (record encoding %d, this build's %d): recompute it", r, *new(T), m.RecordEncoding, codec.RecordEncoding)
	}
	n := newNode(c, "checkpoint", m.NumPartitions, opSpec{})
	n.name = r.Name
	if r.RunID != own {
		n.name = r.String()
	}
	if m.Partitioner != "" {
		var p Partitioner
		if err := json.Unmarshal([]byte(m.Partitioner), &p); err != nil {
			return nil, fmt.Errorf("client: checkpoint %s: partitioner %q: %w", r, m.Partitioner, err)
		}
		n.part = &p
	}
	n.spec = mustSpec(ckptReadOp[T]{}, nil)
	n.spec.Params = c.ckptReadParams(n.id, r.RunID, m)
	return &RDD[T]{n}, nil
}

// ListCheckpoints returns the manifests of the complete checkpoints of
// every run in the context's store, this one's and earlier ones', oldest
// first by creation time; each one's App, Run and Name say where it is
// (Manifest.Ref, for ReadCheckpoint), Job and Input what it is of. A
// restarted driver picks from them the newest of its job and input.
// Checkpoints of the layout before runs are left out.
func (c *Context) ListCheckpoints(ctx context.Context) ([]checkpoint.Manifest, error) {
	st, err := c.checkpointStore(ctx)
	if err != nil {
		return nil, err
	}
	return checkpoint.ListAll(ctx, st)
}

// checkpointStore opens the store of Options.CheckpointDir once.
func (c *Context) checkpointStore(ctx context.Context) (checkpoint.Store, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ckptStore != nil {
		return c.ckptStore, nil
	}
	if c.opts.CheckpointDir == "" {
		return nil, errors.New("client: no checkpoint store: set Options.CheckpointDir (shoal run --checkpoint-dir)")
	}
	st, err := checkpoint.Open(ctx, c.opts.CheckpointDir, c.opts.S3)
	if err != nil {
		return nil, fmt.Errorf("client: checkpoint store: %w", err)
	}
	c.ckptStore = st
	return st, nil
}

// ckptParams configure the write and read ops.
type ckptParams struct {
	RDD      int    `json:"rdd"`
	URI      string `json:"uri"`
	Endpoint string `json:"endpoint,omitempty"`
	// Run is the run whose part of the store holds the checkpoint,
	// APP/RUN (checkpoint.RunStore).
	Run  string `json:"run"`
	Name string `json:"name"`
	// Written are the partitions already written (a write op skips them).
	Written []int `json:"written,omitempty"`
	// Manifest is the complete checkpoint a read op reads.
	Manifest *checkpoint.Manifest `json:"manifest,omitempty"`
	// Via is Options.CheckpointVia: "node" hands partitions to the
	// task's node and reads them through it (URI is then the store as
	// the nodes know it, ckptStoreURI); "task" opens the store.
	Via string `json:"via,omitempty"`
	// TimeoutMS bounds a hand-off's wait for room on its node
	// (Options.CheckpointTimeout).
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

func (s *scheduler) ckptWriteParams(n *node) json.RawMessage {
	run, _ := s.c.CheckpointRun() // made by CheckpointAs, which failed the lineage if it could not be
	p := ckptParams{RDD: n.id, URI: s.c.opts.CheckpointDir, Endpoint: s.c.opts.S3.Endpoint, Run: run.String(), Name: n.ckpt.info.Name,
		Via: s.c.opts.CheckpointVia, TimeoutMS: s.c.opts.CheckpointTimeout.Milliseconds()}
	if s.c.viaNode() {
		p.URI, p.Endpoint = ckptStoreURI(p.URI), ""
	}
	for part := range n.ckpt.parts {
		p.Written = append(p.Written, part)
	}
	slices.Sort(p.Written)
	return mustJSON(p)
}

func (c *Context) ckptReadParams(rdd int, run checkpoint.RunID, m checkpoint.Manifest) json.RawMessage {
	p := ckptParams{RDD: rdd, URI: c.opts.CheckpointDir, Endpoint: c.opts.S3.Endpoint, Run: run.String(), Name: m.Name, Manifest: &m, Via: c.opts.CheckpointVia}
	if c.viaNode() {
		p.URI, p.Endpoint = ckptStoreURI(p.URI), ""
	}
	return mustJSON(p)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("client: marshal %T: %v", v, err)) // plain data: cannot fail
	}
	return b
}

// storeCache is the checkpoint stores a worker (its runner) has opened,
// by URI and endpoint, shared by its tasks.
type storeCache struct {
	mu     sync.Mutex
	m      map[[2]string]checkpoint.Store
	closed bool
}

func newStoreCache() *storeCache {
	return &storeCache{m: map[[2]string]checkpoint.Store{}}
}

// open returns the part of the store that holds p's checkpoint (its
// run's), opening the store the first time.
func (c *storeCache) open(ctx context.Context, p ckptParams) (checkpoint.Store, error) {
	key := [2]string{p.URI, p.Endpoint}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("the worker is stopping (its checkpoint stores are closed)")
	}
	ref, err := checkpoint.ParseRef(p.Run + "/" + p.Name)
	if err != nil {
		return nil, err
	}
	st := c.m[key]
	if st == nil {
		if st, err = checkpoint.Open(ctx, p.URI, checkpoint.Options{Endpoint: p.Endpoint}); err != nil {
			return nil, err
		}
		c.m[key] = st
	}
	return checkpoint.RunStore(st, ref.RunID)
}

// close closes the stores that hold resources (io.Closer: an S3 store's
// connections) and forgets them all; open fails afterwards.
func (c *storeCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for _, st := range c.m {
		if cl, ok := st.(io.Closer); ok {
			if err := cl.Close(); err != nil {
				errs = append(errs, fmt.Errorf("client: closing checkpoint store %s: %w", st, err))
			}
		}
	}
	clear(c.m)
	return errors.Join(errs...)
}

func (tc *taskContext) ckptReport(kind clientpb.CheckpointReport_Kind, p ckptParams, part int, st checkpoint.Store, info []byte) {
	tc.checkpoints = append(tc.checkpoints, &clientpb.CheckpointReport{
		Kind: kind, Rdd: uint32(p.RDD), Partition: uint32(part), Uri: checkpoint.PartitionURI(st, p.Name, part), PartInfo: info,
	})
}

// ckptWriteOp passes its parent's records on and writes the partition to
// the checkpoint once it is complete (a consumer that stops early writes
// nothing). A failed write fails the task, which is retried.
type ckptWriteOp[T any] struct{}

func (ckptWriteOp[T]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	var p ckptParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	parent, err := seqOf[T](parents[0])
	if err != nil {
		return nil, err
	}
	cd, err := codecOf[T]()
	if err != nil {
		return nil, err
	}
	return seqFn[T](func(tc *taskContext, part int) iter.Seq[T] {
		return func(yield func(T) bool) {
			if slices.Contains(p.Written, part) {
				for v := range parent(tc, part) {
					if !yield(v) {
						return
					}
				}
				return
			}
			var buf, rec []byte
			for v := range parent(tc, part) {
				rec = cd.Append(rec[:0], v)
				buf = codec.AppendFramed(buf, rec)
				if !yield(v) {
					return
				}
			}
			if tc.failed() {
				return
			}
			if p.Via == CheckpointViaNode {
				obj, info, err := checkpoint.EncodePartition(p.Name, part, buf)
				if err == nil {
					var node string
					if node, err = tc.handOff(p, part, obj, info); err == nil {
						tc.ckptNodeReport(p, part, node, mustJSON(info))
						tc.addMetric("checkpoint_bytes_handed", info.Size)
						return
					}
				}
				tc.fail(fmt.Errorf("client: checkpoint of RDD %d: %w", p.RDD, err))
				return
			}
			st, err := tc.runner.stores.open(tc.ctx, p)
			if err != nil {
				tc.fail(fmt.Errorf("client: checkpoint %s: %w", p.Name, err))
				return
			}
			info, err := checkpoint.WritePartition(tc.ctx, st, p.Name, part, buf)
			if err != nil {
				tc.fail(fmt.Errorf("client: checkpoint of RDD %d: %w", p.RDD, err))
				return
			}
			tc.ckptReport(clientpb.CheckpointReport_KIND_WRITTEN, p, part, st, mustJSON(info))
			tc.addMetric("checkpoint_bytes_written", info.Size)
		}
	}), nil
}

// ckptReadOp reads a partition of a complete checkpoint: the source a
// checkpointed RDD becomes.
type ckptReadOp[T any] struct{}

func (ckptReadOp[T]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	var p ckptParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	if p.Manifest == nil {
		return nil, fmt.Errorf("client: checkpoint %s: no manifest in the plan", p.Name)
	}
	cd, err := codecOf[T]()
	if err != nil {
		return nil, err
	}
	return seqFn[T](func(tc *taskContext, part int) iter.Seq[T] {
		return func(yield func(T) bool) {
			var data []byte
			if p.Via == CheckpointViaNode {
				obj, source, err := tc.readViaNode(p, part)
				if err == nil {
					data, err = checkpoint.DecodePartition(obj, p.Manifest.Partitions[part])
				}
				if err != nil {
					tc.fail(fmt.Errorf("client: checkpoint of RDD %d: %w", p.RDD, err))
					return
				}
				tc.checkpoints = append(tc.checkpoints, &clientpb.CheckpointReport{Kind: clientpb.CheckpointReport_KIND_READ, Rdd: uint32(p.RDD), Partition: uint32(part),
					Uri: strings.TrimSuffix(p.URI, "/") + "/" + p.Run + "/" + checkpoint.PartKey(p.Name, part), Source: source, Node: tc.env.NodeAddr})
			} else {
				st, err := tc.runner.stores.open(tc.ctx, p)
				if err != nil {
					tc.fail(fmt.Errorf("client: checkpoint %s: %w", p.Name, err))
					return
				}
				if data, err = checkpoint.ReadPartition(tc.ctx, st, *p.Manifest, part); err != nil {
					tc.fail(fmt.Errorf("client: checkpoint of RDD %d: %w", p.RDD, err))
					return
				}
				tc.ckptReport(clientpb.CheckpointReport_KIND_READ, p, part, st, nil)
			}
			tc.addMetric("checkpoint_bytes_read", int64(len(data)))
			for v := range countedIn(tc, decodeRecords(tc, cd, "checkpoint "+checkpoint.PartKey(p.Name, part), data)) {
				if !yield(v) {
					return
				}
			}
		}
	}), nil
}

// lostOp stands for the lineage of a locally checkpointed RDD: it runs
// only when a partition's block is gone, and says so.
type lostOp[T any] struct{}

func (lostOp[T]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	var p struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	return seqFn[T](func(tc *taskContext, part int) iter.Seq[T] {
		return func(yield func(T) bool) {
			tc.fail(fmt.Errorf("client: partition %d of %s was lost with its node, and LocalCheckpoint kept no lineage to compute it again (use Checkpoint for a reliable store)", part, p.Name))
		}
	}), nil
}

// checkpointReports records the partitions a task wrote and logs the
// checkpoint events.
func (s *scheduler) checkpointReports(rep taskReport) {
	for _, r := range rep.checkpoints {
		ev := eventlog.Checkpoint{RDD: int(r.Rdd), Partition: int(r.Partition), URI: r.Uri}
		switch r.Kind {
		case clientpb.CheckpointReport_KIND_WRITTEN:
			var info checkpoint.PartInfo
			written := &eventlog.CheckpointWritten{Checkpoint: ev}
			n := s.c.node(int(r.Rdd))
			if n == nil || n.ckpt == nil || n.ckpt.done || json.Unmarshal(r.PartInfo, &info) != nil {
				if r.Node == "" {
					s.c.events.Write(written)
				}
				continue
			}
			n.ckpt.parts[int(r.Partition)] = info
			if r.Node != "" {
				// Handed to a node: logged when the node has it durable.
				if n.ckpt.watch == nil {
					n.ckpt.watch = newCkptWatch()
				}
				if !n.ckpt.watch.durable[int(r.Partition)] {
					n.ckpt.watch.handed[int(r.Partition)] = ckptHandoff{node: r.Node}
				}
				continue
			}
			written.Name, written.Sequence, written.Partitions, written.Bytes = n.ckpt.info.Name, n.ckpt.info.Seq, n.parts, info.Size
			s.c.events.Write(written)
		case clientpb.CheckpointReport_KIND_READ:
			s.c.events.Write(&eventlog.CheckpointRead{Checkpoint: ev, Source: r.Source})
		}
	}
}

// node returns the checkpointed node with that id, if any.
func (c *Context) node(id int) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.checkpoints {
		if n.id == id {
			return n
		}
	}
	return nil
}

// finishCheckpoints completes the checkpoints of RDDs that a job has
// computed (some of): it writes their missing partitions (a job over
// just those: an action like Take reads only some, and stops early),
// their manifests, prunes, and truncates their lineage.
func (s *scheduler) finishCheckpoints(ctx context.Context, job int) error {
	c := s.c
	c.mu.Lock()
	pending := slices.Clone(c.checkpoints)
	c.mu.Unlock()
	for _, n := range pending {
		cp := n.ckpt
		if cp.done {
			continue
		}
		if cp.local {
			if s.cached(n) {
				lost := cp.lost
				lost.Params = mustJSON(map[string]string{"name": n.displayName()})
				s.truncate(n, lost)
			}
			continue
		}
		if !cp.planned {
			continue // no job computed it yet
		}
		var missing []int
		for p := range n.parts {
			if _, ok := cp.parts[p]; !ok {
				missing = append(missing, p)
			}
		}
		if len(missing) > 0 {
			if _, err := s.runJob(ctx, job, n, cp.drain, missing); err != nil {
				return fmt.Errorf("client: checkpoint %s: writing partitions %v: %w", cp.info.Name, missing, err)
			}
		}
		if cp.watch != nil {
			s.watchCheckpoint(n) // through the nodes: the manifest follows their uploads
			continue
		}
		if err := s.writeManifest(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// writeManifest completes n's checkpoint and truncates its lineage. The
// store is written off the loop (await): the run's marker, once, then the
// manifest, then this run's pruning.
func (s *scheduler) writeManifest(ctx context.Context, n *node) error {
	w, err := await(s, ctx, manifestTimeout, s.manifestWriter(n))
	if err == nil {
		err = w.err
	}
	if err != nil {
		return err
	}
	read := n.ckpt.read
	read.Params = s.c.ckptReadParams(n.id, w.run, w.m)
	s.truncate(n, read)
	return nil
}

// manifestWritten is what manifestWriter's function returns: the run
// and the manifest as read back, or why it failed.
type manifestWritten struct {
	run checkpoint.RunID
	m   checkpoint.Manifest
	err error
}

// manifestWriter returns the function, to run off the loop, that writes
// n's manifest from the partitions gathered on the loop now: the run's
// marker, once, then the manifest, then this run's pruning.
func (s *scheduler) manifestWriter(n *node) func(ctx context.Context) manifestWritten {
	c, cp := s.c, n.ckpt
	m := checkpoint.Manifest{
		Name: cp.info.Name, Job: cp.info.Job, Input: cp.info.Input,
		Seq: cp.info.Seq, NumPartitions: n.parts, Meta: cp.info.Meta, Lineage: lineageString(n),
		RecordEncoding: codec.RecordEncoding,
	}
	for p := range n.parts {
		m.Partitions = append(m.Partitions, cp.parts[p])
	}
	if n.part != nil {
		m.Partitioner = string(mustJSON(n.part))
	}
	name, display := cp.info.Name, n.displayName()
	return func(ctx context.Context) manifestWritten {
		root, st, run, err := c.runStore(ctx)
		if err != nil {
			return manifestWritten{err: err}
		}
		if err := c.beginRun(ctx, root); err != nil {
			return manifestWritten{err: fmt.Errorf("client: checkpoint %s of %s: %w", name, display, err)}
		}
		m.App, m.Run = run.App, run.Run
		if err := checkpoint.WriteManifest(ctx, st, name, m); err != nil {
			return manifestWritten{err: fmt.Errorf("client: checkpoint %s of %s: %w", name, display, err)}
		}
		c.log.Info("checkpoint complete", "rdd", n.id, "name", name, "store", st.String())
		if k := c.opts.CheckpointKeep; k > 0 { // this run's only: st is its part of the store
			deleted, err := checkpoint.Prune(ctx, st, k)
			if err != nil {
				c.log.Warn("old checkpoints not pruned", "store", st.String(), "err", err)
			} else if len(deleted) > 0 {
				c.log.Info("old checkpoints deleted", "deleted", deleted)
			}
		}
		read, err := checkpoint.ReadManifest(ctx, st, name)
		return manifestWritten{run: run, m: read, err: err}
	}
}

// manifestTimeout bounds writing a checkpoint's manifest and pruning the
// store.
const manifestTimeout = 2 * time.Minute

// truncate makes n a source computed by spec: its lineage is forgotten.
func (s *scheduler) truncate(n *node, spec opSpec) {
	n.ckpt.done = true
	n.deps = nil
	n.spec = spec
}

// lineageString describes n's lineage for a manifest: the nodes it
// depended on, nearest first, at most 32.
func lineageString(n *node) string {
	var out []string
	seen := map[int]bool{}
	queue := []*node{n}
	for len(queue) > 0 && len(out) < 32 {
		m := queue[0]
		queue = queue[1:]
		if seen[m.id] {
			continue
		}
		seen[m.id] = true
		out = append(out, m.displayName())
		for _, d := range m.deps {
			queue = append(queue, d.parent)
		}
	}
	return strings.Join(out, " <- ")
}
