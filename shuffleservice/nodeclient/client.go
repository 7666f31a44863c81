package nodeclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"shoal/blockstore"
	"shoal/internal/pki"
	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// Client is a connection to one node service: its shuffle (map outputs)
// and its block store (cached partitions). Its methods are safe for
// concurrent use; their errors match package shuffle's sentinels (and the
// block store's, for the block calls) with errors.Is, and
// shuffle.IsRetryable tells transient failures apart.
type Client struct {
	addr  string
	conn  *grpc.ClientConn
	rpc   shufflepb.ShuffleClient
	times linkTimes
}

// commitRetries is how many times CommitMapOutput tries a commit that
// fails with a retryable error; commitBackoff is its first pause. The
// pauses (doubling: 1.55 s in all) outlast reconnectMaxDelay, so that a
// commit to a node that just came back reaches it.
const (
	commitRetries = 6
	commitBackoff = 50 * time.Millisecond
)

// reconnectMaxDelay bounds the pause between two attempts to reconnect
// to a node that cannot be reached. gRPC's default grows to two minutes,
// and meanwhile every call fails at once: a node back after an outage of
// a few seconds would stay unusable to a client that saw the outage (a
// worker's, for its commits and fetches) long after it answers others.
const reconnectMaxDelay = time.Second

// minConnectTimeout is how long one attempt to connect may take: gRPC's
// default, which WithConnectParams needs spelled out.
const minConnectTimeout = 20 * time.Second

// Dial returns a client of the node service at addr (host:port). It does
// not wait for the connection; the first call does. The connection is
// kept alive, and a call whose context has no deadline gets one (link.go).
func Dial(addr string, opts ...DialOption) (*Client, error) {
	return dial(addr, defaultLinkTimes(), opts...)
}

// A DialOption configures Dial.
type DialOption func(*dialOptions)

type dialOptions struct {
	secret, token string
	tls           *pki.Identity
	serverName    string
}

// Credentials are what a client presents to node services: the cluster
// secret (admission) and its certificate (mutual TLS).
type Credentials struct {
	// Secret is the cluster secret ("" for none).
	Secret string
	// TLS is the client's identity: it is presented to nodes, and their
	// certificates are verified against its CA. nil: plain TCP, which
	// only a node on loopback started without --tls-dir accepts.
	TLS *pki.Identity
	// ServerName is the name every node's certificate carries, checked
	// instead of the host dialled (a Kubernetes Service's name, when
	// the nodes' addresses are not known when certificates are made).
	// Empty: the host dialled.
	ServerName string
}

// WithTLS makes the link mutual TLS 1.3: id's certificate is presented,
// and the node's verified against id's CA and serverName (the host
// dialled if empty); Credentials.TLS and ServerName say more. id nil:
// plain TCP.
func WithTLS(id *pki.Identity, serverName string) DialOption {
	return func(o *dialOptions) { o.tls, o.serverName = id, serverName }
}

// WithCredentials presents c to the node: its secret (WithClusterSecret)
// and, with c.TLS, mutual TLS 1.3 (WithTLS).
func WithCredentials(c Credentials) DialOption {
	return func(o *dialOptions) {
		o.secret, o.tls, o.serverName = c.Secret, c.TLS, c.ServerName
	}
}

// WithClusterSecret sends secret with every call (gRPC metadata
// shoal-cluster-secret), as a node started with a cluster secret
// requires. Without it, such a node refuses every call (Unauthenticated).
func WithClusterSecret(secret string) DialOption {
	return func(o *dialOptions) { o.secret = secret }
}

// WithAppToken sends the application's token with every call (gRPC
// metadata shoal-app-token). A node binds an application to the token its
// first RegisterApp carries, and refuses every later call about the
// application without it (Unauthenticated) or with another
// (PermissionDenied). A client is one application's: calls about another
// application's data are refused.
func WithAppToken(token string) DialOption {
	return func(o *dialOptions) { o.token = token }
}

// callCredentials are the per-call credentials of WithClusterSecret and
// WithAppToken. They work without transport security: they admit a
// caller, they do not protect the link.
type callCredentials struct{ secret, token string }

func (c callCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	md := make(map[string]string, 2)
	if c.secret != "" {
		md[nodewire.SecretMetadataKey] = c.secret
	}
	if c.token != "" {
		md[nodewire.AppTokenMetadataKey] = c.token
	}
	return md, nil
}

