package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"shoal/checkpoint"
	"shoal/client/eventlog"
	"shoal/compute/computepb"
)

// Checkpoints (DESIGN.md §5). Checkpoint marks an RDD; the tasks that
// first compute its partitions also write them to the checkpoint store
// (a write op follows the RDD in their plan), so it is never computed
// twice for it. After the job that computed them, the driver writes the
// missing ones (if the job computed only some), then the manifest, prunes
// old checkpoints and truncates the lineage: the RDD becomes a source
// that reads its partitions from the store.

// CheckpointInfo names a checkpoint in the store.
type CheckpointInfo struct {
	// Name is the checkpoint's name in the store, one path element
	// (checkpoint.ValidateName); default "APP-rdd-ID".
	Name string
	// Seq orders checkpoints for retention (Options.CheckpointKeep) and
	// for finding the newest; default the time of the call in
	// nanoseconds.
	Seq int64
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
		info.Name = fmt.Sprintf("%s-rdd-%d", c.app, n.id)
	}
	if info.Seq == 0 {
		info.Seq = time.Now().UnixNano()
	}
	switch err := checkpoint.ValidateName(info.Name); {
	case c.opts.CheckpointDir == "":
		n.setErr(errors.New("client: Checkpoint needs a checkpoint store: set Options.CheckpointDir (shoal run --checkpoint-dir s3://bucket/prefix or file:///path)"))
	case err != nil:
		n.setErr(fmt.Errorf("client: Checkpoint: %w", err))
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

// ReadCheckpoint returns an RDD of the complete checkpoint name in the
// context's store: a source with the partitioning it was written with.
func ReadCheckpoint[T any](ctx context.Context, c *Context, name string) (*RDD[T], error) {
	st, err := c.checkpointStore(ctx)
	if err != nil {
		return nil, err
	}
	m, err := checkpoint.ReadManifest(ctx, st, name)
	if err != nil {
		return nil, err
	}
	n := newNode(c, "checkpoint", m.NumPartitions, opSpec{})
	n.name = name
	if m.Partitioner != "" {
		var p Partitioner
		if err := json.Unmarshal([]byte(m.Partitioner), &p); err != nil {
			return nil, fmt.Errorf("client: checkpoint %s: partitioner %q: %w", name, m.Partitioner, err)
		}
		n.part = &p
	}
	n.spec = mustSpec(ckptReadOp[T]{}, nil)
	n.spec.Params = c.ckptReadParams(n.id, st, m)
	return &RDD[T]{n}, nil
}

// ListCheckpoints returns the manifests of the complete checkpoints in the
// context's store, oldest first (by Seq).
func (c *Context) ListCheckpoints(ctx context.Context) ([]checkpoint.Manifest, error) {
	st, err := c.checkpointStore(ctx)
	if err != nil {
		return nil, err
	}
	return checkpoint.List(ctx, st)
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
	st, err := checkpoint.Open(ctx, c.opts.CheckpointDir, checkpoint.Options{Endpoint: c.opts.S3Endpoint})
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
	Name     string `json:"name"`
	// Written are the partitions already written (a write op skips them).
	Written []int `json:"written,omitempty"`
	// Manifest is the complete checkpoint a read op reads.
	Manifest *checkpoint.Manifest `json:"manifest,omitempty"`
}

func (s *scheduler) ckptWriteParams(n *node) json.RawMessage {
	p := ckptParams{RDD: n.id, URI: s.c.opts.CheckpointDir, Endpoint: s.c.opts.S3Endpoint, Name: n.ckpt.info.Name}
	for part := range n.ckpt.parts {
		p.Written = append(p.Written, part)
	}
	slices.Sort(p.Written)
	return mustJSON(p)
}

func (c *Context) ckptReadParams(rdd int, st checkpoint.Store, m checkpoint.Manifest) json.RawMessage {
	return mustJSON(ckptParams{RDD: rdd, URI: c.opts.CheckpointDir, Endpoint: c.opts.S3Endpoint, Name: m.Name, Manifest: &m})
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("client: marshal %T: %v", v, err)) // plain data: cannot fail
	}
	return b
}

// workerStores are the checkpoint stores this worker process opened, by
// URI and endpoint.
var workerStores = struct {
	mu sync.Mutex
	m  map[[2]string]checkpoint.Store
}{m: map[[2]string]checkpoint.Store{}}

