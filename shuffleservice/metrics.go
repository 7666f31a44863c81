package shuffleservice

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// promMetrics are the node service's Prometheus metrics (`shoal node
// --metrics-addr`), registered in Options.Registry. Most are read from
// the Metrics snapshot when scraped (nodeCollector), so the hot paths
// keep their atomic counters and nothing else; the gRPC interceptors add
// the latency histogram, the open streams and the errors by code.
type promMetrics struct {
	latency *prometheus.HistogramVec
	streams prometheus.Gauge
	errors  *prometheus.CounterVec
}

func newPromMetrics(s *Server, reg prometheus.Registerer) (*promMetrics, error) {
	m := &promMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "shoal_node_rpc_duration_seconds", Help: "Duration of the node's RPCs, by method (Fetch: the whole stream).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"method"}),
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_node_open_streams", Help: "Streaming RPCs in progress (Fetch, PutBlock, GetBlock)."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_node_grpc_errors_total", Help: "RPCs that ended with an error, by method and gRPC code.",
		}, []string{"method", "code"}),
	}
	err := errors.Join(reg.Register(m.latency), reg.Register(m.streams), reg.Register(m.errors), reg.Register(nodeCollector{s, newNodeDescs()}))
	if err != nil {
		return nil, err
	}
	return m, nil
}

func methodName(full string) string { return full[strings.LastIndexByte(full, '/')+1:] }

func (m *promMetrics) observe(method string, start time.Time, err error) {
	method = methodName(method)
	m.latency.WithLabelValues(method).Observe(time.Since(start).Seconds())
	if err != nil {
		m.errors.WithLabelValues(method, status.Code(err).String()).Inc()
	}
}

// unary and stream are the server's metrics interceptors; with no
// registry they pass the call through.
func (s *Server) metricsUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if s.prom == nil {
		return h(ctx, req)
	}
	start := time.Now()
	resp, err := h(ctx, req)
	s.prom.observe(info.FullMethod, start, err)
	return resp, err
}

func (s *Server) metricsStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if s.prom == nil {
		return h(srv, ss)
	}
	start := time.Now()
	s.prom.streams.Inc()
	defer s.prom.streams.Dec()
	err := h(srv, ss)
	s.prom.observe(info.FullMethod, start, err)
	return err
}

// nodeCollector reads the node's Metrics snapshot when scraped.
type nodeCollector struct {
	s *Server
	d nodeDescSet
}

type nodeDescSet struct {
	apps, outputs, committed, outputBytes, fetchReqs, fetchBytes, fetchBlocks, idxHits, idxMisses *prometheus.Desc
	blocks, blockBytes, memLimit, evictions, blockHits, blockMisses, blockIn, blockOut, corrupt   *prometheus.Desc
	workers, binaries, refused                                                                    *prometheus.Desc
}

