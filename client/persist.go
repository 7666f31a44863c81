package client

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"shoal/blockstore"
	"shoal/client/clientpb"
	"shoal/client/eventlog"
	"shoal/internal/codec"
	"shoal/shuffleservice"
)

// Cached partitions (docs/DESIGN.md §4). A persisted RDD's partitions are
// stored as blocks while they are first computed: in the node service
// (serialized, in memory and/or on disk, outliving the worker), or in the
// worker's heap (MemoryDeser). A later task that reads the RDD reads the
// block instead of computing the partition. The driver learns from task
// updates where each block is held, sends tasks to it, and plans a stage
// whose every input partition is held in a node as if the RDD were a
// source: its lineage (and the shuffles in it) is not needed.

// StorageLevel is where Persist keeps an RDD's partitions, and with what
// priority (WithPriority). Its values are the constants below; the zero
// value is no level.
type StorageLevel int64

// The storage levels. MemoryDeser keeps Go values in the heap of the
// worker that computed them: fastest to read, lost with the worker. The
// others keep the encoded records in the node service of the worker's
// machine, so a worker's death loses nothing; the _2 levels keep a second
// copy on another node, so a node's death loses nothing either.
const (
	MemoryDeser StorageLevel = iota + 1
	MemorySer
	MemoryAndDisk
	DiskOnly
	MemorySer2
	MemoryAndDisk2
	DiskOnly2
)

// A StorageLevel holds its kind (one of the constants) in its low
// levelBits bits and its priority in the others, so that the levels are
// constants and a level with a priority is still one comparable value.
const (
	levelBits   = 8
	maxPriority = math.MaxInt64 >> levelBits
	minPriority = math.MinInt64 >> levelBits
)

// levelKind describes a kind of StorageLevel.
type levelKind struct {
	name     string
	node     blockstore.Level // the node store's level; None: the worker's heap
	replicas int
}

// levelKinds describes the levels, by kind (the constants' values).
var levelKinds = [...]levelKind{
	MemoryDeser:    {name: "MemoryDeser", replicas: 1},
	MemorySer:      {name: "MemorySer", node: blockstore.MemorySer, replicas: 1},
	MemoryAndDisk:  {name: "MemoryAndDisk", node: blockstore.MemoryAndDisk, replicas: 1},
	DiskOnly:       {name: "DiskOnly", node: blockstore.DiskOnly, replicas: 1},
	MemorySer2:     {name: "MemorySer_2", node: blockstore.MemorySer, replicas: 2},
	MemoryAndDisk2: {name: "MemoryAndDisk_2", node: blockstore.MemoryAndDisk, replicas: 2},
	DiskOnly2:      {name: "DiskOnly_2", node: blockstore.DiskOnly, replicas: 2},
}

// kind describes l's level (its priority aside): an empty levelKind (no
// name) if l is not a level.
func (l StorageLevel) kind() levelKind {
	if k := int(l & (1<<levelBits - 1)); k < len(levelKinds) {
		return levelKinds[k]
	}
	return levelKind{}
}

func (l StorageLevel) name() string                { return l.kind().name }
func (l StorageLevel) replicas() int               { return l.kind().replicas }
func (l StorageLevel) priority() int               { return int(l >> levelBits) }
func (l StorageLevel) valid() bool                 { return l.name() != "" }
func (l StorageLevel) inHeap() bool                { return l.kind().node == blockstore.None }
func (l StorageLevel) nodeLevel() blockstore.Level { return l.kind().node }

// ParseStorageLevel returns the level named s (as String prints it; case
// does not matter).
func ParseStorageLevel(s string) (StorageLevel, error) {
	var names []string
	for k, lk := range levelKinds {
		if lk.name == "" {
			continue
		}
		if strings.EqualFold(lk.name, s) {
			return StorageLevel(k), nil
		}
		names = append(names, lk.name)
	}
	return 0, fmt.Errorf("client: unknown storage level %q (want one of %s)", s, strings.Join(names, ", "))
}