func (callCredentials) RequireTransportSecurity() bool { return false }

func dial(addr string, times linkTimes, opts ...DialOption) (*Client, error) {
	var o dialOptions
	for _, opt := range opts {
		opt(&o)
	}
	extra := []grpc.DialOption{}
	if o.secret != "" || o.token != "" {
		extra = append(extra, grpc.WithPerRPCCredentials(callCredentials{o.secret, o.token}))
	}
	transport := insecure.NewCredentials()
	if o.tls != nil {
		transport = o.tls.ClientCredentials(o.serverName)
	}
	conn, err := grpc.NewClient(addr, append(extra,
		grpc.WithTransportCredentials(transport),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(nodewire.MaxMessageSize),
			grpc.MaxCallSendMsgSize(nodewire.MaxMessageSize),
		),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: backoff.DefaultConfig.Multiplier,
				Jitter:     backoff.DefaultConfig.Jitter,
				MaxDelay:   reconnectMaxDelay,
			},
			MinConnectTimeout: minConnectTimeout,
		}),
		keepaliveDialOption(times),
	)...)
	if err != nil {
		return nil, fmt.Errorf("shuffle: dial node %s: %w", addr, err)
	}
	return &Client{addr: addr, conn: conn, rpc: shufflepb.NewShuffleClient(conn), times: times}, nil
}

// Addr returns the node's address.
func (c *Client) Addr() string { return c.addr }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// RegisterApp registers app with the node, or refreshes its TTL; ttl 0
// means the node's default.
func (c *Client) RegisterApp(ctx context.Context, app string, ttl time.Duration) (err error) {
	ctx, end := c.bound(ctx, "RegisterApp", c.times.call)
	defer end(&err)
	_, err = c.rpc.RegisterApp(ctx, &shufflepb.RegisterAppRequest{App: app, TtlMs: uint64(max(ttl, 0) / time.Millisecond)})
	return nodewire.FromStatus(err)
}

// RegisterWorker registers a worker of app and returns the node's layout,
// where the worker writes its map outputs.
func (c *Client) RegisterWorker(ctx context.Context, app, worker string, pid int) (_ shuffle.Layout, err error) {
	ctx, end := c.bound(ctx, "RegisterWorker", c.times.call)
	defer end(&err)
	// A worker starts beside its node: a node it cannot reach yet (the
	// machine's address is down for a moment) is waited for, within ctx,
	// rather than taken for gone.
	resp, err := c.rpc.RegisterWorker(ctx, &shufflepb.RegisterWorkerRequest{App: app, Worker: worker, Pid: int64(pid)}, grpc.WaitForReady(true))
	if err != nil {
		return shuffle.Layout{}, nodewire.FromStatus(err)
	}
	return shuffle.Layout{Dirs: resp.GetDirs()}, nil
}

// Heartbeat keeps app alive on the node.
func (c *Client) Heartbeat(ctx context.Context, app string) (err error) {
	ctx, end := c.bound(ctx, "Heartbeat", c.times.call)
	defer end(&err)
	_, err = c.rpc.Heartbeat(ctx, &shufflepb.HeartbeatRequest{App: app})
	return nodewire.FromStatus(err)
}

// CommitMapOutput commits a map output whose files are in place, and
// returns the output the node serves: out, or an earlier attempt's that it
// kept. A commit is idempotent, so it is retried a few times on retryable
// errors.
func (c *Client) CommitMapOutput(ctx context.Context, app string, out *shufflepb.MapOutput) (_ *shufflepb.MapOutput, err error) {
	ctx, end := c.bound(ctx, fmt.Sprintf("commit of shuffle %d map %d attempt %d", out.GetShuffle(), out.GetMap(), out.GetAttempt()), c.times.call)
	defer end(&err)
	backoff := commitBackoff
	for try := 1; ; try++ {
		resp, err := c.rpc.CommitMapOutput(ctx, &shufflepb.CommitRequest{App: app, Output: out})
		if err == nil {
			return resp.GetCommitted(), nil
		}
		if try == commitRetries || !shuffle.IsRetryable(err) || ctx.Err() != nil {
			return nil, nodewire.FromStatus(err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nodewire.FromStatus(err)
		case <-t.C:
		}
		backoff *= 2
	}
}

// Fetch streams the blocks of req, calling fn for each chunk in order. The
// chunk is valid only during the call. An error from fn ends the stream
// and is returned as is. Fetch sets no deadline of its own: the Reader
// cuts a stream that delivers nothing for its IdleTimeout.
func (c *Client) Fetch(ctx context.Context, req *shufflepb.FetchRequest, fn func(*shufflepb.FetchChunk) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.Fetch(ctx, req)
	if err != nil {
		return nodewire.FromStatus(err)
	}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return nodewire.FromStatus(err)
		}
		if err := fn(chunk); err != nil {
			return err
		}
	}
}