func newNodeDescs() nodeDescSet {
	return nodeDescSet{
		apps:        prometheus.NewDesc("shoal_node_applications", "Applications registered.", nil, nil),
		outputs:     prometheus.NewDesc("shoal_node_map_outputs", "Committed map outputs held.", nil, nil),
		committed:   prometheus.NewDesc("shoal_node_map_outputs_committed_total", "Map outputs installed by a commit (first commits and replacements).", nil, nil),
		outputBytes: prometheus.NewDesc("shoal_node_map_output_bytes", "Bytes on disk of the committed map outputs (data and index files), by local directory.", []string{"dir"}, nil),
		fetchReqs:   prometheus.NewDesc("shoal_node_fetch_requests_total", "Fetch streams served.", nil, nil),
		fetchBytes:  prometheus.NewDesc("shoal_node_fetch_bytes_total", "Shuffle bytes (compressed frames) sent by Fetch.", nil, nil),
		fetchBlocks: prometheus.NewDesc("shoal_node_fetch_blocks_total", "Shuffle blocks sent whole by Fetch.", nil, nil),
		idxHits:     prometheus.NewDesc("shoal_node_index_cache_hits_total", "Index files found in the index cache.", nil, nil),
		idxMisses:   prometheus.NewDesc("shoal_node_index_cache_misses_total", "Index files read from disk.", nil, nil),
		blocks:      prometheus.NewDesc("shoal_node_blocks", "Cached blocks held, by tier (memory, disk).", []string{"tier"}, nil),
		blockBytes:  prometheus.NewDesc("shoal_node_block_bytes", "Bytes of cached blocks held, by tier (memory, disk).", []string{"tier"}, nil),
		memLimit:    prometheus.NewDesc("shoal_node_block_memory_limit_bytes", "The bound of the blocks in memory (--cache-bytes).", nil, nil),
		evictions:   prometheus.NewDesc("shoal_node_block_evictions_total", "Blocks evicted from memory (dropped or moved to disk).", nil, nil),
		blockHits:   prometheus.NewDesc("shoal_node_block_hits_total", "GetBlock calls that found their block.", nil, nil),
		blockMisses: prometheus.NewDesc("shoal_node_block_misses_total", "GetBlock calls that did not.", nil, nil),
		blockIn:     prometheus.NewDesc("shoal_node_block_received_bytes_total", "Bytes of blocks received by PutBlock.", nil, nil),
		blockOut:    prometheus.NewDesc("shoal_node_block_sent_bytes_total", "Bytes of blocks sent by GetBlock.", nil, nil),
		corrupt:     prometheus.NewDesc("shoal_node_corrupt_reads_total", "Fetches stopped by a corrupt file.", nil, nil),
		workers:     prometheus.NewDesc("shoal_node_workers", "Worker processes the node started and runs (cluster mode).", nil, nil),
		binaries:    prometheus.NewDesc("shoal_node_cached_binaries", "Executables in the node's binary cache (cluster mode).", nil, nil),
		refused:     prometheus.NewDesc("shoal_node_refused_calls_total", "Calls refused for want of the cluster secret.", nil, nil),
	}
}

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	d := c.d
	for _, x := range []*prometheus.Desc{d.apps, d.outputs, d.committed, d.outputBytes, d.fetchReqs, d.fetchBytes, d.fetchBlocks, d.idxHits, d.idxMisses,
		d.blocks, d.blockBytes, d.memLimit, d.evictions, d.blockHits, d.blockMisses, d.blockIn, d.blockOut, d.corrupt,
		d.workers, d.binaries, d.refused} {
		ch <- x
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.s.Metrics()
	d := c.d
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	counter := func(desc *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, v)
	}
	gauge(d.apps, float64(m.Apps))
	gauge(d.outputs, float64(m.MapOutputs))
	counter(d.committed, float64(m.Commits))
	for dir, b := range c.s.outputBytesByDir() {
		gauge(d.outputBytes, float64(b), dir)
	}
	counter(d.fetchReqs, float64(m.FetchRequests))
	counter(d.fetchBytes, float64(m.BytesServed))
	counter(d.fetchBlocks, float64(m.BlocksServed))
	counter(d.idxHits, float64(m.IndexCacheHits))
	counter(d.idxMisses, float64(m.IndexCacheMisses))
	gauge(d.blocks, float64(m.Blocks.MemoryBlocks), "memory")
	gauge(d.blocks, float64(m.Blocks.DiskBlocks), "disk")
	gauge(d.blockBytes, float64(m.Blocks.MemoryBytes), "memory")
	gauge(d.blockBytes, float64(m.Blocks.DiskBytes), "disk")
	gauge(d.memLimit, float64(m.BlockMemoryLimit))
	counter(d.evictions, float64(m.Blocks.Evictions))
	counter(d.blockHits, float64(m.Blocks.Hits))
	counter(d.blockMisses, float64(m.Blocks.Misses))
	counter(d.blockIn, float64(m.BlockBytesIn))
	counter(d.blockOut, float64(m.BlockBytesOut))
	counter(d.corrupt, float64(m.CorruptReads))
	gauge(d.workers, float64(m.Workers))
	gauge(d.binaries, float64(m.Binaries))
	counter(d.refused, float64(m.RefusedCalls))
}

// outputBytesByDir is the committed outputs' bytes by the local
// directory that holds them; every directory is present.
func (s *Server) outputBytesByDir() map[string]int64 {
	out := make(map[string]int64, len(s.layout.Dirs))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for i, d := range s.layout.Dirs {
		out[d] = s.dirOutputBytes[i]
	}
	return out
}
