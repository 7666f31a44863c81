package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"shoal/internal/dockertest"
	"shoal/internal/hostcluster"
	"shoal/internal/poll"
)

// TestImage checks shoal:dev's configuration, then runs it: a one-shot
// command writing to /tmp as the image's non-root user, and a node service
// on a volume with a read-only root file system (as the DaemonSet runs it)
// that answers on port 7077 of its container.
func TestImage(t *testing.T) {
	dockertest.Require(t)
	img := dockertest.BuildImage(t, dockertest.Shoal)
	ctx := context.Background()

	out, err := exec.Command("docker", "image", "inspect", "--format", "{{json .Config}}", img).Output()
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		User       string
		Entrypoint []string
		Cmd        []string
		Volumes    map[string]struct{}
		Env        []string
		Labels     map[string]string
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.User != "65532:65532" || !slices.Equal(cfg.Entrypoint, []string{"/shoal"}) || !slices.Equal(cfg.Cmd, []string{"node"}) {
		t.Errorf("user %q, entrypoint %q, cmd %q; want 65532:65532, /shoal, node", cfg.User, cfg.Entrypoint, cfg.Cmd)
	}
	if _, ok := cfg.Volumes["/var/lib/shoal"]; !ok {
		t.Errorf("volumes %v, want /var/lib/shoal", cfg.Volumes)
	}
	if !slices.Contains(cfg.Env, "SHOAL_NODE_DIR=/var/lib/shoal") || !slices.Contains(cfg.Env, "SHOAL_NODE_LISTEN=0.0.0.0:7077") {
		t.Errorf("env %q, want the node's directory and listening address", cfg.Env)
	}
	if !hex64.MatchString(cfg.Labels["shoal.binary-sha256"]) {
		t.Errorf("labels %v, want shoal.binary-sha256", cfg.Labels)
	}

	network := dockertest.NewNetwork(t)
	// A scratch image has no /tmp of its own: the image's is mode 1777.
	gen := dockertest.Run(t, dockertest.RunOptions{Name: "gen", Image: img, Network: network,
		Cmd: []string{"gen", "text", "--records", "1000", "--output", "/tmp/text.txt"}})
	if code, err := gen.Wait(ctx); err != nil || code != 0 {
		logs, _ := gen.Logs(ctx)
		t.Fatalf("shoal gen in the image: exit %d, %v\n%s", code, err, logs)
	}

	var b [16]byte
	_, _ = rand.Read(b[:])
	vol := dockertest.NewVolume(t)
	certs, err := hostcluster.MakeCerts(t.TempDir(), "h1")
	if err != nil {
		t.Fatal(err)
	}
	node := dockertest.Run(t, dockertest.RunOptions{
		Name: "node", Image: img, Network: network, Hostname: "h1", User: certs.User,
		Cmd: []string{"node", "--listen", "0.0.0.0:7077", "--dir", "/var/lib/shoal", "--tls-dir", "/etc/shoal/tls"},
		// A node listening beyond loopback needs a cluster secret and a
		// certificate.
		Env: []string{"SHOAL_CLUSTER_SECRET=" + hex.EncodeToString(b[:])},
		Mounts: []dockertest.Mount{{Source: vol.Name(), Target: "/var/lib/shoal"},
			{Source: certs.NodeDirs[0], Target: "/etc/shoal/tls", ReadOnly: true}},
		ReadOnly: true,
		Tmpfs:    []string{"/tmp"},
	})
	poll.WaitFor(t, time.Minute, "the node to listen on port 7077 of its container", func() bool {
		logs, err := node.Logs(ctx)
		if err != nil || !strings.Contains(logs, "shoal node listening on") {
			if s, err := node.State(ctx); err == nil && !s.Running {
				t.Fatalf("the node exited (%d):\n%s", s.ExitCode, logs)
			}
			return false
		}
		ip, err := node.IP(ctx)
		if err != nil {
			return false
		}
		c, err := (&net.Dialer{Timeout: time.Second}).Dial("tcp", ip+":7077")
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	procs, err := node.Top(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) == 0 || procs[0].UID != "65532" || !strings.HasPrefix(procs[0].Args, "/shoal node") {
		t.Fatalf("docker top: %+v, want /shoal node as uid 65532", procs)
	}
}
