package launcher

import (
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// outputWaitDelay bounds how long the wait for a worker that has exited
// waits for its output pipes to close (a process it left behind outside
// its group could hold them open).
const outputWaitDelay = time.Second

// proc is one worker process. Its waiter goroutine (wait) runs from the
// start until the process is reaped, so no worker is left a zombie
// whatever happens to its slot.
type proc struct {
	cmd   *exec.Cmd
	pid   int
	start time.Time
	tail  *ring // the end of its stderr
	out   *lineWriter
	errw  *lineWriter

	// mu orders signals with the exit: once exited is set the pid may
	// be reused and is never signalled.
	mu     sync.Mutex
	exited bool

	done chan struct{} // closed once reaped and its output read
}

// procSpec is what startProc needs.
type procSpec struct {
	path string
	args []string
	env  []string
	dir  string
	// line receives every line of the process's output (stream is
	// "stdout" or "stderr"), redacted, cut at maxLine.
	line func(stream string, line []byte)
	// redact returns a line with the secrets it must not show removed.
	redact func([]byte) []byte
}

// startProc starts a process in its own process group, to die with the
// node (parent-death signal, on Linux).
func startProc(spec procSpec) (*proc, error) {
	cmd := exec.Command(spec.path, spec.args...)
	cmd.Env = spec.env
	cmd.Dir = spec.dir
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = outputWaitDelay
	p := &proc{cmd: cmd, tail: &ring{}, done: make(chan struct{})}
	p.out = &lineWriter{emit: func(l []byte) { spec.line("stdout", spec.redact(l)) }}
	p.errw = &lineWriter{emit: func(l []byte) {
		l = spec.redact(l)
		spec.line("stderr", l)
		p.tail.write(append(l, '\n'))
	}}
	cmd.Stdout, cmd.Stderr = p.out, p.errw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.pid = cmd.Process.Pid
	p.start = time.Now()
	go p.wait()
	return p, nil
}

// wait waits for the process to exit, kills what it left in its group,
// reaps it, and closes done once its output is read.
func (p *proc) wait() {
	defer close(p.done)
	if waitExited(p.pid) {
		p.mu.Lock()
		// The process is a zombie: its pid, hence its group, is still
		// ours.
		killGroup(p, syscall.SIGKILL)
		p.exited = true
		p.mu.Unlock()
		_ = p.cmd.Wait() // its status is in ProcessState
	} else {
		_ = p.cmd.Wait()
		p.mu.Lock()
		p.exited = true
		p.mu.Unlock()
	}
	p.out.flush()
	p.errw.flush()
}

// signal sends sig to the process's group, unless it has exited.
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.exited {
		killGroup(p, sig)
	}
}

// exitStatus says how the process ended ("exit status 2", "signal:
// killed"). Valid after done.
func (p *proc) exitStatus() string {
	if p.cmd.ProcessState == nil {
		return "unknown"
	}
	return p.cmd.ProcessState.String()
}

// terminate stops the process: SIGTERM, then SIGKILL after grace, and
// waits for it.
func (p *proc) terminate(grace time.Duration) {
	p.signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return
	case <-t.C:
	}
	p.signal(syscall.SIGKILL)
	<-p.done
}