func openStore(ctx context.Context, p ckptParams) (checkpoint.Store, error) {
	key := [2]string{p.URI, p.Endpoint}
	workerStores.mu.Lock()
	defer workerStores.mu.Unlock()
	if st := workerStores.m[key]; st != nil {
		return st, nil
	}
	st, err := checkpoint.Open(ctx, p.URI, checkpoint.Options{Endpoint: p.Endpoint})
	if err != nil {
		return nil, err
	}
	workerStores.m[key] = st
	return st, nil
}

func (tc *taskContext) ckptReport(kind computepb.CheckpointReport_Kind, p ckptParams, part int, st checkpoint.Store, info []byte) {
	tc.checkpoints = append(tc.checkpoints, &computepb.CheckpointReport{
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
				buf = appendRecord(buf, rec)
				if !yield(v) {
					return
				}
			}
			if tc.failed() {
				return
			}
			st, err := openStore(tc.ctx, p)
			if err != nil {
				tc.fail(fmt.Errorf("client: checkpoint %s: %w", p.Name, err))
				return
			}
			info, err := checkpoint.WritePartition(tc.ctx, st, p.Name, part, buf)
			if err != nil {
				tc.fail(fmt.Errorf("client: checkpoint of RDD %d: %w", p.RDD, err))
				return
			}
			tc.ckptReport(computepb.CheckpointReport_KIND_WRITTEN, p, part, st, mustJSON(info))
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
			st, err := openStore(tc.ctx, p)
			if err != nil {
				tc.fail(fmt.Errorf("client: checkpoint %s: %w", p.Name, err))
				return
			}
			data, err := checkpoint.ReadPartition(tc.ctx, st, *p.Manifest, part)
			if err != nil {
				tc.fail(fmt.Errorf("client: checkpoint of RDD %d: %w", p.RDD, err))
				return
			}
			tc.ckptReport(computepb.CheckpointReport_KIND_READ, p, part, st, nil)
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
func (s *scheduler) checkpointReports(u *computepb.TaskUpdate) {
	for _, r := range u.Checkpoints {
		ev := eventlog.Checkpoint{RDD: int(r.Rdd), Partition: int(r.Partition), URI: r.Uri}
		switch r.Kind {
		case computepb.CheckpointReport_KIND_WRITTEN:
			var info checkpoint.PartInfo
			written := &eventlog.CheckpointWritten{Checkpoint: ev}
			if n := s.c.node(int(r.Rdd)); n != nil && n.ckpt != nil && json.Unmarshal(r.PartInfo, &info) == nil {
				n.ckpt.parts[int(r.Partition)] = info
				written.Name, written.Sequence, written.Partitions, written.Bytes = n.ckpt.info.Name, n.ckpt.info.Seq, n.parts, info.Size
			}
			s.c.events.Write(written)
		case computepb.CheckpointReport_KIND_READ:
			s.c.events.Write(&eventlog.CheckpointRead{Checkpoint: ev})
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
		if err := s.writeManifest(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// writeManifest completes n's checkpoint and truncates its lineage.
func (s *scheduler) writeManifest(ctx context.Context, n *node) error {
	c, cp := s.c, n.ckpt
	st, err := c.checkpointStore(ctx)
	if err != nil {
		return err
	}
	m := checkpoint.Manifest{
		Name: cp.info.Name, Seq: cp.info.Seq, NumPartitions: n.parts, Meta: cp.info.Meta, Lineage: lineageString(n),
	}
	for p := range n.parts {
		m.Partitions = append(m.Partitions, cp.parts[p])
	}
	if n.part != nil {
		m.Partitioner = string(mustJSON(n.part))
	}
	if err := checkpoint.WriteManifest(ctx, st, cp.info.Name, m); err != nil {
		return fmt.Errorf("client: checkpoint %s of %s: %w", cp.info.Name, n.displayName(), err)
	}
	c.log.Info("checkpoint complete", "rdd", n.id, "name", cp.info.Name, "store", st.String())
	if k := c.opts.CheckpointKeep; k > 0 {
		deleted, err := checkpoint.Prune(ctx, st, k)
		if err != nil {
			c.log.Warn("old checkpoints not pruned", "store", st.String(), "err", err)
		} else if len(deleted) > 0 {
			c.log.Info("old checkpoints deleted", "deleted", deleted)
		}
	}
	if m, err = checkpoint.ReadManifest(ctx, st, cp.info.Name); err != nil {
		return err
	}
	read := cp.read
	read.Params = c.ckptReadParams(n.id, st, m)
	s.truncate(n, read)
	return nil
}

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