// String is the level's name, without its priority ("" for the zero
// value).
func (l StorageLevel) String() string {
	if !l.valid() && l != 0 {
		return fmt.Sprintf("StorageLevel(%d)", int64(l))
	}
	return l.name()
}

// WithPriority returns l with a persistence priority: making room in a
// node's memory evicts blocks of lower priority first, and never blocks
// of a higher one. The default is 0. A priority beyond ±2^55 is taken as
// the nearest of those.
func (l StorageLevel) WithPriority(p int) StorageLevel {
	p64 := min(max(int64(p), minPriority), maxPriority)
	return l&(1<<levelBits-1) | StorageLevel(p64<<levelBits)
}

// maxBlockBytes bounds a block: a partition whose records encode to more
// is not cached (it is computed again when read again). It is what a node
// service accepts by default (--max-block-bytes): buffering more would be
// refused anyway.
const maxBlockBytes = shuffleservice.DefaultMaxBlockBytes

// persistence is how a node is persisted.
type persistence struct {
	level StorageLevel
	cache opSpec // cacheOp[T] of the node's record type
}

// Persist keeps the RDD's partitions at level once an action has
// computed them; later actions read them instead of computing them again.
// It returns r. Persisting again at another level is an error (Unpersist
// first).
func (r *RDD[T]) Persist(level StorageLevel) *RDD[T] {
	switch {
	case level == 0:
		r.n.setErr(errors.New("client: Persist: the zero StorageLevel (use one of the package's levels)"))
	case !level.valid():
		r.n.setErr(fmt.Errorf("client: Persist: %v is not a storage level (use one of the package's levels)", level))
	case r.n.persist != nil && r.n.persist.level != level:
		r.n.setErr(fmt.Errorf("client: Persist: %s is persisted at %v already; Unpersist it first", r.n.displayName(), r.n.persist.level))
	default:
		r.n.persist = &persistence{level: level, cache: mustSpec(cacheOp[T]{}, nil)}
		r.n.ctx.events.Write(&eventlog.RDDPersisted{RDD: r.n.id, Name: r.n.displayName(), Partitions: r.n.parts, Level: level.String()})
	}
	return r
}

// Cache is Persist(MemorySer): the partitions are kept in the node
// services' memory and outlive the workers.
func (r *RDD[T]) Cache() *RDD[T] { return r.Persist(MemorySer) }

// Unpersist drops the RDD's cached partitions from every node service
// and worker at once and stops persisting it.
func (r *RDD[T]) Unpersist(ctx context.Context) error { return r.n.ctx.unpersist(ctx, r.n) }

// unpersist removes n's blocks everywhere they may be.
func (c *Context) unpersist(ctx context.Context, n *node) error {
	return c.callAsync(ctx, func(s *scheduler, reply func(error)) {
		if n.persist == nil {
			reply(nil)
			return
		}
		inHeap := n.persist.level.inHeap()
		for p := range n.parts {
			delete(s.blocks, [2]int{n.id, p})
		}
		n.persist = nil
		c.events.Write(&eventlog.RDDUnpersisted{RDD: n.id})
		if inHeap {
			for _, w := range s.order {
				s.ep.Message(w, encodeDropBlocks(n.id)) // a worker that is gone has nothing left
			}
			reply(nil)
			return
		}
		addrs, nodes, app, name := s.liveNodes(), s.nodes, c.app, n.displayName()
		async(s, ctx, unpersistTimeout, func(ctx context.Context) error {
			var errs []error
			for _, addr := range addrs {
				if err := nodes.RemoveBlocks(ctx, addr, app, n.id); err != nil {
					errs = append(errs, fmt.Errorf("client: unpersist %s on node %s: %w", name, addr, err))
				}
			}
			return errors.Join(errs...)
		}, reply)
	})
}

