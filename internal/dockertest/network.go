package dockertest

import (
	"context"
	"strings"
)

// Network is a private bridge network of a test: its containers reach
// each other by hostname and alias, and the host reaches them by IP.
type Network struct {
	name string
}

// NewNetwork creates a bridge network with a unique name for t and
// removes it with t.Cleanup (after any container still attached).
func NewNetwork(t TB) *Network {
	t.Helper()
	n := &Network{name: uniqueName("net")}
	t.Cleanup(func() {
		ctx, cancel := cleanupContext()
		defer cancel()
		if err := removeNetwork(ctx, n.name); err != nil {
			t.Errorf("dockertest: removing network %s: %v", n.name, err)
		}
	})
	args := append([]string{"network", "create", "--driver", "bridge"}, labelArgs(t, nil)...)
	if _, err := docker(context.Background(), append(args, n.name)...); err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	return n
}

// Name is the network's name, as docker knows it.
func (n *Network) Name() string { return n.name }

// removeNetwork removes the containers still attached to a network, then
// the network; a network that no longer exists is not an error.
func removeNetwork(ctx context.Context, name string) error {
	if err := removeContainersUsing(ctx, "network="+name); err != nil {
		return err
	}
	if _, err := docker(ctx, "network", "rm", name); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// removeContainersUsing removes (rm -f -v) the containers that docker ps
// lists with the filter, e.g. network=NAME or volume=NAME.
func removeContainersUsing(ctx context.Context, filter string) error {
	out, err := docker(ctx, "ps", "-aq", "--no-trunc", "--filter", filter)
	if err != nil {
		return err
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return nil
	}
	if _, err := docker(ctx, append([]string{"rm", "-f", "-v"}, ids...)...); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}
