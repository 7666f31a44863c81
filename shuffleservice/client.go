package shuffleservice

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"shoal/shuffleservice/shufflepb"
)

// Client is a connection to one node service. Its methods are safe for
// concurrent use; their errors match the package's sentinels with
// errors.Is, and IsRetryable tells transient failures apart.
type Client struct {
	addr string
	conn *grpc.ClientConn
	rpc  shufflepb.ShuffleClient
}

// commitRetries is how many times CommitMapOutput tries a commit that
// fails with a retryable error; commitBackoff is its first pause.
const (
	commitRetries = 4
	commitBackoff = 50 * time.Millisecond
)

// Dial returns a client of the node service at addr (host:port). It does
// not wait for the connection; the first call does.
func Dial(addr string) (*Client, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(maxMessageSize),
			grpc.MaxCallSendMsgSize(maxMessageSize),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("shuffle: dial node %s: %w", addr, err)
	}
	return &Client{addr: addr, conn: conn, rpc: shufflepb.NewShuffleClient(conn)}, nil
}

// Addr returns the node's address.
func (c *Client) Addr() string { return c.addr }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// RegisterApp registers app with the node, or refreshes its TTL; ttl 0
// means the node's default.
func (c *Client) RegisterApp(ctx context.Context, app string, ttl time.Duration) error {
	_, err := c.rpc.RegisterApp(ctx, &shufflepb.RegisterAppRequest{App: app, TtlMs: uint64(max(ttl, 0) / time.Millisecond)})
	return fromStatus(err)
}

// RegisterWorker registers a worker of app and returns the node's layout,
// where the worker writes its map outputs.
func (c *Client) RegisterWorker(ctx context.Context, app, worker string, pid int) (Layout, error) {
	resp, err := c.rpc.RegisterWorker(ctx, &shufflepb.RegisterWorkerRequest{App: app, Worker: worker, Pid: int64(pid)})
	if err != nil {
		return Layout{}, fromStatus(err)
	}
	return Layout{Dirs: resp.GetDirs()}, nil
}

// Heartbeat keeps app alive on the node.
func (c *Client) Heartbeat(ctx context.Context, app string) error {
	_, err := c.rpc.Heartbeat(ctx, &shufflepb.HeartbeatRequest{App: app})
	return fromStatus(err)
}

// CommitMapOutput commits a map output whose files are in place, and
// returns the output the node serves: out, or an earlier attempt's that it
// kept. A commit is idempotent, so it is retried a few times on retryable
// errors.
func (c *Client) CommitMapOutput(ctx context.Context, app string, out *shufflepb.MapOutput) (*shufflepb.MapOutput, error) {
	backoff := commitBackoff
	for try := 1; ; try++ {
		resp, err := c.rpc.CommitMapOutput(ctx, &shufflepb.CommitRequest{App: app, Output: out})
		if err == nil {
			return resp.GetCommitted(), nil
		}
		if try == commitRetries || !IsRetryable(err) || ctx.Err() != nil {
			return nil, fromStatus(err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fromStatus(err)
		case <-t.C:
		}
		backoff *= 2
	}
}

// Fetch streams the blocks of req, calling fn for each chunk in order. The
// chunk is valid only during the call. An error from fn ends the stream
// and is returned as is.
func (c *Client) Fetch(ctx context.Context, req *shufflepb.FetchRequest, fn func(*shufflepb.FetchChunk) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.Fetch(ctx, req)
	if err != nil {
		return fromStatus(err)
	}
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fromStatus(err)
		}
		if err := fn(chunk); err != nil {
			return err
		}
	}
}

// RemoveShuffle deletes a shuffle's map outputs from the node.
func (c *Client) RemoveShuffle(ctx context.Context, app string, shuffle uint32) error {
	_, err := c.rpc.RemoveShuffle(ctx, &shufflepb.RemoveShuffleRequest{App: app, Shuffle: shuffle})
	return fromStatus(err)
}

// RemoveApp deletes everything the node holds for app.
func (c *Client) RemoveApp(ctx context.Context, app string) error {
	_, err := c.rpc.RemoveApp(ctx, &shufflepb.RemoveAppRequest{App: app})
	return fromStatus(err)
}

// Status reports what the node holds and has served.
func (c *Client) Status(ctx context.Context) (*shufflepb.StatusResponse, error) {
	resp, err := c.rpc.Status(ctx, &shufflepb.StatusRequest{})
	return resp, fromStatus(err)
}

var _ Committer = (*Client)(nil)
