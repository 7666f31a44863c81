package bench

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// This file reads what the benchmark measures of processes from Linux's
// /proc: open file descriptors, peak resident set size, the load average
// and the kernel's count of OOM kills.

// openFiles counts the open file descriptors of process pid: the entries
// of /proc/PID/fd, read with getdents into buf and counted without
// allocating per entry, so that counting 20,000 descriptors stays cheap.
func openFiles(pid int, buf []byte) (int, error) {
	fd, err := syscall.Open(fmt.Sprintf("/proc/%d/fd", pid), syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("bench: open files of pid %d: %w", pid, err)
	}
	defer syscall.Close(fd)
	n := 0
	for {
		got, err := syscall.ReadDirent(fd, buf)
		if err != nil {
			return 0, fmt.Errorf("bench: open files of pid %d: %w", pid, err)
		}
		if got <= 0 {
			return n, nil
		}
		// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
		for b := buf[:got]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			if reclen < 19 || reclen > len(b) {
				break
			}
			if name := b[19:reclen]; !bytes.HasPrefix(name, []byte(".\x00")) && !bytes.HasPrefix(name, []byte("..\x00")) {
				n++
			}
			b = b[reclen:]
		}
	}
}

// statusBytes reads a "kB" field of /proc/PID/status, such as VmHWM (the
// peak resident set size), in bytes.
func statusBytes(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: /proc/%d/status %s: %w", pid, field, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("bench: /proc/%d/status has no %s", pid, field)
}

// loadAverage is the 1-, 5- and 15-minute load average; zeros if unknown.
func loadAverage() [3]float64 {
	var la [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return la
	}
	for i, f := range strings.Fields(string(b)) {
		if i == len(la) {
			break
		}
		la[i], _ = strconv.ParseFloat(f, 64)
	}
	return la
}

// oomKills is the number of processes the kernel's OOM killer has killed
// since boot (/proc/vmstat oom_kill, Linux 4.13 on); -1 if unknown.
func oomKills() int64 {
	b, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "oom_kill "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// fdSampler keeps the peak number of open file descriptors of some
// processes. A goroutine samples them every interval, or every four times
// the last sampling's duration if that is longer, so that counting tens
// of thousands of descriptors costs at most a fifth of a core; Sample
// adds a sample at a moment the caller knows to matter.
type fdSampler struct {
	pids     []int
	interval time.Duration

	mu      sync.Mutex
	buf     []byte
	peaks   []int
	samples int

	stop chan struct{}
	done chan struct{}
}

func startFDSampler(interval time.Duration, pids ...int) *fdSampler {
	s := &fdSampler{
		pids: pids, interval: interval, buf: make([]byte, 64<<10), peaks: make([]int, len(pids)),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go s.run()
	return s
}

func (s *fdSampler) run() {
	defer close(s.done)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		start := time.Now()
		s.Sample()
		t.Reset(max(s.interval, 4*time.Since(start)))
	}
}

// Sample counts every process's open files now.
func (s *fdSampler) Sample() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, pid := range s.pids {
		n, err := openFiles(pid, s.buf)
		if err != nil {
			continue // the process has exited; its peak stands
		}
		s.peaks[i] = max(s.peaks[i], n)
	}
	s.samples++
}

// Stop ends the sampling, takes a last sample and returns the peak of
// each process (in the order given to startFDSampler; 0 for one that
// could never be counted) and the number of samples taken.
func (s *fdSampler) Stop() (peaks []int, samples int) {
	close(s.stop)
	<-s.done
	s.Sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peaks, s.samples
}

// errnoName names the errno that err wraps, for a failure's reason;
// "" if it wraps none the benchmark knows.
func errnoName(err error) string {
	for _, e := range []struct {
		errno syscall.Errno
		name  string
	}{
		{syscall.EMFILE, "too many open files (EMFILE)"},
		{syscall.ENFILE, "too many open files in the system (ENFILE)"},
		{syscall.ENOSPC, "no space left on device (ENOSPC)"},
		{syscall.EDQUOT, "disk quota exceeded (EDQUOT)"},
		{syscall.ENOMEM, "out of memory (ENOMEM)"},
	} {
		if errors.Is(err, e.errno) {
			return e.name
		}
	}
	return ""
}
