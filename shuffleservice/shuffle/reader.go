package shuffle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"shoal/shuffleservice/shufflepb"
)

// MapLocation is where a committed map output lives: the address of the
// node service that serves it, and the output as the node committed it.
// The driver may cut Output.Lengths to the blocks a task reads: they are
// then blocks [Start, Start+len(Output.Lengths)), the first of which
// begins at byte Offset of a sorted output's data file. Both are zero for
// an output whole.
type MapLocation struct {
	Node   string
	Output *shufflepb.MapOutput
	Start  int
	Offset int64
}

// Fetcher fetches blocks from one node service: a
// *nodeclient.Client, or a fake in tests. Fetch streams the blocks of req,
// calling fn for each chunk in order (the chunk is valid only during the
// call); an error from fn ends the stream and is returned as is. Its
// errors match this package's sentinels with errors.Is, and IsRetryable
// tells transient failures apart.
type Fetcher interface {
	Fetch(ctx context.Context, req *shufflepb.FetchRequest, fn func(*shufflepb.FetchChunk) error) error
}

// ClientSource returns the Fetcher of a node service address (see
// nodeclient.Source.Fetchers). Fetchers are shared and owned by the
// source; the reader does not close them.
type ClientSource func(addr string) (Fetcher, error)

// Reader defaults.
const (
	DefaultMaxBytesInFlight = 48 << 20
	DefaultFetchRetries     = 3
	DefaultRetryBackoff     = 100 * time.Millisecond
	DefaultIdleTimeout      = 20 * time.Second
	defaultFetchers         = 4
)

// ReaderOptions configure a shuffle reader.
type ReaderOptions struct {
	App     string
	Shuffle uint32
	// The reduce partitions to read, [ReduceStart, ReduceEnd).
	ReduceStart, ReduceEnd int
	// Maps lists every map output of the shuffle.
	Maps []MapLocation
	// LocalNode is the address of this machine's node service; blocks it
	// serves are read from LocalLayout's files directly. Empty: fetch all.
	LocalNode   string
	LocalLayout Layout
	// Clients dials node services for remote blocks.
	Clients ClientSource
	// MaxBytesInFlight bounds the bytes of blocks fetched or read but not
	// yet consumed; default DefaultMaxBytesInFlight.
	MaxBytesInFlight int64
	// Fetchers is the number of concurrent fetch streams; default 4.
	Fetchers int
	// Retries of a fetch that failed transiently (node unreachable, block
	// damaged on the wire); default DefaultFetchRetries. Backoff doubles
	// from RetryBackoff.
	Retries      int
	RetryBackoff time.Duration
	// IdleTimeout ends a fetch stream that delivers nothing for this long
	// (a node that stopped answering without closing its connection); it
	// is retried like any transient failure. Default DefaultIdleTimeout.
	IdleTimeout time.Duration
}

// ReaderStats describe what a reader did.
type ReaderStats struct {
	Blocks        int64 // non-empty blocks read
	LocalBytes    int64 // bytes read from local files
	RemoteBytes   int64 // bytes fetched from node services
	FetchRequests int64 // fetch streams opened, retries included
	Retries       int64
	Records       int64
	FetchWait     time.Duration // time Next waited for blocks to arrive
}

// fetchUnit is a group of blocks read together: one fetch request to one
// node, or one batch of local reads. Its bytes are reserved in the
// in-flight budget before it starts and released as its blocks are
// consumed.
type fetchUnit struct {
	node   string
	local  bool
	blocks []blockRef
	bytes  int64
}

type blockRef struct {
	out    *shufflepb.MapOutput
	reduce int
	length int64
	offset int64 // in a sorted output's data file
}

// fetchedBlock is a whole, checksum-verified block waiting to be consumed.
type fetchedBlock struct {
	data    []byte
	release int64 // in-flight bytes to release once consumed
	reuse   bool  // data is the reader's own buffer, reusable once consumed
}

// Reader reads the records of a range of reduce partitions from every map
// output of a shuffle. Blocks arrive in no particular order; within a block
// records keep the order the writer gave them. A block is handed on only
// once all its frames have arrived and passed their checksums, so a corrupt
// block never yields a record.
type Reader struct {
	opts   ReaderOptions
	ctx    context.Context
	cancel context.CancelFunc
	sem    *semaphore.Weighted
	limit  int64

	results chan fetchedBlock
	spare   chan []byte // consumed local-read buffers, for reuse
	errc    chan error
	wg      sync.WaitGroup
	pending int // blocks not yet consumed

	dec        frameDecoder
	cur        fetchedBlock
	rest, raw  []byte
	key, value []byte
	err        error
	closed     bool

	blocks, local, remote, requests, retries atomic.Int64
	records                                  int64
	wait                                     time.Duration // in nextBlock, waiting for results
}

