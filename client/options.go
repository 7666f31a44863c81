package client

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"shoal/client/ui"
	"shoal/compute"
	"shoal/objstore"
	"shoal/shuffleservice/shuffle"
)

// Defaults of Options: a zero field takes its default in EnsureDefaults.
const (
	DefaultNodes            = 1
	DefaultWorkersPerNode   = 2
	DefaultSlots            = 2
	DefaultShuffleMode      = "sort"
	DefaultMaxTaskFailures  = 4
	DefaultMaxStageAttempts = 4
	DefaultLocalityWait     = 100 * time.Millisecond
	DefaultHeartbeatTimeout = 10 * time.Second
	// DefaultHeapCacheBytes bounds the MemoryDeser blocks of each worker
	// (Options.HeapCacheBytes).
	DefaultHeapCacheBytes = 256 << 20
	// DefaultMaxDirectResultBytes is Options.MaxDirectResultBytes's
	// default.
	DefaultMaxDirectResultBytes = 1 << 20
	// DefaultMaxResultBytes is Options.MaxResultBytes's default.
	DefaultMaxResultBytes = 1 << 30
	// DefaultCheckpointTimeout is Options.CheckpointTimeout's default.
	DefaultCheckpointTimeout = 10 * time.Minute
)

// Values of Options.CheckpointVia.
const (
	CheckpointViaNode = "node"
	CheckpointViaTask = "task"
)

// ErrInvalidOptions is wrapped by every problem Options.Validate reports.
var ErrInvalidOptions = errors.New("client: invalid options")

