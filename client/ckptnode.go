package client

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"shoal/checkpoint"
	"shoal/client/clientpb"
	"shoal/client/eventlog"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// Checkpoints through the node services (Options.CheckpointVia "node",
// docs/DESIGN.md §5). A task hands its encoded partition to its node
// (handOff) and ends; the node commits it, uploads it in the background
// and keeps a copy. After the job, the driver watches the nodes
// (watchCheckpoint: CheckpointStatus polls, off the loop) until every
// partition is durable, then writes the manifest (off the loop too);
// the lineage is truncated at the next job's start or at
// WaitCheckpoints, never in the middle of a job. A partition whose node
// is lost, or forgets it, before it is durable is computed again (a job
// over the missing partitions, as for partitions a job did not compute)
// and handed over again; the manifest waits for it. Jobs go on meanwhile:
// the uploads overlap the next iterations.

// ckptWatch is the driver's view of a checkpoint's partitions in the
// node services, from the first hand-off to the manifest. Owned by the
// loop.
type ckptWatch struct {
	handed   map[int]ckptHandoff // handed to a node, not yet durable
	durable  map[int]bool
	failures map[int]int // failed upload attempts reported so far
	lastErr  string      // the last upload error a node reported
	deadline time.Time   // set when the first watch starts
	polling  bool        // a poll or the manifest write is under way
	written  bool        // the manifest is written: truncate
	err      error       // the checkpoint failed (CheckpointTimeout)
}

type ckptHandoff struct {
	node   string
	handed time.Time // by the node's clock
}

func newCkptWatch() *ckptWatch {
	return &ckptWatch{handed: map[int]ckptHandoff{}, durable: map[int]bool{}, failures: map[int]int{}}
}

// viaNode reports whether the context's checkpoints go through the nodes.
func (c *Context) viaNode() bool { return c.opts.CheckpointVia != CheckpointViaTask }

