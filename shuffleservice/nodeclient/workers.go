package nodeclient

import (
	"context"
	"errors"
	"fmt"
	"io"

	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/shufflepb"
)

// The calls of cluster mode: the node's binary cache and the workers it
// starts (shuffleservice/doc.go, "Workers started by the node"). Errors
// match package launcher's sentinels with errors.Is.

// binaryChunkSize is the data PutBinary sends per message.
const binaryChunkSize = nodewire.DefaultChunkSize

// PutBinary uploads an executable of size bytes, read from data, whose
// SHA-256 is digest (64 lower-case hex digits) into the node's binary
// cache. The node verifies size and digest, and refuses a binary it
// cannot run (launcher.ErrCannotRun, whose message says how to build
// one). A binary the node holds already is not sent again: ask HasBinary
// first to save reading data. Without a deadline in ctx, the upload has
// the time of a PutBlock of that size (link.go).
func (c *Client) PutBinary(ctx context.Context, digest string, size int64, data io.Reader) (err error) {
	ctx, end := c.bound(ctx, "PutBinary of "+digest, c.times.put(int(min(size, 1<<40))))
	defer end(&err)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.PutBinary(ctx)
	if err != nil {
		return nodewire.FromStatus(err)
	}
	msg := &shufflepb.PutBinaryChunk{Sha256: digest, Size: uint64(max(size, 0))}
	buf := make([]byte, binaryChunkSize)
	var sent int64
	for {
		n, rerr := io.ReadFull(data, buf[:min(int64(len(buf)), max(size-sent, 0))])
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			return fmt.Errorf("shuffle: PutBinary of %s: read the binary: %w", digest, rerr)
		}
		sent += int64(n)
		msg.Data = buf[:n]
		if err := stream.Send(msg); err != nil {
			if errors.Is(err, io.EOF) {
				break // the node ended the call: CloseAndRecv says why
			}
			return nodewire.FromStatus(err)
		}
		msg.Sha256, msg.Size = "", 0
		if n == 0 || sent >= size {
			break
		}
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return nodewire.FromStatus(err)
	}
	return nil
}

// HasBinary reports whether the node's binary cache holds the executable
// whose SHA-256 is digest.
func (c *Client) HasBinary(ctx context.Context, digest string) (_ bool, err error) {
	ctx, end := c.bound(ctx, "HasBinary", c.times.call)
	defer end(&err)
	resp, err := c.rpc.HasBinary(ctx, &shufflepb.HasBinaryRequest{Sha256: digest})
	if err != nil {
		return false, nodewire.FromStatus(err)
	}
	return resp.GetPresent(), nil
}

// StartWorkers starts an application's workers from a cached binary
// (req.binary_sha256), or returns those the node runs for it already.
func (c *Client) StartWorkers(ctx context.Context, req *shufflepb.StartWorkersRequest) (_ []*shufflepb.WorkerProcess, err error) {
	ctx, end := c.bound(ctx, "StartWorkers", c.times.call)
	defer end(&err)
	resp, err := c.rpc.StartWorkers(ctx, req)
	if err != nil {
		return nil, nodewire.FromStatus(err)
	}
	return resp.GetWorkers(), nil
}

// StopWorker kills one of app's workers (SIGKILL); the node starts a
// replacement with a new ID.
func (c *Client) StopWorker(ctx context.Context, app, worker string) (err error) {
	ctx, end := c.bound(ctx, "StopWorker", c.times.call)
	defer end(&err)
	_, err = c.rpc.StopWorker(ctx, &shufflepb.StopWorkerRequest{App: app, Worker: worker})
	return nodewire.FromStatus(err)
}

// Workers lists app's workers on the node, and why the node gave up
// restarting them ("" unless it did).
func (c *Client) Workers(ctx context.Context, app string) (_ []*shufflepb.WorkerProcess, failure string, err error) {
	ctx, end := c.bound(ctx, "Workers", c.times.call)
	defer end(&err)
	resp, err := c.rpc.Workers(ctx, &shufflepb.WorkersRequest{App: app})
	if err != nil {
		return nil, "", nodewire.FromStatus(err)
	}
	return resp.GetWorkers(), resp.GetFailure(), nil
}