// Options configure a Context. The zero value is the embedded default: one
// node service and two workers as child processes on 127.0.0.1. A zero
// field means its default (EnsureDefaults); a negative count, size or
// duration, or fields that contradict each other, are errors (Validate),
// never silently replaced.
type Options struct {
	// App names the application; default "shoal-PID-UNIXMILLI-RANDOM"
	// (48 random bits). On a shared cluster, an App another application
	// can guess it can also register first on the nodes, which then refuse
	// this one (PermissionDenied): leave it empty there, or add random bits.
	App string
	// Nodes, WorkersPerNode and Slots shape the local cluster: Nodes node
	// services (simulated machines), each with WorkersPerNode workers of
	// Slots task slots. Defaults DefaultNodes, DefaultWorkersPerNode,
	// DefaultSlots (1, 2, 2).
	Nodes, WorkersPerNode, Slots int
	// Master, if set, runs the application on a cluster of node services
	// that already run, one per machine (cluster mode, docs/cluster.md):
	// shoal://h1:7077,h2:7077 lists them, dns://name:7077 is every
	// address the name resolves to (a Kubernetes headless Service),
	// resolved again while the application runs. The driver ships its
	// own executable (Binary) to the nodes, which start WorkersPerNode
	// workers each (0: the node's own --workers). Nodes, Dir, NodeBinary,
	// CacheBytes, NodeMetrics, NoShuffleService and AdvertiseNode are local
	// mode's and may not be set with it. Empty: local mode.
	Master string
	// ClusterSecret is the secret the cluster's nodes require (their
	// --cluster-secret-file). Local mode makes its own.
	ClusterSecret string
	// TLSDir is the driver's identity in cluster mode: ca.crt, tls.crt
	// and tls.key (`shoal certs client`; docs/security.md). The driver
	// presents it to the nodes and verifies theirs against its CA, and
	// its endpoint serves the workers with it. Required with a Master
	// unless Insecure. Local mode makes an ephemeral CA at every start
	// instead, so that the same mutual-TLS path is always taken.
	TLSDir string
	// TLSServerName, in cluster mode, is the name every node's
	// certificate carries, verified instead of the address dialled
	// (Kubernetes: the nodes' addresses are the pods', unknown when the
	// certificate is made). Empty: each node's certificate must name the
	// host it is dialled by.
	TLSServerName string
	// Insecure turns TLS off on every link, for benchmarks: refused
	// unless every address is loopback (the driver's endpoint, and in
	// cluster mode every node of a shoal:// Master).
	Insecure bool
	// DriverListen is where the driver's endpoint listens for its workers:
	// default 127.0.0.1:0 in local mode, :0 (every interface, a free
	// port) in cluster mode.
	DriverListen string
	// DriverHost is the host or IP the workers reach the driver by in
	// cluster mode. Default: this machine's address on its route to the
	// first node.
	DriverHost string
	// Dir holds the node services' directories; default a temporary
	// directory, removed by Close.
	Dir string
	// Binary is re-executed as the workers (and, unless NodeBinary is set,
	// as the node services); default the running executable, which must
	// call Init first thing in main.
	Binary, NodeBinary string
	// EventLog, if set, is the file the event log (docs/DESIGN.md §8) is
	// appended to.
	EventLog string
	// Progress receives a progress line per stage (stderr in the CLI);
	// nil prints nothing.
	Progress io.Writer
	// ShuffleMode and Codec choose the shuffle writer ("sort", "bypass"
	// or "hash"; default "sort") and its compression ("s2", "zstd" or
	// "none"; default shuffle.DefaultCodec, "s2").
	ShuffleMode string
	Codec       string
	// NoShuffleService turns the external shuffle service off (`shoal run
	// --shuffle-service off`): each worker serves the map outputs it
	// writes from a shuffle server embedded in its own process, and they
	// die with it, as in Spark without its external shuffle service.
	// Losing a worker then forces the recomputation of the map outputs it
	// had finished; with the service on (the default, false) it forces
	// none. The node services still run, but hold no shuffle files.
	NoShuffleService bool
	// MaxTaskFailures is how many times a task may fail before the job
	// fails; default DefaultMaxTaskFailures (4). A stage is attempted at
	// most MaxStageAttempts (default DefaultMaxStageAttempts, 4) times
	// after fetch failures.
	MaxTaskFailures, MaxStageAttempts int
	// LocalityWait is how long a task waits for a slot on a node it
	// prefers before taking any; default DefaultLocalityWait (100ms).
	LocalityWait time.Duration
	// HeartbeatTimeout declares a silent worker lost; default
	// DefaultHeartbeatTimeout (10s). It is
	// also the workers' driver timeout: a worker that hears nothing from
	// the driver for this long cancels its tasks and exits. Both sides
	// heartbeat every second, or every fifth of a timeout under 5 s.
	HeartbeatTimeout time.Duration
	// Speculation runs a backup copy of a straggling task on another
	// worker once most of its stage has finished; the first copy to
	// finish wins (see "Scheduling and failures" in the package doc).
	Speculation bool
	// HeapCacheBytes bounds each worker's MemoryDeser blocks, counted as
	// the records' encoded size; default DefaultHeapCacheBytes. The node
	// services' memory for blocks is CacheBytes.
	HeapCacheBytes int64
	// MaxDirectResultBytes is the largest result a task sends on its
	// worker's stream; a larger one is stored in the worker's node
	// service and fetched from there by the driver. Default
	// DefaultMaxDirectResultBytes (1 MiB). If both are set, it may not
	// exceed MaxResultBytes.
	MaxDirectResultBytes int64
	// MaxResultBytes bounds the total of a job's results (encoded) that
	// the driver holds, e.g. what Collect gathers; a job that would
	// exceed it fails, saying so. Default DefaultMaxResultBytes (1 GiB).
	MaxResultBytes int64
	// CacheBytes is each node service's memory for cached blocks (`shoal
	// node --cache-bytes`); 0 means the node's default.
	CacheBytes int64
	// CheckpointDir is the checkpoint store (docs/DESIGN.md §5) of Checkpoint:
	// s3://bucket/prefix (on the service of S3), file:///path or a path.
	// Empty: no store (Checkpoint then fails the job, saying so).
	CheckpointDir string
	// S3 configures the S3-compatible service of s3:// inputs (TextFile,
	// CSVFile, GensortFile), outputs (SaveAsTextFile, SaveAsRawFile) and
	// an s3:// CheckpointDir: endpoint, credentials, region, part size,
	// retries and timeouts (objstore.Options; CreateBucket applies to the
	// checkpoint store only). Zero fields take their defaults, the
	// endpoint, credentials and region from AWS_ENDPOINT_URL,
	// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION. The driver
	// lists inputs and commits outputs with it; it gives the endpoint,
	// credentials and region it sets to the workers it starts, in their
	// environment (the same AWS_ variables), for they read and write the
	// objects. The secret key is never logged nor written in the event
	// log.
	S3 objstore.Options
	// S3Endpoint is S3.Endpoint's shorthand (the CLI's --s3-endpoint),
	// e.g. http://127.0.0.1:9000; if both are set they must be equal.
	S3Endpoint string
	// CheckpointDir is shared by runs: each Context writes under a
	// prefix of its own, APP/RUN/ (Context.CheckpointRun).
	//
	// CheckpointKeep, if positive, deletes this run's checkpoints older
	// than its newest CheckpointKeep complete ones, after each checkpoint
	// completes; other runs' are never touched (checkpoint.PruneRuns,
	// `shoal checkpoints prune`, removes finished runs' on request). It
	// suits a program that moves forward, as an iterative one does, whose
	// lineage is truncated to its newest checkpoints; one that still
	// reads an older checkpoint of its own must keep more, or 0 for all.
	// It needs a CheckpointDir.
	CheckpointKeep int
	// CheckpointVia chooses who writes a checkpoint's partitions to the
	// store (docs/DESIGN.md §5): "node" (the default in local mode; in
	// cluster mode only when asked for, as the nodes must have been started
	// with the store) has each task hand
	// its partition to its node service, which commits it, uploads it in
	// the background and keeps a copy for readers; the driver writes the
	// manifest once the nodes report every partition durable, and the
	// workers never open the store (the node services hold its endpoint
	// and credentials: in local mode the driver gives them its own; in
	// cluster mode they are the nodes' `--checkpoint-dir`,
	// `--s3-endpoint` and AWS_ environment). "task" has each task upload
	// its partition itself before it ends (the design before the node
	// held checkpoints, kept for comparison: `shoal bench ckpt`).
	CheckpointVia string
	// CheckpointTimeout bounds how long a checkpoint may take to become
	// durable in the store once its partitions are handed to the nodes
	// (CheckpointVia "node"); a checkpoint still not durable fails the
	// next job (or WaitCheckpoints, or Close) with an error naming the
	// store's endpoint and bucket and the last upload error. Default
	// DefaultCheckpointTimeout (10 minutes).
	CheckpointTimeout time.Duration
	// AdvertiseDriver and AdvertiseNode, if set, rewrite the addresses by
	// which the local cluster's processes reach the driver and the node
	// services: AdvertiseDriver is given the driver endpoint's listening
	// address and returns the one workers dial; AdvertiseNode is
	// compute.LocalOptions.AdvertiseNode (the address workers, readers and
	// the driver reach node index by). They exist for tests that put a
	// fault-injecting proxy on those links (internal/toxiproxy); nil, the
	// default, leaves the listening addresses.
	AdvertiseDriver func(listen string) (string, error)
	AdvertiseNode   func(index int, listen string) (string, error)
	// UIAddr, if set and not "off", serves the live UI and its REST API
	// (package client/ui, docs/ui.md) at this host:port while the context
	// runs, and the driver's Prometheus metrics at /metrics; a port that
	// is taken is followed by the next free one (Context.UI().Addr() says
	// which). With no EventLog the events then only feed the UI.
	UIAddr string
	// UI bounds what the UI keeps (jobs, tasks per stage); its Registry,
	// if nil, is a new one for this context.
	UI ui.Options
	// NodeMetrics makes each node service of the local cluster serve its
	// Prometheus metrics (`shoal node --metrics-addr`) on a port of its
	// own: Local().Nodes()[i].MetricsAddr.
	NodeMetrics bool
	// UIKeep leaves the UI serving after Close, showing the finished
	// application, until the caller closes it (Context.UI().Close):
	// `shoal run --ui-wait`.
	UIKeep bool
	// WorkerStderr receives the workers' and node services' logs; default
	// discarded.
	WorkerStderr io.Writer
	Logger       *slog.Logger
}

