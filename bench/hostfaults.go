package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"shoal/client"
	"shoal/client/eventlog"
	"shoal/internal/dockertest"
	"shoal/internal/hostcluster"
	"shoal/objstore"
)

// The experiments across hosts (FaultsConfig.Hosts, SoakConfig.Hosts):
// the driver runs here, the nodes in containers of a private Docker
// network started by hostcluster, the inputs and outputs in its MinIO.

// HostsHeartbeatTimeout is the driver's HeartbeatTimeout in the
// experiments across hosts unless Options set one: a paused or cut-off
// host is found lost after it, as in jobs.TestCluster.
const HostsHeartbeatTimeout = 4 * time.Second

// hostLostTimeout bounds the wait for the driver to declare a host
// lost (node_lost) before it is brought back.
const hostLostTimeout = 2 * time.Minute

// hostCluster is a cluster of containers started for an experiment,
// with the harness that removes them.
type hostCluster struct {
	harness *dockertest.Harness
	hc      *hostcluster.Cluster
	s3      *objstore.Client
}

// startHosts starts a cluster of nodes containers with perNode workers
// each. The caller closes it on every path out: close removes the
// containers, the network and the volumes.
func startHosts(ctx context.Context, name string, nodes, perNode int, log func(string, ...any)) (*hostCluster, error) {
	h := &hostCluster{harness: dockertest.NewHarness(name, logWriter(log))}
	start := time.Now()
	err := h.harness.Do(func() {
		h.hc = hostcluster.Start(h.harness, hostcluster.Options{Nodes: nodes, WorkersPerNode: perNode})
	})
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		h.s3, err = objstore.New(h.hc.S3Options())
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("bench: start the cluster of containers: %w", err), h.close())
	}
	log("cluster: %d node containers (%s) and MinIO on network %s, started in %.1f s", nodes, h.names(), h.hc.Net.Name(), time.Since(start).Seconds())
	return h, nil
}

// logWriter turns a line logger into the harness's io.Writer.
type logWriter func(string, ...any)

