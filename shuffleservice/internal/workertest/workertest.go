// Package workertest holds what the tests of the node's worker launcher
// (package launcher, and the node service over gRPC) share: the fake
// worker binary (shuffleservice/launcher/testdata/fakeworker), which
// records itself in a directory, and the checks of its processes.
package workertest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/internal/poll"
	"shoal/internal/testbin"
)

// Pkg is the fake worker's package, from the module root. Its first
// argument chooses what it does (see its doc comment): run, spawn,
// run-ignore-term, crash, flood. It records itself in $SHOAL_TEST_OUT.
const Pkg = "./shuffleservice/launcher/testdata/fakeworker"

// Builds builds the fake worker once for the tests of a package: make
// one in TestMain, and Remove it after m.Run.
type Builds struct {
	mu   sync.Mutex
	dir  string
	path string
}

// Path returns the fake worker, statically linked for the host, building
// it on first use. It skips the test under -short or without a go
// command.
func (b *Builds) Path(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a binary")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build with")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.path != "" {
		return b.path
	}
	if b.dir == "" {
		d, err := os.MkdirTemp("", "fakeworker-")
		if err != nil {
			t.Fatal(err)
		}
		b.dir = d
	}
	p, err := testbin.BuildStatic(b.dir, Pkg, "")
	if err != nil {
		t.Fatal(err)
	}
	b.path = p
	return p
}

// Remove deletes the build.
func (b *Builds) Remove() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// Record is what a fake worker wrote about itself.
type Record struct {
	Pid int
	Cwd string
	Env []string
}

// Records reads the records in dir, by worker name ($SHOAL_WORKER_ID).
func Records(t testing.TB, dir string) map[string]Record {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Record{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue // being written
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var r Record
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "pid="):
				r.Pid, _ = strconv.Atoi(strings.TrimPrefix(line, "pid="))
			case strings.HasPrefix(line, "cwd="):
				r.Cwd = strings.TrimPrefix(line, "cwd=")
			case strings.HasPrefix(line, "env "):
				r.Env = append(r.Env, strings.TrimPrefix(line, "env "))
			}
		}
		f.Close()
		out[e.Name()] = r
	}
	return out
}

// WaitRecords waits up to 10 s until the workers named have recorded
// themselves in dir, and returns every record.
func WaitRecords(t testing.TB, dir string, names ...string) map[string]Record {
	t.Helper()
	var recs map[string]Record
	poll.WaitFor(t, 10*time.Second, fmt.Sprintf("workers %v to start", names), func() bool {
		recs = Records(t, dir)
		for _, n := range names {
			if _, ok := recs[n]; !ok {
				return false
			}
		}
		return true
	})
	return recs
}

// Alive reports whether process pid exists and is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...: comm may hold spaces; the state follows the
	// last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// WaitGone waits up to timeout until none of pids runs.
func WaitGone(t testing.TB, timeout time.Duration, what string, pids ...int) {
	t.Helper()
	poll.WaitFor(t, timeout, what, func() bool {
		for _, p := range pids {
			if Alive(p) {
				return false
			}
		}
		return true
	})
}
