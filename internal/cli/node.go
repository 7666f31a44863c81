package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"shoal/internal/pki"
	"shoal/objstore"
	"shoal/shuffleservice"
)

// nodeConfig is the configuration of the node command.
type nodeConfig struct {
	listen            string
	advertise         string
	name              string
	dirs              DirList
	workers           int
	clusterSecretFile string
	tlsDir            string
	maxBinaryBytes    ByteSize
	indexCacheBytes   ByteSize
	cacheBytes        ByteSize
	maxBlockBytes     ByteSize
	appTTL            time.Duration
	logLevel          slog.Level
	metricsAddr       string
	checkpointDir     string
	s3Endpoint        string
	ckptUploads       int
	ckptQueueBytes    ByteSize
	ckptCopyBytes     ByteSize
}

func (c *nodeConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.listen, "listen", "127.0.0.1:7077", "`ADDR` (host:port) to serve on; port 0 picks a free one. An address other than loopback needs a cluster secret (--cluster-secret-file) and a certificate (--tls-dir)")
	fs.StringVar(&c.advertise, "advertise", "", "`HOST:PORT` the node tells its workers and drivers; default: the listening address (for 0.0.0.0 or [::], the hostname's first address other than loopback)")
	fs.StringVar(&c.name, "name", "", "the node's `NAME`, bound to its directories; default: the hostname (nodes sharing a host need names of their own)")
	fs.Var(&c.dirs, "dir", "local `DIR[,DIR...]` for shuffle files, one per disk (required; the catalogue and the binary cache go in the first)")
	fs.IntVar(&c.workers, "workers", shuffleservice.DefaultWorkers, fmt.Sprintf("workers to start per application when its driver asks for the node's default (1 to %d)", shuffleservice.MaxWorkers))
	fs.StringVar(&c.clusterSecretFile, "cluster-secret-file", "", "`FILE` holding the cluster secret every call must carry (its content, trimmed; not readable by others); default: the environment variable SHOAL_CLUSTER_SECRET, if set")
	fs.StringVar(&c.tlsDir, "tls-dir", "", "`DIR` holding the node's certificate (ca.crt, tls.crt, tls.key: shoal certs node, or a Kubernetes TLS Secret): every client must then present a certificate of the same CA (mutual TLS). Required unless --listen is loopback")
	c.maxBinaryBytes = shuffleservice.DefaultMaxBinaryBytes
	fs.Var(&c.maxBinaryBytes, "max-binary-bytes", "largest executable `BYTES` a driver may upload to start its workers from")
	c.indexCacheBytes = shuffleservice.DefaultIndexCacheBytes
	fs.Var(&c.indexCacheBytes, "index-cache-bytes", "memory `BYTES` for cached index files (a number, or with a unit: 64MiB, 1GiB, 500MB)")
	c.cacheBytes = shuffleservice.DefaultCacheBytes
	fs.Var(&c.cacheBytes, "cache-bytes", "memory `BYTES` for cached partitions (the block store's memory tier); 0 keeps them on disk only")
	c.maxBlockBytes = shuffleservice.DefaultMaxBlockBytes
	fs.Var(&c.maxBlockBytes, "max-block-bytes", "largest cached partition `BYTES` a put may carry (each is held whole in memory while received)")
	fs.DurationVar(&c.appTTL, "app-ttl", shuffleservice.DefaultAppTTL, "remove an application (and stop its workers) after this long without a heartbeat, unless it set its own TTL")
	fs.TextVar(&c.logLevel, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn or error (debug includes the workers' output)")
	fs.StringVar(&c.checkpointDir, "checkpoint-dir", "", "the checkpoint store `URI` (s3://bucket/prefix or file:///abs/path) whose partitions the node holds and uploads for its applications' tasks; empty: the node takes no checkpoints")
	fs.StringVar(&c.s3Endpoint, "s3-endpoint", "", "`URL` of the S3-compatible service of an s3:// --checkpoint-dir (default $AWS_ENDPOINT_URL; credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
	fs.IntVar(&c.ckptUploads, "checkpoint-uploads", shuffleservice.DefaultCheckpointUploads, "checkpoint partitions uploaded at once")
	c.ckptQueueBytes = shuffleservice.DefaultCheckpointQueueBytes
	fs.Var(&c.ckptQueueBytes, "checkpoint-queue-bytes", "`BYTES` of checkpoint partitions handed to the node and not yet uploaded; a task waits for room beyond it")
	c.ckptCopyBytes = shuffleservice.DefaultCheckpointCopyBytes
	fs.Var(&c.ckptCopyBytes, "checkpoint-copy-bytes", "disk `BYTES` of local copies of uploaded checkpoint partitions, served to readers (least recently used deleted beyond it)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://`ADDR`/metrics (host:port; port 0 picks a free one, logged); beyond loopback https, with mutual TLS against --tls-dir's CA; empty: none")
}

// Environment variables of the node command: every flag as
// SHOAL_NODE_<FLAG> (NodeFlagEnv), and the secret itself.
const (
	nodeEnvPrefix = "SHOAL_NODE_"
	// EnvClusterSecret is the cluster secret itself, used when no
	// --cluster-secret-file is given: what a launcher gives the
	// processes it starts.
	EnvClusterSecret = "SHOAL_CLUSTER_SECRET"
)

// maxSecretFileBytes bounds a cluster secret file.
const maxSecretFileBytes = 4 << 10

// NodeFlagEnv is the environment variable of the node's flag name:
// SHOAL_NODE_ and the name in upper case, dashes as underscores
// (cluster-secret-file: SHOAL_NODE_CLUSTER_SECRET_FILE).
func NodeFlagEnv(name string) string {
	return nodeEnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// RunNode is the node command, `shoal node [flags]`, with args its flags
// (what follows "node"): it parses them, listens, and runs a node service
// (shuffleservice.RunNode) until ctx ends, then returns nil. Any binary
// can serve it: the shoal CLI, and user programs through client.Init, so
// that a program's own binary can be its node services.
//
// Every flag can also be given by the environment variable NodeFlagEnv
// of its name (SHOAL_NODE_LISTEN, SHOAL_NODE_DIR, ...); a flag on the
// command line wins. Without --cluster-secret-file the secret is
// SHOAL_CLUSTER_SECRET's value, if set.
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
	return runNode(ctx, args, os.Getenv, stdout, stderr)
}

func runNode(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg nodeConfig
	fs := flag.NewFlagSet("shoal node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: shoal node --dir DIR[,DIR...] [flags]\n\nRuns a node service: it owns shuffle files and cached partitions, their catalogue, and serves fetches and blocks;\nit starts the workers of the applications whose drivers ask it to, from the binaries they upload.\n\nEvery flag can also come from the environment, as SHOAL_NODE_<FLAG> (SHOAL_NODE_LISTEN, SHOAL_NODE_CLUSTER_SECRET_FILE, ...);\na flag on the command line wins. Without --cluster-secret-file, SHOAL_CLUSTER_SECRET is the secret itself.\n\nflags:")
		fs.PrintDefaults()
	}
	cfg.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (flags only; see shoal node -h)", fs.Args())
	}
	if err := flagsFromEnv(fs, getenv); err != nil {
		return err
	}
	if len(cfg.dirs) == 0 {
		return errors.New("--dir is required: give the local directories for shuffle files, e.g. --dir /var/lib/shoal/a,/var/lib/shoal/b")
	}
	if cfg.workers < 1 || cfg.workers > shuffleservice.MaxWorkers {
		return fmt.Errorf("--workers %d: give 1 to %d", cfg.workers, shuffleservice.MaxWorkers)
	}
	secret, err := clusterSecret(cfg.clusterSecretFile, getenv)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	var reg prometheus.Registerer // nil: no metrics
	if cfg.metricsAddr != "" {
		mlis, scheme, err := listenMetrics(cfg.metricsAddr, cfg.tlsDir)
		if err != nil {
			return err
		}
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg = r
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(r, promhttp.HandlerOpts{Registry: r}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		defer hs.Close()
		// Before the listening line: internal/nodeproc reads both.
		fmt.Fprintf(stdout, "shoal node metrics at %s://%s/metrics\n", scheme, mlis.Addr())
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
	advertise := cfg.advertise
	if advertise == "" {
		if advertise, err = advertisedAddr(lis.Addr()); err != nil {
			lis.Close()
			return err
		}
	}
	return shuffleservice.RunNode(ctx, lis, shuffleservice.Options{
		Registry:        reg,
		Dirs:            cfg.dirs,
		Name:            cfg.name,
		Addr:            advertise,
		ClusterSecret:   secret,
		TLSDir:          cfg.tlsDir,
		Workers:         cfg.workers,
		MaxBinaryBytes:  int64(cfg.maxBinaryBytes),
		IndexCacheBytes: int64(cfg.indexCacheBytes),
		CacheBytes:      int64(cfg.cacheBytes),
		MaxBlockBytes:   int64(cfg.maxBlockBytes),
		AppTTL:          cfg.appTTL,
		Logger:          logger,

		CheckpointDir:        cfg.checkpointDir,
		CheckpointS3:         objstore.Options{Endpoint: cfg.s3Endpoint},
		CheckpointUploads:    cfg.ckptUploads,
		CheckpointQueueBytes: int64(cfg.ckptQueueBytes),
		CheckpointCopyBytes:  int64(cfg.ckptCopyBytes),
	}, stdout)
}

// listenMetrics listens on addr for the metrics server: plain HTTP on
// loopback; beyond it HTTPS with mutual TLS against the node's identity
// (tlsDir), so that only a scraper with a certificate of the cluster's CA
// (shoal certs client) reads the node's figures.
func listenMetrics(addr, tlsDir string) (lis net.Listener, scheme string, err error) {
	lis, err = net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("metrics: listen on %s: %w (pick another --metrics-addr)", addr, err)
	}
	if shuffleservice.IsLoopback(lis.Addr()) {
		return lis, "http", nil
	}
	if tlsDir == "" {
		lis.Close()
		return nil, "", fmt.Errorf("--metrics-addr %s is beyond loopback: give the node its certificate (--tls-dir), and its scrapers one of the cluster's CA (shoal certs client; Prometheus's tls_config), or serve the metrics on loopback", addr)
	}
	id, err := pki.LoadDir(tlsDir)
	if err != nil {
		lis.Close()
		return nil, "", err
	}
	return tls.NewListener(lis, &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c := id.ServerConfig(hello.Conn.RemoteAddr().String())
			c.NextProtos = []string{"http/1.1"}
			return c, nil
		},
	}), "https", nil
}

