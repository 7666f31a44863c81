package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"shoal/shuffleservice"
)

// nodeConfig is the configuration of the node command.
type nodeConfig struct {
	listen          string
	dirs            DirList
	indexCacheBytes ByteSize
	cacheBytes      ByteSize
	maxBlockBytes   ByteSize
	appTTL          time.Duration
	logLevel        slog.Level
	metricsAddr     string
}

func (c *nodeConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.listen, "listen", "127.0.0.1:7077", "`ADDR` (host:port) to serve on; port 0 picks a free one")
	fs.Var(&c.dirs, "dir", "local `DIR[,DIR...]` for shuffle files, one per disk (required; the catalogue goes in the first)")
	c.indexCacheBytes = shuffleservice.DefaultIndexCacheBytes
	fs.Var(&c.indexCacheBytes, "index-cache-bytes", "memory `BYTES` for cached index files (a number, or with a unit: 64MiB, 1GiB, 500MB)")
	c.cacheBytes = shuffleservice.DefaultCacheBytes
	fs.Var(&c.cacheBytes, "cache-bytes", "memory `BYTES` for cached partitions (the block store's memory tier); 0 keeps them on disk only")
	c.maxBlockBytes = shuffleservice.DefaultMaxBlockBytes
	fs.Var(&c.maxBlockBytes, "max-block-bytes", "largest cached partition `BYTES` a put may carry (each is held whole in memory while received)")
	fs.DurationVar(&c.appTTL, "app-ttl", shuffleservice.DefaultAppTTL, "remove an application after this long without a heartbeat, unless it set its own TTL")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn or error")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://`ADDR`/metrics (host:port; port 0 picks a free one, logged); empty: none")
}

// RunNode is the node command, `shoal node [flags]`, with args its flags
// (what follows "node"): it parses them, listens, and runs a node service
// (shuffleservice.RunNode) until ctx ends, then returns nil. Any binary
// can serve it: the shoal CLI, and user programs through client.Init, so
// that a program's own binary can be its node services.
//
// stdout gets exactly one line once the node serves,
//
//	shoal node listening on HOST:PORT pid PID
//
// which is what internal/nodeproc waits for, preceded with --metrics-addr
// by
//
//	shoal node metrics at http://HOST:PORT/metrics
//
// stderr gets the log and the usage. Bad flags return an error
// (flag.ErrHelp for -h).
func RunNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg nodeConfig
	fs := flag.NewFlagSet("shoal node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: shoal node --dir DIR[,DIR...] [flags]\n\nRuns a node service: it owns shuffle files and cached partitions, their catalogue, and serves fetches and blocks.\n\nflags:")
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
	var reg prometheus.Registerer // nil: no metrics
	if cfg.metricsAddr != "" {
		mlis, err := net.Listen("tcp", cfg.metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics: listen on %s: %w (pick another --metrics-addr)", cfg.metricsAddr, err)
		}
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg = r
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(r, promhttp.HandlerOpts{Registry: r}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		defer hs.Close()
		// Before the listening line: internal/nodeproc reads both.
		fmt.Fprintf(stdout, "shoal node metrics at http://%s/metrics\n", mlis.Addr())
		go func() {
			if err := hs.Serve(mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics server stopped", "addr", mlis.Addr().String(), "err", err)
			}
		}()
	}

	lis, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another node running there? pick another --listen)", cfg.listen, err)
	}
	return shuffleservice.RunNode(ctx, lis, shuffleservice.Options{
		Registry:        reg,
		Dirs:            cfg.dirs,
		IndexCacheBytes: int64(cfg.indexCacheBytes),
		CacheBytes:      int64(cfg.cacheBytes),
		MaxBlockBytes:   int64(cfg.maxBlockBytes),
		AppTTL:          cfg.appTTL,
		Logger:          logger,
		Addr:            lis.Addr().String(),
	}, stdout)
}
