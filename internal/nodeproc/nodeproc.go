package nodeproc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"shoal/internal/tail"
)

// Options configure Start.
type Options struct {
	// Binary is the path of the shoal binary. Required.
	Binary string
	// Dirs are the node's local directories (--dir). Required.
	Dirs []string
	// Listen is the address to listen on; default "127.0.0.1:0" (a port
	// picked by the OS).
	Listen string
	// Args are extra flags for `shoal node`, e.g. "--app-ttl=10s".
	Args []string
	// Env are extra environment variables (KEY=VALUE) for the node, e.g.
	// the cluster secret (SHOAL_CLUSTER_SECRET).
	Env []string
	// Stderr receives the node's log; default: discarded. The last lines
	// are kept anyway and quoted when the node fails to start.
	Stderr io.Writer
}

// Process is a running node service.
type Process struct {
	cmd         *exec.Cmd
	addr        string
	pid         int    // as printed by the node
	metricsAddr string // as printed by the node, with --metrics-addr

	done    chan struct{} // closed when the process has been waited for
	waitErr error         // valid after done
	stderr  *tail.Buffer
}

// roleEnv tells the child it is a node service: compute.EnvRole set to
// compute.RoleNode, spelled out because compute imports this package.
const roleEnv = "SHOAL_ROLE=node"

var (
	listeningLine = regexp.MustCompile(`^shoal node listening on (\S+) pid (\d+)$`)
	metricsLine   = regexp.MustCompile(`^shoal node metrics at https?://(\S+)/metrics$`)
)

// Start starts `BINARY node --listen LISTEN --dir DIRS ARGS...` and
// returns once the node listens. If ctx ends first, or the node exits
// before it listens, the child is killed and the error quotes its stderr.
// ctx bounds only the start, not the life of the process.
func Start(ctx context.Context, opts Options) (*Process, error) {
	if opts.Binary == "" {
		return nil, errors.New("nodeproc: Options.Binary is empty (build shoal with `go build -o DIR/shoal ./cmd/shoal`)")
	}
	if len(opts.Dirs) == 0 {
		return nil, errors.New("nodeproc: Options.Dirs is empty")
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	args := append([]string{"node", "--listen", opts.Listen, "--dir", strings.Join(opts.Dirs, ",")}, opts.Args...)
	cmd := exec.Command(opts.Binary, args...)
	cmd.Env = append(append(os.Environ(), opts.Env...), roleEnv) // a later SHOAL_ROLE overrides an inherited one
	cmd.SysProcAttr = sysProcAttr()
	p := &Process{cmd: cmd, done: make(chan struct{}), stderr: &tail.Buffer{Max: 8 << 10}}
	cmd.Stderr = p.stderr
	if opts.Stderr != nil {
		cmd.Stderr = io.MultiWriter(p.stderr, opts.Stderr)
	}
	// An os.Pipe rather than StdoutPipe: Wait may then run while stdout
	// is still being read.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("nodeproc: %w", err)
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("nodeproc: start %s: %w", opts.Binary, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()

	type listening struct {
		addr, metrics string
		pid           int
	}
	ready := make(chan listening, 1)
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		var metrics string
		for sc.Scan() {
			if m := metricsLine.FindStringSubmatch(sc.Text()); m != nil {
				metrics = m[1]
			}
			if m := listeningLine.FindStringSubmatch(sc.Text()); m != nil {
				pid, _ := strconv.Atoi(m[2])
				ready <- listening{addr: m[1], pid: pid, metrics: metrics}
				break
			}
		}
		// Drain until the child closes stdout, so it never blocks on it.
		io.Copy(io.Discard, r)
	}()

	cmdline := opts.Binary + " " + strings.Join(args, " ")
	select {
	case l := <-ready:
		p.addr, p.pid, p.metricsAddr = l.addr, l.pid, l.metrics
		return p, nil
	case <-p.done:
		select {
		case l := <-ready: // it listened, then exited at once
			p.addr, p.pid, p.metricsAddr = l.addr, l.pid, l.metrics
			return p, nil
		default:
		}
		return nil, fmt.Errorf("nodeproc: %s exited before listening (%v); its stderr ends with:\n%s", cmdline, p.waitErr, p.stderr.String())
	case <-ctx.Done():
		p.Kill()
		return nil, fmt.Errorf("nodeproc: %s did not listen in time: %w; its stderr ends with:\n%s", cmdline, ctx.Err(), p.stderr.String())
	}
}

// Addr is the node's address, host:port.
func (p *Process) Addr() string { return p.addr }

// MetricsAddr is where the node serves its Prometheus metrics
// (/metrics), host:port, if it was given --metrics-addr; else "".
func (p *Process) MetricsAddr() string { return p.metricsAddr }

// Pid is the node's process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited and been waited for.
func (p *Process) Done() <-chan struct{} { return p.done }

// Kill kills the node with SIGKILL, as a crash would, and waits for it.
func (p *Process) Kill() error {
	p.signal(syscall.SIGKILL)
	<-p.done
	return nil
}

// Stop asks the node to stop with SIGTERM and waits for it; if ctx ends
// first, it kills it with SIGKILL and reports that. A node that exits with
// an error is reported too.
func (p *Process) Stop(ctx context.Context) error {
	p.signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("nodeproc: node pid %d exited with %v after SIGTERM; its stderr ends with:\n%s", p.Pid(), p.waitErr, p.stderr.String())
		}
		return nil
	case <-ctx.Done():
		p.signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("nodeproc: node pid %d did not stop after SIGTERM (%w), killed it", p.Pid(), ctx.Err())
	}
}

func (p *Process) signal(sig os.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig) // fails only if it has exited already
}

// PeakRSS is the node's peak resident set size in bytes: its rusage once
// it has exited, its VmHWM while it runs. 0 if unknown.
func (p *Process) PeakRSS() int64 {
	select {
	case <-p.done:
		if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			return int64(ru.Maxrss) * 1024 // Linux: KiB
		}
		return 0
	default:
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// Stderr returns the last lines the node wrote to stderr.
func (p *Process) Stderr() string { return p.stderr.String() }