// RemoveShuffle deletes a shuffle's map outputs from the node.
func (c *Client) RemoveShuffle(ctx context.Context, app string, shuffle uint32) (err error) {
	ctx, end := c.bound(ctx, "RemoveShuffle", c.times.call)
	defer end(&err)
	_, err = c.rpc.RemoveShuffle(ctx, &shufflepb.RemoveShuffleRequest{App: app, Shuffle: shuffle})
	return nodewire.FromStatus(err)
}

// RemoveApp deletes everything the node holds for app.
func (c *Client) RemoveApp(ctx context.Context, app string) (err error) {
	ctx, end := c.bound(ctx, "RemoveApp", c.times.call)
	defer end(&err)
	_, err = c.rpc.RemoveApp(ctx, &shufflepb.RemoveAppRequest{App: app})
	return nodewire.FromStatus(err)
}

// Status reports what the node holds and has served.
func (c *Client) Status(ctx context.Context) (_ *shufflepb.StatusResponse, err error) {
	ctx, end := c.bound(ctx, "Status", c.times.call)
	defer end(&err)
	resp, err := c.rpc.Status(ctx, &shufflepb.StatusRequest{})
	return resp, nodewire.FromStatus(err)
}

// putChunkSize is the data PutBlock sends per message; getPrealloc bounds
// what GetBlock allocates on the strength of the size a node announces
// (a larger block grows as its bytes arrive).
const (
	putChunkSize = nodewire.DefaultChunkSize
	getPrealloc  = 256 << 20
)

