package nodeclient

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/shuffle"
)

// A node link: how a Client notices that its node stopped answering, and
// how long a call waits for it. See doc.go, "Network faults". Without
// these, a call on a connection whose packets are silently dropped (a
// black-holed route; neither an answer nor a reset ever comes) would wait
// forever, and so would the task or the job that made it.

// The keepalive's times are nodewire's (KeepaliveTime, KeepaliveTimeout),
// which the node's enforcement policy matches.

// Deadlines of a Client's calls whose context has none. The keepalive
// catches a link that drops everything; these catch the rest: a node that
// answers pings but not a call, a reconnection that hangs.
//
//   - callTimeout bounds each unary call, CommitMapOutput with all its
//     retries. Every one is a small request the node answers from memory
//     or after a synced catalogue write (RemoveApp, RemoveShuffle and
//     RemoveBlocks also delete files, which the node finishes even if the
//     client gave up); 30 s is far above what a loaded node takes, and
//     outlasts the keepalive, so that a commit whose connection was cut
//     retries on a new one.
//   - A PutBlock gets callTimeout plus the time its data takes at
//     minPutRate, 4 MiB/s: far below any link a cluster runs on (a
//     1 Gb/s LAN carries over 100 MiB/s), so that only a stuck put
//     reaches it. A deadline rather than a watchdog on progress: a put
//     has legitimate silent phases (the node waits for
//     BlockBytesInFlight before it reads a byte, and stores the block
//     once it has it all) that a watchdog could cut; and its size is
//     known before it starts.
//   - A GetBlock stream that delivers nothing for getIdleTimeout is cut
//     (a watchdog, like the reader's IdleTimeout for Fetch): its size is
//     known only from its first chunk, and its one silent phase, the node
//     reading and checking a disk block before that chunk, is short.
const (
	callTimeout    = 30 * time.Second
	minPutRate     = 4 << 20 // bytes per second
	getIdleTimeout = 30 * time.Second
)

// linkTimes are a Client's keepalive and deadlines: the constants above,
// shorter in tests.
type linkTimes struct {
	keepaliveTime    time.Duration
	keepaliveTimeout time.Duration
	call             time.Duration
	getIdle          time.Duration
}

func defaultLinkTimes() linkTimes {
	return linkTimes{keepaliveTime: nodewire.KeepaliveTime, keepaliveTimeout: nodewire.KeepaliveTimeout, call: callTimeout, getIdle: getIdleTimeout}
}

// put is the deadline of a PutBlock of size bytes.
func (t linkTimes) put(size int) time.Duration {
	return t.call + time.Duration(size/minPutRate)*time.Second
}

// keepaliveDialOption is the client's side of the keepalive.
func keepaliveDialOption(t linkTimes) grpc.DialOption {
	return grpc.WithKeepaliveParams(keepalive.ClientParameters{
		Time:                t.keepaliveTime,
		Timeout:             t.keepaliveTimeout,
		PermitWithoutStream: true, // an idle link is checked too: the next call finds it dropped, not silent
	})
}

// bound gives a call named call the deadline d from now if ctx has none.
// end, deferred with the address of the method's error, releases it and,
// if it was this deadline that ended the call, says so in the error
// (which still matches context.DeadlineExceeded, or Unavailable for a
// commit whose last try found no connection, and is retryable).
func (c *Client) bound(ctx context.Context, call string, d time.Duration) (context.Context, func(*error)) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func(*error) {}
	}
	bctx, cancel := context.WithTimeout(ctx, d)
	return bctx, func(err *error) {
		if *err != nil && bctx.Err() == context.DeadlineExceeded && ctx.Err() == nil && shuffle.IsRetryable(*err) {
			*err = fmt.Errorf("shuffle: %s on node %s: no answer within %v (the node is unreachable or stuck): %w", call, c.addr, d, *err)
		}
		cancel()
	}
}

// idleWatch cancels a stream's context when it has received nothing for
// d: reset it after every message.
type idleWatch struct {
	d       time.Duration
	timer   *time.Timer
	stalled atomic.Bool
}

func watchIdle(ctx context.Context, d time.Duration) (context.Context, *idleWatch, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	w := &idleWatch{d: d}
	w.timer = time.AfterFunc(d, func() { w.stalled.Store(true); cancel() })
	return ctx, w, func() { w.timer.Stop(); cancel() }
}

func (w *idleWatch) reset() { w.timer.Reset(w.d) }

// err translates a stream's error: a stream the watch cut is
// DeadlineExceeded (retryable), saying what happened to what.
func (w *idleWatch) err(what string, err error) error {
	if !w.stalled.Load() {
		return nodewire.FromStatus(err)
	}
	return fmt.Errorf("shuffle: %s: nothing received for %v (the node is unreachable or stuck): %w",
		what, w.d, nodewire.FromStatus(status.FromContextError(context.DeadlineExceeded).Err()))
}