// unpersistTimeout bounds removing an RDD's blocks from the nodes.
const unpersistTimeout = time.Minute

// cacheParams configure a cacheOp for one stage attempt.
type cacheParams struct {
	RDD      int    `json:"rdd"`
	Level    string `json:"level"`
	Priority int    `json:"priority,omitempty"`
	// Held lists, by partition, where its block is held: node service
	// addresses, or worker IDs for MemoryDeser.
	Held map[int][]string `json:"held,omitempty"`
	// Nodes are the live node services, for a second copy (_2 levels).
	Nodes []string `json:"nodes,omitempty"`
	// Leaf is set when the plan has no lineage below the op (every block
	// is held): a block that cannot be read fails the task, and the
	// driver plans again with the lineage.
	Leaf      bool  `json:"leaf,omitempty"`
	HeapBytes int64 `json:"heap_bytes,omitempty"`
}

// cacheOp reads a persisted node's partition from its block, or computes
// it from its parent and stores the block while passing the records on.
type cacheOp[T any] struct{}

func (cacheOp[T]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	var p cacheParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	level, err := ParseStorageLevel(p.Level)
	if err != nil {
		return nil, err
	}
	level = level.WithPriority(p.Priority)
	var parent seqFn[T]
	if !p.Leaf {
		if parent, err = seqOf[T](parents[0]); err != nil {
			return nil, err
		}
	}
	cd, err := codecOf[T]()
	if err != nil {
		return nil, err
	}
	bc := &blockCache[T]{p: p, level: level, cd: cd}
	return seqFn[T](func(tc *taskContext, part int) iter.Seq[T] {
		return func(yield func(T) bool) {
			if hit, ok := bc.read(tc, part); ok {
				for v := range hit {
					if !yield(v) {
						return
					}
				}
				return
			}
			if parent == nil {
				tc.fail(fmt.Errorf("client: cached partition %d of RDD %d could not be read", part, p.RDD))
				return
			}
			bc.compute(tc, part, parent, yield)
		}
	}), nil
}

// blockCache is a cacheOp's access to the blocks of its RDD.
type blockCache[T any] struct {
	p     cacheParams
	level StorageLevel
	cd    codec.Codec[T]
}

func (bc *blockCache[T]) id(tc *taskContext, part int) blockstore.BlockID {
	return blockstore.BlockID{App: tc.env.App, RDD: bc.p.RDD, Partition: part}
}

func (bc *blockCache[T]) report(tc *taskContext, kind clientpb.BlockReport_Kind, part int, level, where string, n int64) *clientpb.BlockReport {
	r := &clientpb.BlockReport{Kind: kind, Rdd: uint32(bc.p.RDD), Partition: uint32(part), Level: level, Where: where, Bytes: n}
	tc.blocks = append(tc.blocks, r)
	return r
}

// read returns the partition's records from a block that holds it.
// Places the driver named that turn out not to hold it are reported
// MISSING.
func (bc *blockCache[T]) read(tc *taskContext, part int) (iter.Seq[T], bool) {
	held := bc.p.Held[part]
	if bc.level.inHeap() {
		if !slices.Contains(held, tc.env.WorkerID) {
			return nil, false
		}
		v, size, ok := tc.runner.heap.get(bc.p.RDD, part)
		if !ok {
			bc.report(tc, clientpb.BlockReport_KIND_MISSING, part, "", tc.env.WorkerID, 0).Reason = "not in the worker's heap (evicted)"
			return nil, false
		}
		vals := v.([]T)
		bc.report(tc, clientpb.BlockReport_KIND_HIT, part, bc.level.name(), tc.env.WorkerID, size)
		tc.addMetric("block_hits", 1)
		return countedIn(tc, slices.Values(vals)), true
	}
	// The local node first.
	held = slices.Clone(held)
	if i := slices.Index(held, tc.env.NodeAddr); i > 0 {
		held[0], held[i] = held[i], held[0]
	}
	id := bc.id(tc, part)
	for _, addr := range held {
		data, level, found, err := bc.get(tc, addr, id)
		if err == nil && !found {
			err = errors.New("the node does not hold it")
		}
		if err != nil {
			if tc.ctx.Err() != nil {
				return nil, false
			}
			bc.report(tc, clientpb.BlockReport_KIND_MISSING, part, "", addr, 0).Reason = err.Error()
			continue
		}
		bc.report(tc, clientpb.BlockReport_KIND_HIT, part, level.String(), addr, int64(len(data)))
		tc.addMetric("block_hits", 1)
		tc.addMetric("block_hit_bytes", int64(len(data)))
		return countedIn(tc, decodeRecords(tc, bc.cd, "cached block "+id.String(), data)), true
	}
	return nil, false
}

