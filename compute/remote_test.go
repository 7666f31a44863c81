package compute_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"shoal/compute"
)

func TestParseMaster(t *testing.T) {
	for _, c := range []struct {
		in   string
		want compute.Master
		err  string
	}{
		{in: "shoal://h1:7077,h2:7078", want: compute.Master{Scheme: "shoal", Addrs: []string{"h1:7077", "h2:7078"}}},
		{in: "shoal://h1, 10.0.0.2", want: compute.Master{Scheme: "shoal", Addrs: []string{"h1:7077", "10.0.0.2:7077"}}},
		{in: "shoal://[::1]:9", want: compute.Master{Scheme: "shoal", Addrs: []string{"[::1]:9"}}},
		{in: "dns://shoal-node.shoal.svc:7077", want: compute.Master{Scheme: "dns", Host: "shoal-node.shoal.svc", Port: "7077"}},
		{in: "DNS://nodes", want: compute.Master{Scheme: "dns", Host: "nodes", Port: "7077"}},
		{in: "h1:7077", err: "want shoal://"},
		{in: "spark://h1:7077", err: `unknown scheme "spark"`},
		{in: "shoal://", err: "want shoal://"},
		{in: "shoal://h1:7077,", err: "an empty address"},
		{in: "shoal://h1:0", err: "bad port"},
		{in: "shoal://h1:x", err: "bad port"},
		{in: "shoal://h1:7077,h1:7077", err: "listed twice"},
		{in: "dns://a/b", err: "bad host"},
	} {
		got, err := compute.ParseMaster(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseMaster(%q) = %+v, %v; want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseMaster(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}

// StartRemote applies the node's rule for the workers' environment before
// it reaches any node.
func TestStartRemoteRefusesWorkerEnv(t *testing.T) {
	for _, env := range [][]string{{"PATH=/bin"}, {"SHOAL_ROLE=node"}, {"LD_PRELOAD=/x.so"}} {
		_, err := compute.StartRemote(context.Background(), compute.RemoteOptions{
			Master: "shoal://127.0.0.1:1", DriverAddr: "127.0.0.1:2", App: "app", AppToken: "t", Env: env,
		})
		key, _, _ := strings.Cut(env[0], "=")
		if err == nil || !strings.Contains(err.Error(), key) || strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Errorf("Env %q: %v; want a refusal naming %s before any node is asked", env, err, key)
		}
	}
}
