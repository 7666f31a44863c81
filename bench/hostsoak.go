package bench

import (
	"context"
	"fmt"
	"slices"
	"time"

	"shoal/client"
	"shoal/internal/hostcluster"
	"shoal/objstore"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shufflepb"
)

// hostSoak is the soakCluster of the soak across hosts: one cluster of
// containers for the whole soak, a driver (the soaker's cluster) for
// RunsPerCluster runs on it, workers killed through their nodes
// (Remote.KillWorker) and whole hosts killed, paused or cut off.
type hostSoak struct {
	*hostCluster
	// addrs are the nodes' addresses when the driver started; a host
	// that comes back at another address makes the soaker start a new
	// driver, which joins it there.
	addrs []string
}

func startHostSoak(ctx context.Context, cfg *SoakConfig) (*hostSoak, error) {
	h, err := startHosts(ctx, "demo-soak", cfg.Options.Nodes, cfg.Options.WorkersPerNode,
		func(f string, a ...any) { fmt.Fprintf(cfg.Log, f+"\n", a...) })
	if err != nil {
		return nil, err
	}
	return &hostSoak{hostCluster: h}, nil
}

func (h *hostSoak) options(o client.Options) (client.Options, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o, err := h.hostCluster.options(ctx, o)
	if err == nil {
		h.addrs, err = h.current(ctx)
	}
	return o, err
}

// current returns the hosts' node addresses now.
func (h *hostSoak) current(ctx context.Context) ([]string, error) {
	addrs := make([]string, len(h.hc.Hosts))
	for i, x := range h.hc.Hosts {
		a, err := x.Addr(ctx)
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	return addrs, nil
}

// remove deletes a run's output from the bucket: a soak writes hundreds.
func (h *hostSoak) remove(out string) {
	u, err := objstore.ParseURI(out)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	objs, err := h.s3.List(ctx, u.Bucket, u.Key+"/", 1<<20)
	if err != nil {
		return
	}
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	_ = h.s3.Delete(ctx, u.Bucket, keys...)
}

func (h *hostSoak) killWorker(s *soaker, taken []int) (string, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var live []string
	nodeOf := map[string]int{}
	for i, addr := range h.addrs {
		if slices.Contains(taken, i) {
			continue
		}
		cl, err := nodeclient.Dial(addr, nodeclient.WithCredentials(h.hc.Credentials()), nodeclient.WithAppToken(s.c.AppToken()))
		if err != nil {
			continue
		}
		ws, _, err := cl.Workers(ctx, s.c.App())
		cl.Close()
		if err != nil {
			continue
		}
		for _, w := range ws {
			if w.GetState() == shufflepb.WorkerState_WORKER_STATE_RUNNING {
				live = append(live, w.GetId())
				nodeOf[w.GetId()] = i
			}
		}
	}
	if len(live) == 0 {
		return "", false
	}
	id := live[s.rng.IntN(len(live))]
	if err := s.c.Remote().KillWorker(id); err != nil {
		fmt.Fprintf(s.cfg.Log, "soak: kill worker %s: %v\n", id, err)
		return "", false
	}
	s.res.WorkersKilled++
	s.killsOn[nodeOf[id]]++
	return id, true
}

func (h *hostSoak) takeNode(s *soaker, taken []int, f hostcluster.Fault) (int, string, bool) {
	var up []int
	for i := range h.hc.Hosts {
		if !slices.Contains(taken, i) {
			up = append(up, i)
		}
	}
	if len(up) < 2 {
		return 0, "", false
	}
	i := up[s.rng.IntN(len(up))]
	host := h.hc.Hosts[i]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := host.Inject(ctx, f); err != nil {
		fmt.Fprintf(s.cfg.Log, "soak: host %s %s: %v\n", host.Name, f, err)
		return 0, "", false
	}
	s.res.NodesKilled++
	switch f {
	case hostcluster.Killed:
		s.res.HostsKilled++
	case hostcluster.Paused:
		s.res.HostsPaused++
	case hostcluster.CutOff:
		s.res.HostsCutOff++
	}
	return i, fmt.Sprintf("host %s %s", host.Name, f), true
}

// bringBack restores the host; if it came back at another address, the
// driver, which knows the old one, is replaced.
func (h *hostSoak) bringBack(ctx context.Context, s *soaker, i int, f hostcluster.Fault) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	host := h.hc.Hosts[i]
	if err := host.Restore(ctx, f); err != nil {
		return err
	}
	if addr, err := host.Addr(ctx); err != nil || i >= len(h.addrs) || addr != h.addrs[i] {
		fmt.Fprintf(s.cfg.Log, "soak: host %s came back at another address: a new driver\n", host.Name)
		s.closeCluster()
	}
	return nil
}
