package dockertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"shoal/internal/tail"
)

// RunOptions describe a container to Run.
type RunOptions struct {
	// Name is part of the container's name, shoal-test-NAME-RANDOM
	// (unique: parallel tests never collide). Default "c".
	Name string
	// Image to run. Required.
	Image string
	// Network the container joins; nil: docker's default bridge (then
	// Connect and Disconnect are not available).
	Network *Network
	// Hostname is the container's host name, and an alias by which the
	// other containers of Network reach it (docker resolves aliases, not
	// host names). Default: none.
	Hostname string
	// Aliases are more names by which the network's containers reach it.
	Aliases []string
	// Env is the environment, KEY=VALUE each, besides the image's. It goes
	// to docker in a file of mode 0600, never on its command line; a value
	// may not hold a newline.
	Env []string
	// Entrypoint replaces the image's entrypoint; empty keeps it.
	Entrypoint string
	// Cmd replaces the image's command (the arguments of its entrypoint);
	// nil keeps it.
	Cmd []string
	// User runs the container as UID[:GID]; empty: the image's user.
	User string
	// Mounts are volumes and host directories to mount.
	Mounts []Mount
	// Labels are added to shoal-test=1 and shoal-test.test.
	Labels map[string]string
	// ReadOnly mounts the root file system read-only (as a Kubernetes pod
	// with readOnlyRootFilesystem).
	ReadOnly bool
	// Tmpfs are paths where an empty tmpfs is mounted (e.g. /tmp with
	// ReadOnly).
	Tmpfs []string
}

// Mount is a volume or a host directory in a container.
type Mount struct {
	// Source is a volume's name (Volume.Name) or an absolute host path.
	Source string
	// Target is the path in the container.
	Target   string
	ReadOnly bool
}

// Container is a running (or stopped) container of a test. Its methods
// run one docker command each, may be called from any goroutine, and
// return an error that quotes the command.
type Container struct {
	name    string
	id      string
	network *Network
	aliases []string // its names in network
}

// Run creates and starts a container for t (docker run -d) and removes it
// with t.Cleanup, also when the test fails (docker rm -f -v). It fails the
// test if the container cannot be created or started.
func Run(t TB, opts RunOptions) *Container {
	t.Helper()
	if opts.Image == "" {
		t.Fatalf("dockertest: RunOptions.Image is empty")
	}
	if opts.Name == "" {
		opts.Name = "c"
	}
	c := &Container{name: uniqueName(opts.Name), network: opts.Network}
	// Registered before docker run: a container created but not started
	// (a bad command, a missing binary) is removed too.
	t.Cleanup(func() {
		ctx, cancel := cleanupContext()
		defer cancel()
		if _, err := docker(ctx, "rm", "-f", "-v", c.name); err != nil && !isNotFound(err) {
			t.Errorf("dockertest: removing container %s: %v", c.name, err)
		}
	})

	envFile := filepath.Join(t.TempDir(), "env")
	var env strings.Builder
	for _, kv := range opts.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			t.Fatalf("dockertest: environment entry %q of %s is not KEY=VALUE", k, opts.Name)
		}
		if strings.ContainsAny(kv, "\n\r\x00") {
			t.Fatalf("dockertest: the value of %s in the environment of %s holds a newline or NUL, which --env-file cannot carry", k, opts.Name)
		}
		env.WriteString(kv + "\n")
	}
	if err := os.WriteFile(envFile, []byte(env.String()), 0o600); err != nil {
		t.Fatalf("dockertest: %v", err)
	}

	args := []string{"run", "-d", "--name", c.name, "--env-file", envFile}
	args = append(args, labelArgs(t, opts.Labels)...)
	if opts.Network != nil {
		args = append(args, "--network", opts.Network.name)
		if opts.Hostname != "" {
			c.aliases = append(c.aliases, opts.Hostname)
		}
		c.aliases = append(c.aliases, opts.Aliases...)
		for _, a := range c.aliases {
			args = append(args, "--network-alias", a)
		}
	}
	if opts.Hostname != "" {
		args = append(args, "--hostname", opts.Hostname)
	}
	if opts.Entrypoint != "" {
		args = append(args, "--entrypoint", opts.Entrypoint)
	}
	if opts.User != "" {
		args = append(args, "--user", opts.User)
	}
	for _, m := range opts.Mounts {
		v := m.Source + ":" + m.Target
		if m.ReadOnly {
			v += ":ro"
		}
		args = append(args, "--volume", v)
	}
	if opts.ReadOnly {
		args = append(args, "--read-only")
	}
	for _, p := range opts.Tmpfs {
		args = append(args, "--tmpfs", p)
	}
	args = append(args, opts.Image)
	args = append(args, opts.Cmd...)
	id, err := docker(context.Background(), args...)
	if err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	c.id = strings.TrimSpace(id)
	return c
}

// Name is the container's name, as docker knows it.
func (c *Container) Name() string { return c.name }

// ID is the container's full ID.
func (c *Container) ID() string { return c.id }

func (c *Container) String() string { return c.name }

// IP returns the container's address on its network (on its only network
// if it was run without one), asked of docker each time: it changes when
// the container is connected again or restarted.
func (c *Container) IP(ctx context.Context) (string, error) {
	out, err := docker(ctx, "inspect", "--format", "{{json .NetworkSettings.Networks}}", c.name)
	if err != nil {
		return "", err
	}
	var nets map[string]struct{ IPAddress string }
	if err := json.Unmarshal([]byte(out), &nets); err != nil {
		return "", fmt.Errorf("dockertest: the networks of %s: %v (%q)", c.name, err, out)
	}
	want := ""
	if c.network != nil {
		want = c.network.name
	} else if len(nets) == 1 {
		for n := range nets {
			want = n
		}
	}
	if n, ok := nets[want]; ok && n.IPAddress != "" {
		return n.IPAddress, nil
	}
	return "", fmt.Errorf("dockertest: container %s has no address on network %q (disconnected or stopped?)", c.name, want)
}