// NewReader starts fetching and returns the reader. Close it when done.
func NewReader(ctx context.Context, opts ReaderOptions) (*Reader, error) {
	if opts.MaxBytesInFlight <= 0 {
		opts.MaxBytesInFlight = DefaultMaxBytesInFlight
	}
	if opts.Fetchers <= 0 {
		opts.Fetchers = defaultFetchers
	}
	if opts.Retries < 0 {
		opts.Retries = 0
	} else if opts.Retries == 0 {
		opts.Retries = DefaultFetchRetries
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = DefaultRetryBackoff
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	units, err := planFetch(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Reader{
		opts:    opts,
		ctx:     ctx,
		cancel:  cancel,
		limit:   opts.MaxBytesInFlight,
		sem:     semaphore.NewWeighted(opts.MaxBytesInFlight),
		results: make(chan fetchedBlock, 64),
		spare:   make(chan []byte, 4),
		errc:    make(chan error, 1),
	}
	queue := make(chan *fetchUnit, len(units))
	for _, u := range units {
		r.pending += len(u.blocks)
		queue <- u
	}
	close(queue)
	for range min(opts.Fetchers, len(units)) {
		r.wg.Add(1)
		go r.fetcher(queue)
	}
	return r, nil
}

// planFetch groups the non-empty blocks by node into units of at most
// MaxBytesInFlight/5 bytes (so that several units are in flight at once),
// in an order shuffled across nodes so that readers spread their load.
func planFetch(opts ReaderOptions) ([]*fetchUnit, error) {
	if opts.ReduceStart < 0 || opts.ReduceEnd < opts.ReduceStart {
		return nil, fmt.Errorf("%w: reduce range [%d, %d)", ErrInvalidArgument, opts.ReduceStart, opts.ReduceEnd)
	}
	target := max(opts.MaxBytesInFlight/5, 1)
	open := map[string]*fetchUnit{}
	var units []*fetchUnit
	for _, m := range opts.Maps {
		out := m.Output
		if out == nil || m.Start < 0 || opts.ReduceStart < m.Start || opts.ReduceEnd > m.Start+len(out.Lengths) {
			return nil, fmt.Errorf("%w: map output %v (from block %d) has no partitions [%d, %d)", ErrOutOfRange, out, m.Start, opts.ReduceStart, opts.ReduceEnd)
		}
		local := opts.LocalNode != "" && m.Node == opts.LocalNode
		if !local && opts.Clients == nil {
			return nil, fmt.Errorf("%w: remote block on %s but no ClientSource", ErrInvalidArgument, m.Node)
		}
		off := m.Offset
		for _, n := range out.Lengths[:opts.ReduceStart-m.Start] {
			off += int64(n)
		}
		for p := opts.ReduceStart; p < opts.ReduceEnd; p++ {
			n := int64(out.Lengths[p-m.Start])
			if n == 0 {
				continue
			}
			u := open[m.Node]
			if u == nil || u.bytes+n > target {
				u = &fetchUnit{node: m.Node, local: local}
				open[m.Node] = u
				units = append(units, u)
			}
			u.blocks = append(u.blocks, blockRef{out: out, reduce: p, length: n, offset: off})
			u.bytes += n
			off += n
		}
	}
	rand.Shuffle(len(units), func(i, j int) { units[i], units[j] = units[j], units[i] })
	return units, nil
}

func (r *Reader) fetcher(queue <-chan *fetchUnit) {
	defer r.wg.Done()
	for u := range queue {
		// A unit larger than the whole budget takes all of it.
		reserve := min(u.bytes, r.limit)
		if err := r.sem.Acquire(r.ctx, reserve); err != nil {
			return
		}
		var err error
		if u.local {
			err = r.readLocal(u, reserve)
		} else {
			err = r.fetchRemote(u, reserve)
		}
		if err != nil {
			select {
			case r.errc <- err:
			default:
			}
			r.cancel()
			return
		}
	}
}

// deliver hands a verified block to the consumer, attributing to it a
// share of the unit's reservation.
func (r *Reader) deliver(data []byte, reuse bool, reserve *int64, length int64) error {
	rel := min(*reserve, length)
	*reserve -= rel
	select {
	case r.results <- fetchedBlock{data: data, release: rel, reuse: reuse}:
		r.blocks.Add(1)
		return nil
	case <-r.ctx.Done():
		r.sem.Release(rel)
		return r.ctx.Err()
	}
}

// readLocal reads the unit's blocks from this node's files: consecutive
// blocks of a sorted output with one open and one read.
func (r *Reader) readLocal(u *fetchUnit, reserve int64) error {
	defer func() { r.sem.Release(reserve) }() // what no block took
	l := r.opts.LocalLayout
	for i := 0; i < len(u.blocks); {
		b := u.blocks[i]
		out := b.out
		var path string
		// The run's bytes are [b.offset, b.offset+size) of the output;
		// at is where they start in the file.
		j, at, size := i+1, b.offset, b.length
		switch out.Kind {
		case shufflepb.OutputKind_OUTPUT_KIND_SORTED:
			path = l.DataPath(r.opts.App, out.Shuffle, out.Map, out.Attempt)
			for j < len(u.blocks) && u.blocks[j].out == out && u.blocks[j].offset == b.offset+size {
				size += u.blocks[j].length
				j++
			}
		case shufflepb.OutputKind_OUTPUT_KIND_HASH:
			path, at = l.HashPath(r.opts.App, out.Shuffle, out.Map, out.Attempt, b.reduce), 0
		default:
			return r.failed(u.node, b, fmt.Errorf("%w: output kind %v", ErrInvalidArgument, out.Kind))
		}
		// A lone block goes into a reusable buffer; a run of blocks into
		// one of its own, handed on in pieces.
		var data []byte
		reuse := j == i+1
		if reuse {
			select {
			case data = <-r.spare:
			default:
			}
		}
		if int64(cap(data)) < size {
			data = make([]byte, size)
		}
		data = data[:size]
		if err := readAt(path, data, at); err != nil {
			return r.failed(u.node, b, err)
		}
		for _, blk := range u.blocks[i:j] {
			lo, hi := blk.offset-b.offset, blk.offset-b.offset+blk.length
			block := data[lo:hi:hi]
			if err := VerifyFrames(block); err != nil {
				return r.failed(u.node, blk, fmt.Errorf("%s: %w", path, err))
			}
			r.local.Add(blk.length)
			if err := r.deliver(block, reuse, &reserve, blk.length); err != nil {
				return err
			}
		}
		i = j
	}
	return nil
}

func readAt(path string, buf []byte, off int64) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s is missing", ErrNoMapOutput, path)
		}
		return err
	}
	defer f.Close()
	if _, err := f.ReadAt(buf, off); err != nil {
		if err == io.EOF {
			return corruptf("%s is shorter than its committed size", path)
		}
		return err
	}
	return nil
}