// flagsFromEnv sets every flag of fs not given on the command line from
// its environment variable (NodeFlagEnv), if that is set.
func flagsFromEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := NodeFlagEnv(f.Name)
		v := getenv(env)
		if given[f.Name] || v == "" || err != nil {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("environment variable %s (for --%s): %w", env, f.Name, serr)
		}
	})
	return err
}

// clusterSecret reads the cluster secret: the content of file, trimmed,
// if file is given; else SHOAL_CLUSTER_SECRET's value ("" for none). The
// file must not be readable by others (mode & 0o004) and must hold a
// secret. No error quotes the secret.
func clusterSecret(file string, getenv func(string) string) (string, error) {
	if file == "" {
		return strings.TrimSpace(getenv(EnvClusterSecret)), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("--cluster-secret-file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("--cluster-secret-file: %w", err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return "", fmt.Errorf("--cluster-secret-file %s is not a regular file", file)
	case fi.Mode().Perm()&0o004 != 0:
		return "", fmt.Errorf("--cluster-secret-file %s is readable by every user (mode %04o): make it 0600, 0400 or 0440 (chmod o-r %s; in Kubernetes, the Secret volume's defaultMode: 0400)", file, fi.Mode().Perm(), file)
	case fi.Size() > maxSecretFileBytes:
		return "", fmt.Errorf("--cluster-secret-file %s holds %d bytes: a secret is at most %d", file, fi.Size(), maxSecretFileBytes)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return "", fmt.Errorf("--cluster-secret-file: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("--cluster-secret-file %s is empty: write the cluster secret in it (e.g. head -c 32 /dev/urandom | base64 > %s)", file, file)
	}
	return secret, nil
}

// advertisedAddr is the address a node listening on addr tells others:
// addr itself, unless its host is unspecified (0.0.0.0, [::]), which no
// other machine can dial; then the hostname's first address other than
// loopback, or the first such address of an interface, with addr's port.
func advertisedAddr(addr net.Addr) (string, error) {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "", fmt.Errorf("listening address %s: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return addr.String(), nil
	}
	if ip := firstNonLoopback(); ip != nil {
		return net.JoinHostPort(ip.String(), port), nil
	}
	return "", fmt.Errorf("the node listens on %s and this machine has no address other than loopback to tell its workers and drivers: give --advertise HOST:PORT", addr)
}

// firstNonLoopback is the hostname's first address other than loopback
// (IPv4 first), else an interface's; nil if there is none.
func firstNonLoopback() net.IP {
	var ips []net.IP
	if h, err := os.Hostname(); err == nil {
		ips, _ = net.LookupIP(h)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				ips = append(ips, n.IP)
			}
		}
	}
	for _, want4 := range []bool{true, false} {
		for _, ip := range ips {
			if !ip.IsLoopback() && !ip.IsUnspecified() && !ip.IsLinkLocalUnicast() && (ip.To4() != nil) == want4 {
				return ip
			}
		}
	}
	return nil
}
