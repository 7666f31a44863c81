package nodeclient

import (
	"context"
	"errors"
	"fmt"
	"io"

	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/shufflepb"
)

// The calls of cluster mode: the driver hands the node its executable and
// asks it to run the application's workers (shuffleservice/doc.go,
// "Workers started by the node").

// binaryChunkSize is the data per message of PutBinary.
const binaryChunkSize = 1 << 20

// HasBinary reports whether the node's binary cache holds the executable
// whose SHA-256 is sha256 (lower-case hex).
func (c *Client) HasBinary(ctx context.Context, sha256 string) (_ bool, err error) {
	ctx, end := c.bound(ctx, "HasBinary", c.times.call)
	defer end(&err)
	resp, err := c.rpc.HasBinary(ctx, &shufflepb.HasBinaryRequest{Sha256: sha256})
	if err != nil {
		return false, nodewire.FromStatus(err)
	}
	return resp.GetPresent(), nil
}

// PutBinary streams size bytes of r to the node's binary cache as the
// executable of digest sha256; the node checks both before the binary is
// usable, and refuses one it cannot run.
func (c *Client) PutBinary(ctx context.Context, sha256 string, size int64, r io.Reader) (err error) {
	ctx, end := c.bound(ctx, "PutBinary", c.times.put(int(size)))
	defer end(&err)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.rpc.PutBinary(ctx)
	if err != nil {
		return nodewire.FromStatus(err)
	}
	msg := &shufflepb.PutBinaryChunk{Sha256: sha256, Size: uint64(size)}
	buf := make([]byte, binaryChunkSize)
	for sent := false; ; sent = true {
		n, rerr := io.ReadFull(r, buf)
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			return fmt.Errorf("nodeclient: read the binary to send to node %s: %w", c.addr, rerr)
		}
		if n == 0 && sent {
			break
		}
		msg.Data = buf[:n]
		if err := stream.Send(msg); err != nil {
			if errors.Is(err, io.EOF) {
				break // the node ended the call: CloseAndRecv says why
			}
			return nodewire.FromStatus(err)
		}
		msg.Sha256, msg.Size = "", 0
		if n < len(buf) {
			break
		}
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		return nodewire.FromStatus(err)
	}
	return nil
}

// StartWorkers asks the node to run an application's workers (or
// returns them, if it runs them already).
func (c *Client) StartWorkers(ctx context.Context, req *shufflepb.StartWorkersRequest) (_ []*shufflepb.WorkerProcess, err error) {
	ctx, end := c.bound(ctx, "StartWorkers", c.times.call)
	defer end(&err)
	resp, err := c.rpc.StartWorkers(ctx, req)
	if err != nil {
		return nil, nodewire.FromStatus(err)
	}
	return resp.GetWorkers(), nil
}

// StopWorker asks the node to kill one of an application's workers; the
// node starts a replacement.
func (c *Client) StopWorker(ctx context.Context, app, worker string) (err error) {
	ctx, end := c.bound(ctx, "StopWorker", c.times.call)
	defer end(&err)
	_, err = c.rpc.StopWorker(ctx, &shufflepb.StopWorkerRequest{App: app, Worker: worker})
	return nodewire.FromStatus(err)
}

// Workers returns an application's workers on the node, and why the node
// gave up on them, if it did.
func (c *Client) Workers(ctx context.Context, app string) (_ *shufflepb.WorkersResponse, err error) {
	ctx, end := c.bound(ctx, "Workers", c.times.call)
	defer end(&err)
	resp, err := c.rpc.Workers(ctx, &shufflepb.WorkersRequest{App: app})
	if err != nil {
		return nil, nodewire.FromStatus(err)
	}
	return resp, nil
}
