package shuffleservice

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/sync/errgroup"
)

// nodeShutdownTimeout bounds the graceful stop of a node: running fetches
// get this long to finish before they are cut.
const nodeShutdownTimeout = 5 * time.Second

// RunNode runs a node service, the body of `shoal node` (whose flags are
// parsed by internal/cli): it opens a Server with opts, serves it on lis
// until ctx ends, then stops it gracefully and returns nil. opts.Addr
// defaults to lis's address. lis is closed when RunNode returns.
//
// stdout gets exactly one line once the node is open and serves,
//
//	shoal node listening on HOST:PORT pid PID
//
// which is what internal/nodeproc waits for.
//
// A node listening on an address other than loopback must have a cluster
// secret (Options.ClusterSecret) and a certificate (Options.TLSDir):
// without both RunNode refuses to start.
func RunNode(ctx context.Context, lis net.Listener, opts Options, stdout io.Writer) error {
	if opts.ClusterSecret == "" && !IsLoopback(lis.Addr()) {
		lis.Close()
		return fmt.Errorf("shuffle: the node listens on %s, which other machines can reach, and has no cluster secret: give one with --cluster-secret-file FILE (or SHOAL_CLUSTER_SECRET), or listen on 127.0.0.1", lis.Addr())
	}
	if opts.TLSDir == "" && !IsLoopback(lis.Addr()) {
		lis.Close()
		return fmt.Errorf("shuffle: the node listens on %s, which other machines can reach, and has no certificate: give --tls-dir DIR (ca.crt, tls.crt, tls.key; shoal certs node makes them), or listen on 127.0.0.1", lis.Addr())
	}
	if opts.Addr == "" {
		opts.Addr = lis.Addr().String()
	}
	srv, err := Open(opts)
	if err != nil {
		lis.Close()
		return err
	}
	defer srv.Close()
	logger := srv.log

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(lis); err != nil {
			return fmt.Errorf("serve on %s: %w", lis.Addr(), err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), nodeShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			logger.Warn("graceful stop timed out; cut the remaining calls", "timeout", nodeShutdownTimeout)
		}
		return nil
	})
	fmt.Fprintf(stdout, "shoal node listening on %s pid %d\n", lis.Addr(), os.Getpid())
	err = g.Wait()
	if cerr := srv.Close(); err == nil {
		err = cerr
	}
	return err
}