func (bc *blockCache[T]) get(tc *taskContext, addr string, id blockstore.BlockID) ([]byte, blockstore.Level, bool, error) {
	cl, err := tc.env.Clients(addr)
	if err != nil {
		return nil, blockstore.None, false, err
	}
	return cl.GetBlock(tc.ctx, id)
}

// A cached block and a checkpoint partition hold their records framed
// (codec.AppendFramed: each record's length as a uvarint, then the
// record's encoding).

// decodeRecords yields the records of a block or checkpoint partition
// framed by codec.AppendFramed in data; what names data in errors.
func decodeRecords[T any](tc *taskContext, cd codec.Codec[T], what string, data []byte) iter.Seq[T] {
	return func(yield func(T) bool) {
		for len(data) > 0 {
			rec, rest, err := codec.CutFramed(data)
			if err != nil {
				tc.fail(fmt.Errorf("client: %s is malformed", what))
				return
			}
			v, err := cd.Decode(rec)
			if err != nil {
				tc.fail(fmt.Errorf("client: %s: %w", what, err))
				return
			}
			data = rest
			if !yield(v) {
				return
			}
		}
	}
}

// compute passes the parent's records on and stores them as the block
// once the partition is complete. A consumer that stops early (Take)
// leaves nothing stored.
func (bc *blockCache[T]) compute(tc *taskContext, part int, parent seqFn[T], yield func(T) bool) {
	heap := bc.level.inHeap()
	var (
		vals     []T
		buf, rec []byte
		size     int64
		tooBig   bool
	)
	for v := range parent(tc, part) {
		if !tooBig {
			rec = bc.cd.Append(rec[:0], v)
			size += int64(len(rec))
			switch {
			case size > maxBlockBytes:
				tooBig, vals, buf = true, nil, nil
			case heap:
				vals = append(vals, v)
			default:
				buf = codec.AppendFramed(buf, rec)
			}
		}
		if !yield(v) {
			return
		}
	}
	if tc.failed() || tooBig {
		return
	}
	if heap {
		evicted, ok := tc.runner.heap.put(bc.p.HeapBytes, bc.p.RDD, part, vals, size)
		for _, e := range evicted {
			r := &clientpb.BlockReport{Kind: clientpb.BlockReport_KIND_EVICTED, Rdd: uint32(e[0]), Partition: uint32(e[1]), Level: MemoryDeser.name(), Where: tc.env.WorkerID}
			tc.blocks = append(tc.blocks, r)
		}
		if ok {
			bc.report(tc, clientpb.BlockReport_KIND_STORED, part, MemoryDeser.name(), tc.env.WorkerID, size)
			tc.addMetric("blocks_stored", 1)
		}
		return
	}
	id := bc.id(tc, part)
	for _, addr := range bc.targets(tc.env.NodeAddr) {
		bc.put(tc, addr, id, part, buf)
	}
}

// targets are the nodes a block goes to: the local one, and for a _2
// level the next live node after it.
func (bc *blockCache[T]) targets(local string) []string {
	t := []string{local}
	if bc.level.replicas() < 2 {
		return t
	}
	nodes := bc.p.Nodes
	i, _ := slices.BinarySearch(nodes, local)
	for k := range nodes {
		if o := nodes[(i+k)%len(nodes)]; o != local {
			return append(t, o)
		}
	}
	return t
}