// ckptStoreURI is the checkpoint store's URI as the node services are
// given it and every hand-off names it: a plain path made absolute.
func ckptStoreURI(dir string) string {
	if dir == "" || strings.Contains(dir, "://") {
		return dir
	}
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// ckptNodeArgs are the flags the local cluster's node services get for
// the checkpoint store, and ckptNodeEnv their environment: the driver's
// endpoint and credentials (Options.S3). Cluster mode's nodes have their
// own (`shoal node --checkpoint-dir`).
func (o *Options) ckptNodeArgs() []string {
	if o.CheckpointDir == "" || o.CheckpointVia == CheckpointViaTask {
		return nil
	}
	args := []string{"--checkpoint-dir", ckptStoreURI(o.CheckpointDir)}
	if o.S3.Endpoint != "" {
		args = append(args, "--s3-endpoint", o.S3.Endpoint)
	}
	return args
}

func (o *Options) ckptNodeEnv() []string {
	if o.CheckpointDir == "" || o.CheckpointVia == CheckpointViaTask {
		return nil
	}
	return o.S3.Environ()
}

// handOffRetry is the first pause of a hand-off the node refused for want
// of room (or could not take: retryable); it doubles up to handOffMaxPause.
const (
	handOffRetry    = 20 * time.Millisecond
	handOffMaxPause = time.Second
)

// handOff gives a partition object to the task's node, waiting while the
// node's upload queue is full (back-pressure), at most the context's
// CheckpointTimeout. It returns the node's address.
func (tc *taskContext) handOff(p ckptParams, part int, obj []byte, info checkpoint.PartInfo) (string, error) {
	run, err := checkpoint.ParseRef(p.Run + "/" + p.Name)
	if err != nil {
		return "", err
	}
	addr := tc.env.NodeAddr
	cl, err := tc.env.Clients(addr)
	if err != nil {
		return "", fmt.Errorf("node %s: %w", addr, err)
	}
	cp := nodeclient.CheckpointPart{Store: p.URI, Key: checkpoint.RunKey(run.RunID, info.Key), Size: info.Size, CRC32C: info.CRC32C}
	ctx, cancel := context.WithTimeout(tc.ctx, time.Duration(p.TimeoutMS)*time.Millisecond)
	defer cancel()
	pause := handOffRetry
	for {
		_, err := cl.PutCheckpoint(ctx, tc.env.App, cp, obj)
		if err == nil {
			return addr, nil
		}
		if !shuffle.IsRetryable(err) && !errors.Is(err, shuffle.ErrCorrupt) {
			return "", fmt.Errorf("node %s: %w", addr, err)
		}
		if errors.Is(err, shuffle.ErrQueueFull) {
			tc.addMetric("checkpoint_handoff_waits", 1)
		}
		select {
		case <-ctx.Done():
			if tc.ctx.Err() == nil {
				return "", fmt.Errorf("node %s did not take the partition within the checkpoint timeout (%v): %w", addr, time.Duration(p.TimeoutMS)*time.Millisecond, err)
			}
			return "", ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, handOffMaxPause)
	}
}

// readViaNode reads a partition of a complete checkpoint through the
// task's node: its local copy, or the store's, read through the node.
func (tc *taskContext) readViaNode(p ckptParams, part int) (obj []byte, source string, err error) {
	m := p.Manifest
	if part < 0 || part >= len(m.Partitions) {
		return nil, "", fmt.Errorf("partition %d of checkpoint %s is out of range [0, %d)", part, m.Name, len(m.Partitions))
	}
	info := m.Partitions[part]
	run, err := checkpoint.ParseRef(p.Run + "/" + p.Name)
	if err != nil {
		return nil, "", err
	}
	cl, err := tc.env.Clients(tc.env.NodeAddr)
	if err != nil {
		return nil, "", fmt.Errorf("node %s: %w", tc.env.NodeAddr, err)
	}
	obj, fromStore, err := cl.GetCheckpoint(tc.ctx, tc.env.App, nodeclient.CheckpointPart{Store: p.URI, Key: checkpoint.RunKey(run.RunID, info.Key), Size: info.Size, CRC32C: info.CRC32C})
	if err != nil {
		return nil, "", fmt.Errorf("node %s: %w", tc.env.NodeAddr, err)
	}
	source = "local"
	if fromStore {
		source = "store"
	}
	return obj, source, nil
}

// ckptNodeReport is the report of a partition handed to a node.
func (tc *taskContext) ckptNodeReport(p ckptParams, part int, node string, info []byte) {
	tc.checkpoints = append(tc.checkpoints, &clientpb.CheckpointReport{
		Kind: clientpb.CheckpointReport_KIND_WRITTEN, Rdd: uint32(p.RDD), Partition: uint32(part),
		Uri: strings.TrimSuffix(p.URI, "/") + "/" + p.Run + "/" + checkpoint.PartKey(p.Name, part), PartInfo: info, Node: node,
	})
}

// ckptPollEvery is how often the driver asks the nodes about the
// partitions they upload.
const ckptPollEvery = 20 * time.Millisecond

// ckptPoll is one round of CheckpointStatus answers, by node.
type ckptPoll map[string]ckptPollResult

type ckptPollResult struct {
	parts  []int
	states []*shufflepb.CheckpointPartState
	err    error
}

// watchCheckpoint starts the next round of n's watch, unless one runs:
// a poll of the nodes holding its undurable partitions or, once all are
// durable, the manifest's write. Each round's continuation starts the
// next.
func (s *scheduler) watchCheckpoint(n *node) {
	cp := n.ckpt
	w := cp.watch
	if w.polling || w.written || w.err != nil || !cp.planned {
		return
	}
	for p := range n.parts {
		if _, ok := cp.parts[p]; !ok {
			return // missing partitions: the next job's end computes them
		}
	}
	if w.deadline.IsZero() {
		w.deadline = time.Now().Add(s.c.opts.CheckpointTimeout)
	}
	if len(w.durable) == n.parts {
		// Manifests are written one at a time, in the order of the
		// checkpoints, so that this run's pruning (CheckpointKeep) never
		// meets a manifest being written.
		w.polling = true
		if s.ckptManifestBusy || s.earlierCheckpointPending(n) {
			s.ckptAfter(ckptPollEvery, func() {
				w.polling = false
				s.watchCheckpoint(n)
			})
			return
		}
		s.ckptManifestBusy = true
		s.writeManifestAsync(n)
		return
	}
	if time.Now().After(w.deadline) {
		w.err = s.ckptTimeoutError(n)
		return
	}
	byNode := map[string][]int{}
	for p, h := range w.handed {
		byNode[h.node] = append(byNode[h.node], p)
	}
	run, _ := s.c.CheckpointRun()
	store, app, nodes := ckptStoreURI(s.c.opts.CheckpointDir), s.c.app, s.nodes
	keyOf := func(p int) string { return checkpoint.RunKey(run, cp.parts[p].Key) }
	req := map[string][]string{}
	for node, parts := range byNode {
		slices.Sort(parts)
		byNode[node] = parts
		for _, p := range parts {
			req[node] = append(req[node], keyOf(p))
		}
	}
	w.polling = true
	async(s, s.life, probeTimeout+ckptPollEvery, func(ctx context.Context) ckptPoll {
		select {
		case <-ctx.Done():
		case <-time.After(ckptPollEvery):
		}
		out := ckptPoll{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for node, keys := range req {
			wg.Go(func() {
				states, err := nodes.CheckpointStatus(ctx, node, app, store, keys)
				mu.Lock()
				out[node] = ckptPollResult{parts: byNode[node], states: states, err: err}
				mu.Unlock()
			})
		}
		wg.Wait()
		return out
	}, func(res ckptPoll) {
		w.polling = false
		if cp.done || n.ckpt.watch != w {
			return
		}
		s.ckptPolled(n, res)
		s.watchCheckpoint(n)
	})
}

// ckptAfter runs then on the loop after d.
func (s *scheduler) ckptAfter(d time.Duration, then func()) {
	async(s, s.life, d+time.Second, func(ctx context.Context) bool {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
		return true
	}, func(bool) { then() })
}

// earlierCheckpointPending reports whether a checkpoint marked before n
// is being written through the nodes and has no manifest yet.
func (s *scheduler) earlierCheckpointPending(n *node) bool {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for _, m := range s.c.checkpoints {
		if m == n {
			return false
		}
		if cp := m.ckpt; !cp.done && !cp.local && cp.planned && cp.watch != nil && !cp.watch.written && cp.watch.err == nil {
			return true
		}
	}
	return false
}

// ckptPolled applies a round of answers: durable partitions are logged
// (checkpoint_written, with durable_ms), new upload failures too
// (checkpoint_upload_failed), and a partition its node does not hold, or
// whose node is lost, is forgotten: the next job's end computes it again.
func (s *scheduler) ckptPolled(n *node, res ckptPoll) {
	cp, w := n.ckpt, n.ckpt.watch
	run, _ := s.c.CheckpointRun()
	uriOf := func(p int) string {
		return strings.TrimSuffix(ckptStoreURI(s.c.opts.CheckpointDir), "/") + "/" + checkpoint.RunKey(run, cp.parts[p].Key)
	}
	lost := func(p int, why string) {
		s.c.log.Warn("checkpoint partition lost before it was durable; computing it again", "rdd", n.id, "name", cp.info.Name, "partition", p, "node", w.handed[p].node, "why", why)
		delete(w.handed, p)
		delete(cp.parts, p)
	}
	for node, r := range res {
		if r.err != nil || s.lostNodes[node] {
			if s.lostNodes[node] {
				for _, p := range r.parts {
					lost(p, "its node was lost")
				}
				continue
			}
			s.probe(s.life, node, func(err error) {
				if err != nil {
					s.nodeLost(node, "checkpoint status: "+err.Error())
				}
			})
			continue
		}
		for i, p := range r.parts {
			st := r.states[i]
			ev := eventlog.Checkpoint{RDD: n.id, Partition: p, URI: uriOf(p)}
			switch st.GetState() {
			case shufflepb.CheckpointState_CHECKPOINT_STATE_DURABLE:
				info := cp.parts[p]
				s.c.events.Write(&eventlog.CheckpointWritten{Checkpoint: ev, Name: cp.info.Name, Sequence: cp.info.Seq, Partitions: n.parts,
					Bytes: info.Size, DurableMS: max(st.GetDurableUnixMs()-st.GetHandedUnixMs(), 0), Node: node})
				w.durable[p] = true
				delete(w.handed, p)
			case shufflepb.CheckpointState_CHECKPOINT_STATE_QUEUED:
				if f := int(st.GetFailedAttempts()); f > w.failures[p] {
					w.failures[p], w.lastErr = f, fmt.Sprintf("node %s: %s", node, st.GetLastError())
					s.c.events.Write(&eventlog.CheckpointUploadFailed{Checkpoint: ev, Name: cp.info.Name, Node: node, Reason: st.GetLastError(), Attempts: f})
				}
			default:
				lost(p, "its node does not hold it (restarted without it, or the application expired there)")
			}
		}
	}
}

// ckptTimeoutError is the error of a checkpoint not durable within
// CheckpointTimeout: it names the store, its endpoint and bucket, the
// partitions and the last upload error.
func (s *scheduler) ckptTimeoutError(n *node) error {
	w := n.ckpt.watch
	var parts []int
	for p := range w.handed {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	store := ckptStoreURI(s.c.opts.CheckpointDir)
	where := "store " + store
	if bucket, ok := strings.CutPrefix(store, "s3://"); ok {
		bucket, _, _ = strings.Cut(bucket, "/")
		endpoint := s.c.opts.S3.Endpoint
		if endpoint == "" {
			endpoint = "$AWS_ENDPOINT_URL of the nodes"
		}
		where = fmt.Sprintf("store %s (endpoint %s, bucket %q)", store, endpoint, bucket)
	}
	last := w.lastErr
	if last == "" {
		last = "no upload error reported (the uploads did not finish)"
	}
	return fmt.Errorf("client: checkpoint %s of %s: partitions %v not durable in the %s within the checkpoint timeout of %v (Options.CheckpointTimeout); last error: %s",
		n.ckpt.info.Name, n.displayName(), parts, where, s.c.opts.CheckpointTimeout, last)
}

// writeManifestAsync writes n's manifest off the loop, once every
// partition is durable; the continuation marks the checkpoint ready to
// truncate (settleCheckpoints), or failed.
func (s *scheduler) writeManifestAsync(n *node) {
	w := n.ckpt.watch
	fn := s.manifestWriter(n)
	async(s, s.life, manifestTimeout, fn, func(r manifestWritten) {
		w.polling = false
		s.ckptManifestBusy = false
		if r.err != nil {
			w.err = r.err
			return
		}
		w.written = true
		n.ckpt.readParams = s.c.ckptReadParams(n.id, r.run, r.m)
	})
}

// settleCheckpoints truncates the lineage of the checkpoints whose
// manifest is written, and returns the error of one that failed. The
// loop calls it at the start of each job and in WaitCheckpoints.
func (s *scheduler) settleCheckpoints() error {
	s.c.mu.Lock()
	pending := slices.Clone(s.c.checkpoints)
	s.c.mu.Unlock()
	var errs []error
	for _, n := range pending {
		cp := n.ckpt
		if cp.done || cp.local || cp.watch == nil {
			continue
		}
		if cp.watch.err != nil {
			// Reported once; the checkpoint is abandoned (no manifest), its
			// lineage kept.
			errs = append(errs, cp.watch.err)
			cp.watch = nil
			cp.planned = false
			clear(cp.parts)
			continue
		}
		if cp.watch.written {
			read := cp.read
			read.Params = cp.readParams
			s.truncate(n, read)
		}
	}
	return errors.Join(errs...)
}

// pendingCheckpoints reports whether a checkpoint through the nodes is
// not yet complete.
func (s *scheduler) pendingCheckpoints() bool {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for _, n := range s.c.checkpoints {
		if cp := n.ckpt; !cp.done && !cp.local && cp.planned && cp.watch != nil {
			return true
		}
	}
	return false
}

// WaitCheckpoints waits until every checkpoint the context's jobs have
// computed is complete in the store (its manifest written) and its
// lineage truncated, computing again the partitions lost with a node
// before they were durable. With CheckpointVia "node" a job returns
// before its checkpoints are durable; Close waits for them too (when no
// job runs), so a program needs this only to know its checkpoints
// complete at a given point. It fails with the error of a checkpoint not
// durable within Options.CheckpointTimeout.
func (c *Context) WaitCheckpoints(ctx context.Context) error {
	return c.call(ctx, func(s *scheduler) error { return s.waitCheckpoints(ctx) })
}

func (s *scheduler) waitCheckpoints(ctx context.Context) error {
	job := max(s.jobs-1, 0)
	for {
		if err := s.settleCheckpoints(); err != nil {
			return err
		}
		if !s.pendingCheckpoints() {
			return nil
		}
		if err := s.finishCheckpoints(ctx, job); err != nil {
			return err
		}
		if _, err := await(s, ctx, time.Second, func(ctx context.Context) bool {
			select {
			case <-ctx.Done():
			case <-time.After(ckptPollEvery):
			}
			return true
		}); err != nil {
			return fmt.Errorf("client: waiting for checkpoints to be durable: %w", err)
		}
	}
}