func (l logWriter) Write(p []byte) (int, error) {
	l("%s", strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (h *hostCluster) names() string {
	var n []string
	for _, x := range h.hc.Hosts {
		n = append(n, x.Name)
	}
	return strings.Join(n, ", ")
}

// close removes everything the cluster made. Idempotent.
func (h *hostCluster) close() error {
	if h.s3 != nil {
		h.s3.Close()
	}
	return h.harness.Close()
}

// options makes o a driver's of the cluster: its master (the nodes'
// current addresses), secret, certificate and MinIO; local mode's fields
// are cleared.
func (h *hostCluster) options(ctx context.Context, o client.Options) (client.Options, error) {
	o, err := h.hc.DriverOptions(ctx, o)
	if err != nil {
		return o, err
	}
	o.Nodes, o.NodeBinary = 0, ""
	if o.HeartbeatTimeout == 0 {
		o.HeartbeatTimeout = HostsHeartbeatTimeout
	}
	return o, nil
}

// location is an s3:// URI in the cluster's bucket.
func (h *hostCluster) location(name string) string {
	return objstore.Scheme + h.hc.Bucket + "/runs/" + name
}

// upload copies a local file into the bucket and returns its URI.
func (h *hostCluster) upload(ctx context.Context, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	key := "inputs/" + filepath.Base(path)
	if _, err := h.s3.PutStream(ctx, h.hc.Bucket, key, f); err != nil {
		return "", fmt.Errorf("bench: upload %s: %w", path, err)
	}
	return objstore.Scheme + h.hc.Bucket + "/" + key, nil
}

// readOutput returns the lines of a committed output's part files,
// sorted; an output without its _SUCCESS marker is an error.
func (h *hostCluster) readOutput(ctx context.Context, out string) ([]string, error) {
	u, err := objstore.ParseURI(out)
	if err != nil {
		return nil, err
	}
	if _, err := h.s3.Stat(ctx, u.Bucket, u.Key+"/_SUCCESS"); err != nil {
		return nil, fmt.Errorf("bench: output %s is not committed: %w", out, err)
	}
	objs, err := h.s3.List(ctx, u.Bucket, u.Key+"/part-", 1<<20)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("bench: no part files in %s", out)
	}
	var lines []string
	for _, o := range objs {
		r, err := h.s3.Minio().GetObject(ctx, u.Bucket, o.Key, minio.GetObjectOptions{})
		if err != nil {
			return nil, h.s3.Wrap(ctx, "get", u.Bucket, o.Key, err)
		}
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		if err := errors.Join(sc.Err(), r.Close()); err != nil {
			return nil, h.s3.Wrap(ctx, "get", u.Bucket, o.Key, err)
		}
	}
	slices.Sort(lines)
	return lines, nil
}

// host returns the host whose node is at addr now, and its index.
func (h *hostCluster) host(ctx context.Context, addr string) (*hostcluster.Host, int) {
	for i, x := range h.hc.Hosts {
		if a, err := x.Addr(ctx); err == nil && a == addr {
			return x, i
		}
	}
	return nil, -1
}

// liveWorkers are the workers of the node at addr that joined and were
// not lost, by the event log.
func liveWorkers(events []eventlog.Event, addr string) map[string]int {
	live := map[string]int{}
	for _, ev := range events {
		switch ev := ev.(type) {
		case *eventlog.WorkerAdded:
			if ev.Node == addr {
				live[ev.Worker] = ev.Pid
			}
		case *eventlog.WorkerLost:
			delete(live, ev.Worker)
		}
	}
	return live
}

// bringBack waits until the driver has declared the host at addr lost
// (node_lost), or the job has ended, and brings the host back.
func (h *hostCluster) bringBack(ctx context.Context, tail *eventlog.Tail, host *hostcluster.Host, addr string, f hostcluster.Fault, ended <-chan struct{}) error {
	deadline := time.Now().Add(hostLostTimeout)
	for lost := false; !lost; {
		evs, err := tail.Poll()
		if err != nil {
			return err
		}
		lost = slices.ContainsFunc(evs, func(ev eventlog.Event) bool {
			e, ok := ev.(*eventlog.NodeLost)
			return ok && e.Node == addr
		})
		if lost {
			break
		}
		select {
		case <-ended:
			lost = true
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the driver did not declare %s lost within %v", addr, hostLostTimeout)
		}
	}
	return host.Restore(ctx, f)
}

// hostFaults is the faultCluster of the experiments across hosts.
type hostFaults struct {
	*hostCluster
}

// startHostFaults starts the containers of cfg.Hosts.
func startHostFaults(ctx context.Context, cfg *FaultsConfig) (*hostFaults, error) {
	h, err := startHosts(ctx, "demo-faults", cfg.Options.Nodes, cfg.Options.WorkersPerNode,
		func(f string, a ...any) { fmt.Fprintf(cfg.Log, f+"\n", a...) })
	if err != nil {
		return nil, err
	}
	return &hostFaults{h}, nil
}

func (h *hostFaults) options(o client.Options) (client.Options, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return h.hostCluster.options(ctx, o)
}

func (h *hostFaults) locate(c *client.Context, events []eventlog.Event, t *faultTarget) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host, i := h.host(ctx, t.nodeAddr)
	if host == nil {
		return false
	}
	live := liveWorkers(events, t.nodeAddr)
	pid, ok := live[t.worker]
	if !ok {
		return false
	}
	t.node, t.victim, t.pid = i, t.worker, pid
	if t.wholeNode {
		st, err := host.State(ctx)
		if err != nil || !st.Running {
			return false
		}
		t.victim, t.pid = t.nodeAddr, st.Pid
		t.nodeWorker = slices.Sorted(func(yield func(string) bool) {
			for w := range live {
				if !yield(w) {
					return
				}
			}
		})
	}
	return true
}

func (h *hostFaults) inject(ctx context.Context, c *client.Context, sc faultScenario, t *faultTarget) error {
	if sc.host == "" {
		return c.Remote().KillWorker(t.victim)
	}
	host := h.hc.Hosts[t.node]
	verb := map[hostcluster.Fault]string{
		hostcluster.Killed: "killed (docker kill -s KILL)",
		hostcluster.Paused: "paused (docker pause)",
		hostcluster.CutOff: "cut off (docker network disconnect)",
	}[sc.host]
	if sc.restartAtOnce {
		verb = "killed (docker kill -s KILL) and started again at once"
	}
	t.what = fmt.Sprintf("%s host %s, node at %s (pid %d on the Docker host) with workers %s", verb, host.Name, t.nodeAddr, t.pid, strings.Join(t.nodeWorker, ", "))
	return host.Inject(ctx, sc.host)
}

func (h *hostFaults) afterFault(ctx context.Context, tail *eventlog.Tail, sc faultScenario, t faultTarget, ended <-chan struct{}) error {
	switch {
	case sc.host == "":
		return nil
	case sc.restartAtOnce:
		return h.hc.Hosts[t.node].Restore(ctx, sc.host)
	}
	return h.bringBack(ctx, tail, h.hc.Hosts[t.node], t.nodeAddr, sc.host, ended)
}