// put stores a block in one node. A failure to store is not the task's
// failure: the partition is computed again when it is read again.
func (bc *blockCache[T]) put(tc *taskContext, addr string, id blockstore.BlockID, part int, data []byte) {
	cl, err := tc.env.Clients(addr)
	if err != nil {
		tc.env.Logger.Warn("block not stored", "block", id.String(), "node", addr, "err", err)
		return
	}
	stored, evicted, err := cl.PutBlock(tc.ctx, id, bc.level.nodeLevel(), bc.level.priority(), data)
	for _, e := range evicted {
		tc.blocks = append(tc.blocks, &clientpb.BlockReport{
			Kind: clientpb.BlockReport_KIND_EVICTED, Rdd: uint32(e.ID.RDD), Partition: uint32(e.ID.Partition),
			Level: e.Level.String(), ToDisk: e.ToDisk, Where: addr,
		})
		tc.addMetric("blocks_evicted", 1)
	}
	if err != nil {
		tc.env.Logger.Warn("block not stored", "block", id.String(), "node", addr, "err", err)
		return
	}
	if stored != blockstore.None {
		bc.report(tc, clientpb.BlockReport_KIND_STORED, part, stored.String(), addr, int64(len(data)))
		tc.addMetric("blocks_stored", 1)
	}
}

// heapCache is a worker's MemoryDeser blocks (its runner's): least recently used first
// out, never a block of the RDD being stored (the RDD paper's rule),
// bounded by the records' encoded size (the Go values take more; how much
// more depends on the type).
type heapCache struct {
	mu   sync.Mutex
	used int64
	lru  *list.List // of *heapEntry, most recent first
	byID map[[2]int]*list.Element
}

func newHeapCache() *heapCache {
	return &heapCache{lru: list.New(), byID: map[[2]int]*list.Element{}}
}

type heapEntry struct {
	id     [2]int // rdd, partition
	values any    // []T
	size   int64
}

func (h *heapCache) get(rdd, part int) (any, int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e := h.byID[[2]int{rdd, part}]
	if e == nil {
		return nil, 0, false
	}
	h.lru.MoveToFront(e)
	he := e.Value.(*heapEntry)
	return he.values, he.size, true
}

// put stores a block within limit bytes, evicting others if that makes
// room; otherwise it stores nothing and evicts nothing.
func (h *heapCache) put(limit int64, rdd, part int, values any, size int64) (evicted [][2]int, ok bool) {
	if limit <= 0 {
		limit = DefaultHeapCacheBytes
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	id := [2]int{rdd, part}
	h.removeLocked(id)
	free := limit - h.used
	var victims []*list.Element
	for e := h.lru.Back(); e != nil && free < size; e = e.Prev() {
		if he := e.Value.(*heapEntry); he.id[0] != rdd {
			victims = append(victims, e)
			free += he.size
		}
	}
	if free < size {
		return nil, false
	}
	for _, e := range victims {
		evicted = append(evicted, e.Value.(*heapEntry).id)
		h.removeLocked(e.Value.(*heapEntry).id)
	}
	h.byID[id] = h.lru.PushFront(&heapEntry{id: id, values: values, size: size})
	h.used += size
	return evicted, true
}

func (h *heapCache) removeLocked(id [2]int) {
	if e := h.byID[id]; e != nil {
		h.used -= e.Value.(*heapEntry).size
		h.lru.Remove(e)
		delete(h.byID, id)
	}
}

func (h *heapCache) dropRDD(rdd int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id := range h.byID {
		if id[0] == rdd {
			h.removeLocked(id)
		}
	}
}

// clear drops every block.
func (h *heapCache) clear() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lru.Init()
	clear(h.byID)
	h.used = 0
}