// fetchRemote fetches the unit's blocks from their node, retrying the
// blocks not yet delivered when the stream fails transiently or a block
// arrives damaged.
func (r *Reader) fetchRemote(u *fetchUnit, reserve int64) error {
	defer func() { r.sem.Release(reserve) }()
	c, err := r.opts.Clients(u.node)
	if err != nil {
		return r.failed(u.node, u.blocks[0], err)
	}
	todo := u.blocks
	backoff := r.opts.RetryBackoff
	for attempt := 0; ; attempt++ {
		done, err := r.fetchOnce(c, todo, &reserve)
		todo = todo[done:]
		if err == nil {
			return nil
		}
		if r.ctx.Err() != nil {
			return r.ctx.Err()
		}
		if !(IsRetryable(err) || errors.Is(err, errDamagedInFlight) || errors.Is(err, errStalled)) || attempt >= r.opts.Retries {
			return r.failed(u.node, todo[0], err)
		}
		r.retries.Add(1)
		select {
		case <-time.After(backoff):
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
		backoff *= 2
	}
}

// errStalled marks a fetch stream that delivered nothing for IdleTimeout.
var errStalled = errors.New("shuffle: fetch stalled")

// errDamagedInFlight marks a block that the node verified before sending
// but that failed its checksum on arrival: the wire damaged it, so it is
// fetched again.
var errDamagedInFlight = errors.New("shuffle: block damaged in flight")

// fetchOnce runs one fetch stream for blocks, in order, and returns how many
// of them were delivered.
func (r *Reader) fetchOnce(c Fetcher, blocks []blockRef, reserve *int64) (int, error) {
	req := &shufflepb.FetchRequest{App: r.opts.App, Shuffle: r.opts.Shuffle}
	for i, b := range blocks {
		if n := len(req.Blocks); i > 0 && n > 0 && blocks[i-1].out == b.out && req.Blocks[n-1].ReduceEnd == uint32(b.reduce) {
			req.Blocks[n-1].ReduceEnd++
			continue
		}
		req.Blocks = append(req.Blocks, &shufflepb.BlockRange{Map: b.out.Map, ReduceStart: uint32(b.reduce), ReduceEnd: uint32(b.reduce) + 1})
	}
	r.requests.Add(1)
	done := 0
	var buf []byte
	// The idle timer runs only while waiting for the node: it is stopped
	// while a chunk is handled (delivering may wait for the consumer).
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	var stalled atomic.Bool
	idle := time.AfterFunc(r.opts.IdleTimeout, func() { stalled.Store(true); cancel() })
	defer idle.Stop()
	err := c.Fetch(ctx, req, func(ch *shufflepb.FetchChunk) error {
		if !idle.Stop() {
			return errStalled
		}
		defer idle.Reset(r.opts.IdleTimeout)
		if done >= len(blocks) {
			return corruptf("node sent more blocks than requested")
		}
		// Empty blocks were not requested, so every expected block has data.
		b := blocks[done]
		if ch.Map != b.out.Map || int(ch.Reduce) != b.reduce {
			return corruptf("node sent block (%d, %d), expected (%d, %d)", ch.Map, ch.Reduce, b.out.Map, b.reduce)
		}
		if buf == nil && ch.End {
			buf = ch.Data // the common case: a block in one chunk, no copy
		} else {
			buf = append(buf, ch.Data...)
		}
		if !ch.End {
			return nil
		}
		data := buf
		buf = nil
		if int64(len(data)) != b.length {
			return fmt.Errorf("%w: %d bytes, committed %d", errDamagedInFlight, len(data), b.length)
		}
		if err := VerifyFrames(data); err != nil {
			return fmt.Errorf("%w: %w", errDamagedInFlight, err)
		}
		r.remote.Add(b.length)
		if err := r.deliver(data, false, reserve, b.length); err != nil {
			return err
		}
		done++
		return nil
	})
	if err != nil && stalled.Load() && r.ctx.Err() == nil {
		err = fmt.Errorf("%w: no data for %v", errStalled, r.opts.IdleTimeout)
	}
	if err == nil && done < len(blocks) {
		err = corruptf("node ended the stream after %d of %d blocks", done, len(blocks))
	}
	return done, err
}

func (r *Reader) failed(node string, b blockRef, err error) error {
	return &FetchFailedError{App: r.opts.App, Shuffle: r.opts.Shuffle, Map: b.out.Map, Reduce: b.reduce, Node: node, Err: err}
}

// Next advances to the next record. It returns false at the end or on an
// error; Err tells which.
func (r *Reader) Next() bool {
	if r.err != nil || r.closed {
		return false
	}
	for len(r.raw) == 0 {
		if len(r.rest) == 0 && !r.nextBlock() {
			return false
		}
		// Every block was verified whole on arrival: no second checksum.
		raw, rest, err := r.dec.decodeVerified(r.rest)
		if err != nil {
			r.err = err // verified on arrival, so this is a bug or memory fault
			return false
		}
		r.raw, r.rest = raw, rest
	}
	var err error
	r.key, r.value, r.raw, err = NextRecord(r.raw)
	if err != nil {
		r.err = err
		return false
	}
	r.records++
	return true
}

// nextBlock releases the consumed block and waits for the next one.
func (r *Reader) nextBlock() bool {
	if r.cur.release > 0 {
		r.sem.Release(r.cur.release)
	}
	if r.cur.reuse {
		select {
		case r.spare <- r.cur.data:
		default:
		}
	}
	r.cur = fetchedBlock{}
	if r.pending == 0 {
		return false
	}
	select {
	case b := <-r.results: // a block is ready: no wait
		r.pending--
		r.cur, r.rest = b, b.data
		return true
	default:
	}
	start := time.Now()
	defer func() { r.wait += time.Since(start) }()
	select {
	case b := <-r.results:
		r.pending--
		r.cur, r.rest = b, b.data
		return true
	case err := <-r.errc:
		r.err = err
	case <-r.ctx.Done():
		select {
		case err := <-r.errc:
			r.err = err
		default:
			r.err = r.ctx.Err()
		}
	}
	return false
}

func (r *Reader) Key() []byte   { return r.key }
func (r *Reader) Value() []byte { return r.value }
func (r *Reader) Err() error    { return r.err }

// Stats reports what the reader did so far.
func (r *Reader) Stats() ReaderStats {
	return ReaderStats{
		Blocks: r.blocks.Load(), LocalBytes: r.local.Load(), RemoteBytes: r.remote.Load(),
		FetchRequests: r.requests.Load(), Retries: r.retries.Load(), Records: r.records, FetchWait: r.wait,
	}
}

// Close stops fetching and waits for the fetchers to end. Idempotent.
func (r *Reader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.cancel()
	r.wg.Wait()
	r.dec.close()
	return nil
}