// Kill sends sig to the container's main process (docker kill -s):
// SIGKILL is a host that dies at once.
func (c *Container) Kill(ctx context.Context, sig syscall.Signal) error {
	_, err := docker(ctx, "kill", "--signal", strconv.Itoa(int(sig)), c.name)
	return err
}

// Pause freezes every process of the container (docker pause): a host
// that hangs. Its connections stay open and nothing answers on them.
func (c *Container) Pause(ctx context.Context) error {
	_, err := docker(ctx, "pause", c.name)
	return err
}

// Unpause thaws a paused container.
func (c *Container) Unpause(ctx context.Context) error {
	_, err := docker(ctx, "unpause", c.name)
	return err
}

// Disconnect takes the container off its network (docker network
// disconnect): a host cut off. Its processes run on.
func (c *Container) Disconnect(ctx context.Context) error {
	if c.network == nil {
		return fmt.Errorf("dockertest: container %s was run without a Network", c.name)
	}
	_, err := docker(ctx, "network", "disconnect", c.network.name, c.name)
	return err
}

// Connect puts a disconnected container back on its network, with its
// aliases; its IP may change.
func (c *Container) Connect(ctx context.Context) error {
	if c.network == nil {
		return fmt.Errorf("dockertest: container %s was run without a Network", c.name)
	}
	args := []string{"network", "connect"}
	for _, a := range c.aliases {
		args = append(args, "--alias", a)
	}
	_, err := docker(ctx, append(args, c.network.name, c.name)...)
	return err
}

// Stop sends SIGTERM, then SIGKILL after grace (docker stop).
func (c *Container) Stop(ctx context.Context, grace time.Duration) error {
	_, err := docker(ctx, "stop", "--time", strconv.Itoa(int(grace.Round(time.Second).Seconds())), c.name)
	return err
}

// Start starts a stopped container again, on its volumes, with its
// network (and a new address, perhaps).
func (c *Container) Start(ctx context.Context) error {
	_, err := docker(ctx, "start", c.name)
	return err
}

// Restart stops the container (SIGTERM, SIGKILL after grace) and starts it.
func (c *Container) Restart(ctx context.Context, grace time.Duration) error {
	_, err := docker(ctx, "restart", "--time", strconv.Itoa(int(grace.Round(time.Second).Seconds())), c.name)
	return err
}

// State is what docker says of a container's main process.
type State struct {
	Status   string // created, running, paused, restarting, removing, exited, dead
	Running  bool
	Paused   bool
	Pid      int // on the host; 0 unless running
	ExitCode int
	Error    string
}

// State inspects the container.
func (c *Container) State(ctx context.Context) (State, error) {
	out, err := docker(ctx, "inspect", "--format", "{{json .State}}", c.name)
	if err != nil {
		return State{}, err
	}
	var s State
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return State{}, fmt.Errorf("dockertest: the state of %s: %v (%q)", c.name, err, out)
	}
	return s, nil
}

// Wait waits for the container to exit (docker wait) and returns its exit
// status.
func (c *Container) Wait(ctx context.Context) (int, error) {
	out, err := docker(ctx, "wait", c.name)
	if err != nil {
		return 0, err
	}
	code, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		return 0, fmt.Errorf("dockertest: docker wait %s printed %q", c.name, out)
	}
	return code, nil
}

// MaxLogBytes bounds what Logs returns: the end of the output.
const MaxLogBytes = 1 << 20

// Logs returns the end (at most MaxLogBytes) of what the container wrote
// to stdout and stderr, interleaved as docker returns them.
func (c *Container) Logs(ctx context.Context) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, CommandTimeout)
		defer cancel()
	}
	out := &tail.Buffer{Max: MaxLogBytes}
	cmd := exec.CommandContext(ctx, "docker", "logs", c.name)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		s := out.String()
		if len(s) > maxStderr {
			s = s[len(s)-maxStderr:]
		}
		return "", &CommandError{Args: []string{"logs", c.name}, Err: err, Stderr: strings.TrimSpace(s)}
	}
	return out.String(), nil
}

// Process is a process inside a container, as `docker top` shows it.
type Process struct {
	PID  int    // on the host
	PPID int    // on the host
	UID  string // numeric
	Args string // the command line, runs of spaces made one
}

// Top lists the container's processes (docker top NAME -eo pid,ppid,uid,args):
// the way to look inside an image that has no shell.
func (c *Container) Top(ctx context.Context) ([]Process, error) {
	out, err := docker(ctx, "top", c.name, "-eo", "pid,ppid,uid,args")
	if err != nil {
		return nil, err
	}
	lines := strings.Split(out, "\n")
	if len(lines) == 0 || !strings.HasPrefix(strings.TrimSpace(lines[0]), "PID") {
		return nil, fmt.Errorf("dockertest: docker top %s printed no header: %q", c.name, out)
	}
	var procs []Process
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		pid, err1 := strconv.Atoi(f[0])
		ppid, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("dockertest: docker top %s: line %q", c.name, l)
		}
		procs = append(procs, Process{PID: pid, PPID: ppid, UID: f[2], Args: strings.Join(f[3:], " ")})
	}
	return procs, nil
}