// PutBlock stores data as block id in the node's block store, at level
// (MemorySer, MemoryAndDisk or DiskOnly) with its RDD's persistence
// priority, replacing any block of that ID. data is sent in chunks with
// its CRC32-C and is not modified.
//
// stored is the level the block is held at now: level itself, DiskOnly
// for a MemoryAndDisk block that did not fit in memory, or None (with a
// nil error) for a MemorySer block that did not. evicted lists the blocks
// the put pushed out of memory. Errors match blockstore.ErrInvalidArgument
// (bad ID or level, a memory level on a node without memory for blocks,
// a block larger than the node's maximum), ErrUnknownApp, shuffle.ErrCorrupt
// (damaged in flight: put it again), or are retryable (shuffle.IsRetryable). A
// failed put stores nothing. Without a deadline in ctx, the put has
// callTimeout plus the time of its data at minPutRate (link.go).
func (c *Client) PutBlock(ctx context.Context, id blockstore.BlockID, level blockstore.Level, priority int, data []byte) (stored blockstore.Level, evicted []blockstore.Evicted, err error) {
	ctx, end := c.bound(ctx, "PutBlock of block "+id.String(), c.times.put(len(data)))
	defer end(&err)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.PutBlock(ctx)
	if err != nil {
		return blockstore.None, nil, nodewire.FromStatus(err)
	}
	msg := &shufflepb.PutBlockChunk{Header: &shufflepb.PutBlockHeader{
		Id:       nodewire.BlockIDToPB(id),
		Level:    nodewire.LevelToPB(level),
		Priority: int64(priority),
		Size:     uint64(len(data)),
		Crc32C:   nodewire.Checksum(data),
	}}
	if err := sendInChunks(data, func(chunk []byte, first bool) error {
		if !first {
			msg.Header = nil
		}
		msg.Data = chunk
		return stream.Send(msg)
	}); err != nil {
		return blockstore.None, nil, nodewire.FromStatus(err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return blockstore.None, nil, nodewire.FromStatus(err)
	}
	stored, ok := nodewire.LevelFromPB(resp.GetStored())
	if !ok {
		return blockstore.None, nil, fmt.Errorf("%w: node %s answered a put of block %s with level %v", shuffle.ErrCorrupt, c.addr, id, resp.GetStored())
	}
	for _, e := range resp.GetEvicted() {
		l, _ := nodewire.LevelFromPB(e.GetLevel())
		ev := e.GetId()
		evicted = append(evicted, blockstore.Evicted{
			ID:     blockstore.BlockID{App: ev.GetApp(), RDD: int(ev.GetRdd()), Partition: int(ev.GetPartition())},
			Level:  l,
			ToDisk: e.GetToDisk(),
		})
	}
	return stored, evicted, nil
}

// sendInChunks sends data, in chunks of at most putChunkSize, through
// send, which puts each in its message (with the header in the first
// only). io.EOF from send means the node ended the call (refused it, or
// needs no more): sendInChunks then stops with nil, and the stream's
// CloseAndRecv says why.
func sendInChunks(data []byte, send func(chunk []byte, first bool) error) error {
	for off, first := 0, true; ; first = false {
		end := min(off+putChunkSize, len(data))
		if err := send(data[off:end], first); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if off = end; off == len(data) {
			return nil
		}
	}
}

// GetBlock returns block id from the node's block store and the level it
// is held at. found is false (and err nil) if the node does not hold it.
// The block's CRC32-C is checked on arrival: a mismatch is shuffle.ErrCorrupt
// (damaged in flight: get it again). A block the node found damaged on
// its disk is an error matching blockstore.ErrCorrupt; the node has then
// removed it. An application the node does not know is ErrUnknownApp.
// A stream that delivers nothing for getIdleTimeout is cut (link.go):
// the error is then DeadlineExceeded, and retryable.
func (c *Client) GetBlock(ctx context.Context, id blockstore.BlockID) (data []byte, level blockstore.Level, found bool, err error) {
	ctx, idle, cancel := watchIdle(ctx, c.times.getIdle)
	defer cancel()
	what := fmt.Sprintf("GetBlock of block %s from node %s", id, c.addr)
	stream, err := c.rpc.GetBlock(ctx, &shufflepb.GetBlockRequest{Id: nodewire.BlockIDToPB(id)})
	if err != nil {
		return nil, blockstore.None, false, idle.err(what, err)
	}
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return nil, blockstore.None, false, fmt.Errorf("%w: node %s ended GetBlock of %s without an answer", shuffle.ErrCorrupt, c.addr, id)
	}
	if err != nil {
		return nil, blockstore.None, false, idle.err(what, err)
	}
	idle.reset()
	if !first.GetFound() {
		return nil, blockstore.None, false, nil
	}
	level, ok := nodewire.LevelFromPB(first.GetLevel())
	size := first.GetSize()
	if !ok || level == blockstore.None {
		return nil, blockstore.None, false, fmt.Errorf("%w: node %s sent block %s at level %v", shuffle.ErrCorrupt, c.addr, id, first.GetLevel())
	}
	data = make([]byte, 0, min(size, getPrealloc))
	for chunk := first; ; {
		if uint64(len(chunk.GetData())) > size-uint64(len(data)) {
			return nil, blockstore.None, false, fmt.Errorf("%w: node %s sent more than the %d bytes of block %s", shuffle.ErrCorrupt, c.addr, size, id)
		}
		data = append(data, chunk.GetData()...)
		chunk, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, blockstore.None, false, idle.err(what, err)
		}
		idle.reset()
	}
	if uint64(len(data)) != size {
		return nil, blockstore.None, false, fmt.Errorf("%w: node %s sent %d of the %d bytes of block %s", shuffle.ErrCorrupt, c.addr, len(data), size, id)
	}
	if sum := nodewire.Checksum(data); sum != first.GetCrc32C() {
		return nil, blockstore.None, false, fmt.Errorf("%w: block %s from node %s was damaged in flight: CRC32-C %08x, the node's %08x (get it again)", shuffle.ErrCorrupt, id, c.addr, sum, first.GetCrc32C())
	}
	return data, level, true, nil
}

// RemoveBlocks removes every block of RDD rdd of app from the node, from
// memory and disk (Unpersist), and returns how many it removed.
func (c *Client) RemoveBlocks(ctx context.Context, app string, rdd int) (_ int, err error) {
	ctx, end := c.bound(ctx, "RemoveBlocks", c.times.call)
	defer end(&err)
	resp, err := c.rpc.RemoveBlocks(ctx, &shufflepb.RemoveBlocksRequest{App: app, Rdd: int64(rdd)})
	if err != nil {
		return 0, nodewire.FromStatus(err)
	}
	return int(resp.GetRemoved()), nil
}

var _ shuffle.Committer = (*Client)(nil)
