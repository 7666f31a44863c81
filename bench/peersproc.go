package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// This file runs one side of a peer comparison as a process tree and
// measures it: wall clock, and the peak resident memory of the process
// and every descendant it starts (shoal's driver, its node services and
// workers), read from /proc.

// treeUsage is what runTree measured.
type treeUsage struct {
	Seconds float64
	// PeakRSSBytes is the sum over the processes of the tree of each
	// one's peak RSS (VmHWM, the last value read before it exited; the
	// root's from wait4's rusage if larger): an upper bound of the tree's
	// peak, which it reaches if every process peaks at once.
	PeakRSSBytes int64
	// ConcurrentRSSBytes is the largest sum of the tree's current RSS
	// (VmRSS) seen in one sample: a lower bound of the tree's peak.
	ConcurrentRSSBytes int64
	// Processes is the number of distinct processes seen in the tree.
	Processes int
	Stdout    []byte
}

// treeSampleInterval is how often runTree reads /proc; during the first
// treeStartup, every treeStartupInterval, so that the processes of a run
// of a fraction of a second (a quick row's node service and workers) are
// seen too.
const (
	treeSampleInterval  = 100 * time.Millisecond
	treeStartup         = time.Second
	treeStartupInterval = 10 * time.Millisecond
)

// runTree runs cmd in a process group of its own, samples its process
// tree every treeSampleInterval until it exits, and kills what is left of
// the group afterwards (and when ctx ends). cmd's Stdout is captured
// (limited to 1 MiB); its Stderr is what the caller set.
func runTree(ctx context.Context, cmd *exec.Cmd) (*treeUsage, error) {
	var stdout limitedBuffer
	stdout.limit = 1 << 20
	cmd.Stdout = &stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pgid := cmd.Process.Pid
	s := &treeSampler{root: pgid, hwm: map[int]int64{}}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(treeStartupInterval)
		defer t.Stop()
		fast := true
		for {
			s.sample()
			if fast && time.Since(start) > treeStartup {
				t.Reset(treeSampleInterval)
				fast = false
			}
			select {
			case <-stop:
				return
			case <-ctx.Done():
				syscall.Kill(-pgid, syscall.SIGKILL)
				return
			case <-t.C:
			}
		}
	}()
	err := cmd.Wait()
	secs := time.Since(start).Seconds()
	close(stop)
	<-done
	syscall.Kill(-pgid, syscall.SIGKILL) // leftovers of the group, if any
	u := &treeUsage{Seconds: secs, Stdout: stdout.Bytes()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.hwm[pgid] = max(s.hwm[pgid], ru.Maxrss<<10)
	}
	for _, v := range s.hwm {
		u.PeakRSSBytes += v
	}
	u.ConcurrentRSSBytes, u.Processes = s.concurrent, len(s.hwm)
	if ctx.Err() != nil {
		return u, ctx.Err()
	}
	return u, err
}

// treeSampler keeps the peaks of a process tree.
type treeSampler struct {
	root       int
	hwm        map[int]int64 // pid → its largest VmHWM seen
	concurrent int64
}

// sample finds the tree's processes (by their parents, from /proc/*/stat)
// and reads their VmHWM and VmRSS.
func (s *treeSampler) sample() {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, ok := parentOf(pid); ok {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var sum int64
	queue := []int{s.root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = append(queue[1:], children[pid]...)
		if hwm, err := statusBytes(pid, "VmHWM"); err == nil {
			s.hwm[pid] = max(s.hwm[pid], hwm)
		}
		if rss, err := statusBytes(pid, "VmRSS"); err == nil {
			sum += rss
		}
	}
	s.concurrent = max(s.concurrent, sum)
}

// parentOf reads the parent pid of pid from /proc/PID/stat (the field
// after the state, which follows the command name's closing parenthesis).
func parentOf(pid int) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(string(f[1]))
	return ppid, err == nil
}

// limitedBuffer keeps the first limit bytes written to it.
type limitedBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.limit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// commandError adds the end of a failed command's standard error to err.
func commandError(name string, err error, stderr []byte) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		tail := bytes.TrimSpace(stderr)
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return fmt.Errorf("%s: %w: %s", name, err, tail)
	}
	return fmt.Errorf("%s: %w", name, err)
}