// EnsureDefaults replaces every zero field by its default. It leaves
// negative values alone, for Validate to report.
func (o *Options) EnsureDefaults() {
	if o.App == "" {
		// Random bits besides: an ID another application can guess, it
		// can register first on the nodes and so keep this one out.
		var b [6]byte
		rand.Read(b[:]) // never fails (crypto/rand)
		o.App = fmt.Sprintf("shoal-%d-%d-%x", os.Getpid(), time.Now().UnixMilli(), b)
	}
	if o.Nodes == 0 && o.Master == "" {
		o.Nodes = DefaultNodes
	}
	if o.WorkersPerNode == 0 && o.Master == "" {
		o.WorkersPerNode = DefaultWorkersPerNode
	}
	if o.Slots == 0 {
		o.Slots = DefaultSlots
	}
	if o.ShuffleMode == "" {
		o.ShuffleMode = DefaultShuffleMode
	}
	if o.Codec == "" {
		o.Codec = shuffle.DefaultCodec.String()
	}
	if o.MaxTaskFailures == 0 {
		o.MaxTaskFailures = DefaultMaxTaskFailures
	}
	if o.MaxStageAttempts == 0 {
		o.MaxStageAttempts = DefaultMaxStageAttempts
	}
	if o.LocalityWait == 0 {
		o.LocalityWait = DefaultLocalityWait
	}
	if o.HeartbeatTimeout == 0 {
		o.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if o.HeapCacheBytes == 0 {
		o.HeapCacheBytes = DefaultHeapCacheBytes
	}
	if o.MaxDirectResultBytes == 0 {
		o.MaxDirectResultBytes = DefaultMaxDirectResultBytes
	}
	if o.MaxResultBytes == 0 {
		o.MaxResultBytes = DefaultMaxResultBytes
	}
	if o.S3.Endpoint == "" {
		o.S3.Endpoint = o.S3Endpoint
	}
	if o.CheckpointVia == "" {
		// A cluster's nodes hold checkpoints only if their operator gave
		// them the store (--checkpoint-dir): there the tasks write them,
		// unless the program asks for the nodes.
		o.CheckpointVia = CheckpointViaNode
		if o.Master != "" {
			o.CheckpointVia = CheckpointViaTask
		}
	}
	if o.CheckpointTimeout == 0 {
		o.CheckpointTimeout = DefaultCheckpointTimeout
	}
	if o.WorkerStderr == nil {
		o.WorkerStderr = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem of o at once, each wrapping
// ErrInvalidOptions and naming its field. It judges the options as they
// were given: a zero field means its default and is never a problem, so
// NewContext calls Validate before EnsureDefaults (with the defaults
// filled in, a MaxResultBytes below 1 MiB would contradict the default
// MaxDirectResultBytes, which the caller did not choose).
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"Nodes", int64(o.Nodes)},
		{"WorkersPerNode", int64(o.WorkersPerNode)},
		{"Slots", int64(o.Slots)},
		{"MaxTaskFailures", int64(o.MaxTaskFailures)},
		{"MaxStageAttempts", int64(o.MaxStageAttempts)},
		{"HeapCacheBytes", o.HeapCacheBytes},
		{"MaxDirectResultBytes", o.MaxDirectResultBytes},
		{"MaxResultBytes", o.MaxResultBytes},
		{"CacheBytes", o.CacheBytes},
		{"CheckpointKeep", int64(o.CheckpointKeep)},
	} {
		if f.v < 0 {
			bad("%s %d is negative (0 means the default)", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"LocalityWait", o.LocalityWait},
		{"HeartbeatTimeout", o.HeartbeatTimeout},
		{"CheckpointTimeout", o.CheckpointTimeout},
	} {
		if f.v < 0 {
			bad("%s %v is negative (0 means the default)", f.name, f.v)
		}
	}
	if o.ShuffleMode != "" {
		if _, err := shuffle.ParseMode(o.ShuffleMode); err != nil {
			bad("ShuffleMode %q is not a shuffle writer (want sort, bypass or hash)", o.ShuffleMode)
		}
	}
	if o.Codec != "" {
		if _, err := shuffle.ParseCodec(o.Codec); err != nil {
			bad("Codec %q is not a codec (want s2, zstd or none)", o.Codec)
		}
	}
	if o.MaxDirectResultBytes > 0 && o.MaxResultBytes > 0 && o.MaxDirectResultBytes > o.MaxResultBytes {
		bad("MaxDirectResultBytes %d exceeds MaxResultBytes %d (no result that large could be held)", o.MaxDirectResultBytes, o.MaxResultBytes)
	}
	if o.Master != "" {
		if _, err := compute.ParseMaster(o.Master); err != nil {
			bad("Master: %v", err)
		}
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"Nodes", o.Nodes != 0}, {"Dir", o.Dir != ""}, {"NodeBinary", o.NodeBinary != ""},
			{"CacheBytes", o.CacheBytes != 0}, {"NodeMetrics", o.NodeMetrics},
			{"NoShuffleService", o.NoShuffleService}, {"AdvertiseNode", o.AdvertiseNode != nil},
		} {
			if f.set {
				bad("%s is local mode's: with a Master the nodes are the cluster's own (set it on `shoal node`)", f.name)
			}
		}
	} else if o.DriverHost != "" {
		bad("DriverHost %q without a Master (local mode's workers reach the driver on loopback)", o.DriverHost)
	}
	switch {
	case o.Master == "" && (o.TLSDir != "" || o.TLSServerName != ""):
		bad("TLSDir and TLSServerName are cluster mode's (local mode makes its own certificates)")
	case o.Insecure && (o.TLSDir != "" || o.TLSServerName != ""):
		bad("Insecure with TLSDir or TLSServerName (TLS off, or certificates: not both)")
	case o.Insecure:
		for _, p := range insecureProblems(o) {
			bad("Insecure: %s (TLS may be off only when every address is loopback)", p)
		}
	case o.Master != "" && o.TLSDir == "":
		bad("cluster mode needs the driver's certificate: TLSDir (shoal run --tls-dir DIR, made by shoal certs client), or Insecure for nodes on loopback")
	}
	switch o.CheckpointVia {
	case "", CheckpointViaNode, CheckpointViaTask:
	default:
		bad("CheckpointVia %q: want %q or %q", o.CheckpointVia, CheckpointViaNode, CheckpointViaTask)
	}
	if o.CheckpointVia != CheckpointViaTask && strings.HasPrefix(o.CheckpointDir, "mem://") {
		bad("CheckpointDir %q is one process's memory, which the node services cannot reach: use CheckpointVia %q, or a directory", o.CheckpointDir, CheckpointViaTask)
	}
	if o.CheckpointKeep > 0 && o.CheckpointDir == "" {
		bad("CheckpointKeep %d without a CheckpointDir (set CheckpointDir, or leave CheckpointKeep 0)", o.CheckpointKeep)
	}
	if o.S3Endpoint != "" && o.S3.Endpoint != "" && o.S3Endpoint != o.S3.Endpoint {
		bad("S3Endpoint %q and S3.Endpoint %q differ (set one of them)", o.S3Endpoint, o.S3.Endpoint)
	}
	if s3 := o.S3; s3 != (objstore.Options{}) || o.S3Endpoint != "" {
		// Set for a reason: it must work, endpoint and credentials from
		// the environment included.
		s3.Endpoint = cmp.Or(s3.Endpoint, o.S3Endpoint)
		s3.EnsureDefaults()
		if err := s3.Validate(); err != nil {
			for _, e := range unjoin(err) {
				bad("S3: %v", e)
			}
		}
	}
	return errors.Join(errs...)
}

// unjoin returns the errors errors.Join joined in err, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// insecureProblems lists the addresses of o that are not loopback, where
// Insecure would let plain TCP out of this machine.
func insecureProblems(o *Options) []string {
	var out []string
	if o.DriverListen != "" && !loopbackHostPort(o.DriverListen) {
		out = append(out, fmt.Sprintf("DriverListen %s is not loopback", o.DriverListen))
	}
	if o.DriverHost != "" && !loopbackHost(o.DriverHost) {
		out = append(out, fmt.Sprintf("DriverHost %s is not loopback", o.DriverHost))
	}
	if o.Master == "" {
		return out
	}
	m, err := compute.ParseMaster(o.Master)
	if err != nil {
		return out // reported as such
	}
	if m.Scheme != compute.SchemeShoal {
		return append(out, fmt.Sprintf("Master %s is resolved at run time", o.Master))
	}
	for _, a := range m.Addrs {
		if !loopbackHostPort(a) {
			out = append(out, fmt.Sprintf("node %s is not loopback", a))
		}
	}
	return out
}

func loopbackHostPort(hp string) bool {
	host, _, err := net.SplitHostPort(hp)
	return err == nil && loopbackHost(host)
}

// loopbackHost: "localhost" or a loopback IP address.
func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
