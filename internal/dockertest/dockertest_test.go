package dockertest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"shoal/internal/poll"
)

// TestMinIOContainer runs a MinIO container from shoal-minio:dev on a
// private network and drives it through every fault the package offers,
// checking from the host what a client would see; then that nothing it
// made is left once its cleanup ran.
func TestMinIOContainer(t *testing.T) {
	Require(t)
	img := BuildImage(t, MinIO)
	run := uniqueName("run")
	var netName, volName, ctrName string

	t.Run("faults", func(t *testing.T) {
		ctx := context.Background()
		net := NewNetwork(t)
		vol := NewVolume(t)
		netName, volName = net.Name(), vol.Name()
		c := Run(t, RunOptions{
			Name:     "minio",
			Image:    img,
			Network:  net,
			Hostname: "minio",
			Env:      []string{"MINIO_ROOT_USER=shoal-test", "MINIO_ROOT_PASSWORD=shoal-test-secret"},
			Mounts:   []Mount{{Source: vol.Name(), Target: "/data"}},
			Labels:   map[string]string{"shoal-test.run": run},
		})
		ctrName = c.Name()

		// answers says whether MinIO's liveness endpoint answers 200
		// within a second at the container's current address.
		answers := func() (bool, error) {
			ip, err := c.IP(ctx)
			if err != nil {
				return false, err
			}
			cl := &http.Client{Timeout: time.Second}
			resp, err := cl.Get(fmt.Sprintf("http://%s:9000/minio/health/live", ip))
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, nil
		}
		waitAnswers := func(what string) {
			t.Helper()
			poll.WaitFor(t, 60*time.Second, what, func() bool {
				ok, _ := answers()
				return ok
			})
		}
		waitAnswers("MinIO to answer on its container's address")

		procs, err := c.Top(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(procs) != 1 || procs[0].UID != "65532" || !strings.HasPrefix(procs[0].Args, "/minio server /data") {
			t.Fatalf("docker top: %+v, want one process /minio server /data... of uid 65532 (the image's user)", procs)
		}
		logs, err := c.Logs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs, "Formatting 1st pool") { // what MinIO says of a new /data
			t.Fatalf("MinIO's logs do not say it formatted its volume:\n%s", logs)
		}

		// Paused: the kernel still accepts the connection, nothing answers.
		if err := c.Pause(ctx); err != nil {
			t.Fatal(err)
		}
		if s, err := c.State(ctx); err != nil || !s.Paused || s.Status != "paused" {
			t.Fatalf("state after Pause: %+v, %v", s, err)
		}
		start := time.Now()
		if ok, err := answers(); ok || err == nil {
			t.Fatalf("a paused MinIO answered (ok %v, err %v)", ok, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("the request to the paused MinIO took %v, want the client's 1 s timeout", d)
		}
		if err := c.Unpause(ctx); err != nil {
			t.Fatal(err)
		}
		waitAnswers("MinIO to answer again once unpaused")

		// Cut off: no address on the network; back: answers again.
		if err := c.Disconnect(ctx); err != nil {
			t.Fatal(err)
		}
		if ip, err := c.IP(ctx); err == nil {
			t.Fatalf("a disconnected container has address %s", ip)
		}
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		waitAnswers("MinIO to answer once connected again")

		// Killed: exit status 128+9; started again on its volume.
		if err := c.Kill(ctx, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		code, err := c.Wait(ctx)
		if err != nil || code != 137 {
			t.Fatalf("Wait after SIGKILL: %d, %v; want 137", code, err)
		}
		if ok, _ := answers(); ok {
			t.Fatal("a killed MinIO answered")
		}
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		waitAnswers("MinIO to answer once started again")
		if err := c.Restart(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
		waitAnswers("MinIO to answer once restarted")
	})

	// The subtest's cleanup has run: nothing of it is left.
	ctx := context.Background()
	if out, err := docker(ctx, "ps", "-aq", "--filter", "label=shoal-test.run="+run); err != nil || out != "" {
		t.Errorf("containers left: %q, %v", out, err)
	}
	for _, check := range [][]string{
		{"container", "inspect", ctrName},
		{"network", "inspect", netName},
		{"volume", "inspect", volName},
	} {
		if check[2] == "" {
			continue // the subtest failed before making it
		}
		if _, err := docker(ctx, check...); !isNotFound(err) {
			t.Errorf("docker %s: %v, want that it does not exist", strings.Join(check, " "), err)
		}
	}
}

// TestSweep makes a container, a network and a volume as a killed test
// binary would leave them, and checks that sweep removes them once they
// are older than its cutoff, and not before.
func TestSweep(t *testing.T) {
	Require(t)
	img := BuildImage(t, MinIO)
	ctx := context.Background()
	run := uniqueName("sweep")
	label := "shoal-test.run=" + run
	labels := []string{"--label", Label, "--label", label}
	names := map[string]string{"network": run + "-net", "volume": run + "-vol", "container": run + "-ctr"}
	// Should the test fail before the sweep, remove them anyway.
	t.Cleanup(func() {
		ctx, cancel := cleanupContext()
		defer cancel()
		_, _ = docker(ctx, "rm", "-f", "-v", names["container"])
		_, _ = docker(ctx, "network", "rm", names["network"])
		_, _ = docker(ctx, "volume", "rm", names["volume"])
	})
	for _, args := range [][]string{
		append(append([]string{"network", "create"}, labels...), names["network"]),
		append(append([]string{"volume", "create"}, labels...), names["volume"]),
		// Created, never started: a leftover needs no process.
		append(append([]string{"create", "--name", names["container"], "--network", names["network"],
			"--volume", names["volume"] + ":/data"}, labels...), img),
	} {
		if _, err := docker(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	exists := func() map[string]bool {
		m := map[string]bool{}
		for kind, name := range names {
			_, err := docker(ctx, kind, "inspect", name)
			if err != nil && !isNotFound(err) {
				t.Fatal(err)
			}
			m[kind] = err == nil
		}
		return m
	}

	if err := sweep(ctx, label, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if m := exists(); !m["network"] || !m["volume"] || !m["container"] {
		t.Fatalf("a sweep of resources older than an hour removed fresh ones: %v exist", m)
	}
	if err := sweep(ctx, label, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if m := exists(); m["network"] || m["volume"] || m["container"] {
		t.Fatalf("after the sweep: %v exist, want none", m)
	}
}

func TestSanitize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"TestMinIOContainer/faults", "TestMinIOContainer-faults"},
		{"Test x:y", "Test-xy"},
		{"-a_b.c-", "a_b.c"},
		{strings.Repeat("a", 50), strings.Repeat("a", 40)},
	} {
		if got := sanitize(c.in); got != c.want {
			t.Errorf("sanitize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	a, b := uniqueName("x"), uniqueName("x")
	if a == b || !strings.HasPrefix(a, "shoal-test-x-") {
		t.Errorf("uniqueName: %q and %q", a, b)
	}
}
