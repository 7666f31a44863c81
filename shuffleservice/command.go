package shuffleservice

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
)

// nodeConfig is the configuration of the node command.
type nodeConfig struct {
	listen          string
	dirs            []string
	indexCacheBytes ByteSize
	cacheBytes      ByteSize
	maxBlockBytes   ByteSize
	appTTL          time.Duration
	logLevel        slog.Level
	metricsAddr     string
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
	c.indexCacheBytes = DefaultIndexCacheBytes
	fs.Var(&c.indexCacheBytes, "index-cache-bytes", "memory `BYTES` for cached index files (a number, or with a unit: 64MiB, 1GiB, 500MB)")
	c.cacheBytes = DefaultCacheBytes
	fs.Var(&c.cacheBytes, "cache-bytes", "memory `BYTES` for cached partitions (the block store's memory tier); 0 keeps them on disk only")
	c.maxBlockBytes = DefaultMaxBlockBytes
	fs.Var(&c.maxBlockBytes, "max-block-bytes", "largest cached partition `BYTES` a put may carry (each is held whole in memory while received)")
	fs.DurationVar(&c.appTTL, "app-ttl", DefaultAppTTL, "remove an application after this long without a heartbeat, unless it set its own TTL")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn or error")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://`ADDR`/metrics (host:port; port 0 picks a free one, logged); empty: none")
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
// which is what internal/nodeproc waits for, preceded with --metrics-addr
// by
//
//	shoal node metrics at http://HOST:PORT/metrics
//
// stderr gets the log and the usage. Bad flags return an error (flag.ErrHelp for -h).
func RunNodeCommand(ctx context.Context, args []string, stdout, stderr io.Writer) error {
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
	var reg *prometheus.Registry
	var metricsLis net.Listener
	if cfg.metricsAddr != "" {
		var err error
		if metricsLis, err = net.Listen("tcp", cfg.metricsAddr); err != nil {
			return fmt.Errorf("metrics: listen on %s: %w (pick another --metrics-addr)", cfg.metricsAddr, err)
		}
		defer metricsLis.Close()
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}

	lis, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another node running there? pick another --listen)", cfg.listen, err)
	}
	srv, err := Open(Options{
		Dirs:            cfg.dirs,
		IndexCacheBytes: int64(cfg.indexCacheBytes),
		CacheBytes:      int64(cfg.cacheBytes),
		MaxBlockBytes:   int64(cfg.maxBlockBytes),
		AppTTL:          cfg.appTTL,
		Logger:          logger,
		Addr:            lis.Addr().String(),
		Registry:        registerer(reg),
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
	if metricsLis != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		// Before the listening line: internal/nodeproc reads both.
		fmt.Fprintf(stdout, "shoal node metrics at http://%s/metrics\n", metricsLis.Addr())
		g.Go(func() error {
			if err := hs.Serve(metricsLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("metrics on %s: %w", metricsLis.Addr(), err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			return hs.Close()
		})
	}
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

// ByteSize is a flag value of bytes (the node's --cache-bytes, shoal run's): a plain number, or a number with a
// unit, binary (KiB, MiB, GiB, TiB; K, M, G, T alike) or decimal (kB, MB,
// GB, TB), as in 512MiB or 1.5GiB. Case does not matter; the result
// must be a whole number of bytes at most 2^63-1.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

func (b *ByteSize) Set(s string) error {
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

func (b *ByteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

// ParseByteSize parses a size as ByteSize does.
func ParseByteSize(s string) (int64, error) {
	num := strings.TrimSpace(s)
	mult := 1.0
	lower := strings.ToLower(num)
	for _, u := range byteUnits {
		if strings.HasSuffix(lower, u.suffix) {
			num, mult = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.mult
			break
		}
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil && mult == 1 {
		if n < 0 {
			return 0, fmt.Errorf("%q is negative", s)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || strings.ContainsAny(num, "eEnNxX") {
		return 0, fmt.Errorf("%q is not a size in bytes (write e.g. 268435456, 256MiB or 1.5GiB)", s)
	}
	v := f * mult
	switch {
	case v < 0:
		return 0, fmt.Errorf("%q is negative", s)
	case v >= math.MaxInt64:
		return 0, fmt.Errorf("%q is too large", s)
	case v != math.Trunc(v):
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	return int64(v), nil
}

// registerer is reg as a Registerer, nil if reg is: an interface holding
// a nil *Registry would not be nil.
func registerer(reg *prometheus.Registry) prometheus.Registerer {
	if reg == nil {
		return nil
	}
	return reg
}
