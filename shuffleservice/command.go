package shuffleservice

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
)

// nodeConfig is the configuration of the node command.
type nodeConfig struct {
	listen          string
	dirs            []string
	indexCacheBytes int64
	appTTL          time.Duration
	logLevel        slog.Level
}

// nodeShutdownTimeout bounds the graceful stop of a node: running fetches
// get this long to finish before they are cut.
const nodeShutdownTimeout = 5 * time.Second

func (c *nodeConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.listen, "listen", "127.0.0.1:7077", "`ADDR` (host:port) to serve on; port 0 picks a free one")
	fs.Func("dir", "local `DIR[,DIR...]` for shuffle files, one per disk (required; the catalogue goes in the first)", func(s string) error {
		for _, d := range strings.Split(s, ",") {
			if d = strings.TrimSpace(d); d != "" {
				c.dirs = append(c.dirs, d)
			}
		}
		return nil
	})
	fs.Int64Var(&c.indexCacheBytes, "index-cache-bytes", DefaultIndexCacheBytes, "memory `BYTES` for cached index files")
	fs.DurationVar(&c.appTTL, "app-ttl", DefaultAppTTL, "remove an application after this long without a heartbeat, unless it set its own TTL")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn or error")
}

// RunNodeCommand is the node command, `shoal node [flags]`, with args its
// flags (what follows "node"): it runs a node service until ctx ends, then
// stops it gracefully and returns nil. Any binary can serve it: the shoal
// CLI, and user programs through client.Init, so that a program's own
// binary can be its node services.
//
// stdout gets exactly one line once the node serves,
//
//	shoal node listening on HOST:PORT pid PID
//
// which is what internal/nodeproc waits for; stderr gets the log and the
// usage. Bad flags return an error (flag.ErrHelp for -h).
func RunNodeCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg nodeConfig
	fs := flag.NewFlagSet("shoal node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: shoal node --dir DIR[,DIR...] [flags]\n\nRuns a node service: it owns shuffle files, their catalogue, and serves fetches.\n\nflags:")
		fs.PrintDefaults()
	}
	cfg.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags only; see shoal node -h)", fs.Args())
	}
	if len(cfg.dirs) == 0 {
		return errors.New("--dir is required: give the local directories for shuffle files, e.g. --dir /var/lib/shoal/a,/var/lib/shoal/b")
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))

	lis, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another node running there? pick another --listen)", cfg.listen, err)
	}
	srv, err := Open(Options{
		Dirs:            cfg.dirs,
		IndexCacheBytes: cfg.indexCacheBytes,
		AppTTL:          cfg.appTTL,
		Logger:          logger,
		Addr:            lis.Addr().String(),
	})
	if err != nil {
		lis.Close()
		return err
	}
	defer srv.Close()

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
			logger.Warn("graceful stop timed out; cut the remaining calls", "component", "shuffle", "timeout", nodeShutdownTimeout)
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
