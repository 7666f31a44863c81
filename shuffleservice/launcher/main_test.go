package launcher

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"shoal/internal/testbin"
)

// fakeWorkerPkg is the worker binary of these tests (testdata/fakeworker:
// its first argument chooses what it does).
const fakeWorkerPkg = "./shuffleservice/launcher/testdata/fakeworker"

// built holds the binaries TestMain's tests build once, in dir.
type built struct {
	mu    sync.Mutex
	dir   string
	paths map[string]string // by GOARCH, "" for the host's
}

// builds is the tests' shared build cache; TestMain removes its
// directory.
var builds = &built{paths: map[string]string{}}

func TestMain(m *testing.M) {
	code := m.Run()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	os.Exit(code)
}

// fakeWorker returns the path of the fake worker built for goarch ("":
// the host's), statically linked. (Another architecture costs a build of
// the standard library for it: the tests use the host's only.)
func fakeWorker(t testing.TB, goarch string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a binary")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build with")
	}
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if p := builds.paths[goarch]; p != "" {
		return p
	}
	if builds.dir == "" {
		d, err := os.MkdirTemp("", "launcher-test-")
		if err != nil {
			t.Fatal(err)
		}
		builds.dir = d
	}
	p, err := testbin.BuildStatic(builds.dir, fakeWorkerPkg, goarch)
	if err != nil {
		t.Fatal(err)
	}
	builds.paths[goarch] = p
	return p
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newLauncher opens a launcher named n1 in a fresh directory, logging at
// debug level into the returned buffer; t.Cleanup closes it.
func newLauncher(t testing.TB, edit ...func(*Options)) (*Launcher, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	opts := Options{
		Dir:      t.TempDir(),
		NodeName: "n1",
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, e := range edit {
		e(&opts)
	}
	l, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, logs
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// putFile uploads the file at path, with suffix appended (another binary
// that runs alike), and returns its digest.
func putFile(t testing.TB, l *Launcher, path string, suffix string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, suffix...)
	d := digestOf(b)
	if err := l.PutBinary(context.Background(), d, uint64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatalf("PutBinary of %s: %v", filepath.Base(path), err)
	}
	return d
}

// record is what the fake worker wrote about itself.
type record struct {
	pid int
	cwd string
	env []string
}

// readRecords reads the records in dir, by worker name.
func readRecords(t testing.TB, dir string) map[string]record {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]record{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var r record
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "pid="):
				r.pid, _ = strconv.Atoi(strings.TrimPrefix(line, "pid="))
			case strings.HasPrefix(line, "cwd="):
				r.cwd = strings.TrimPrefix(line, "cwd=")
			case strings.HasPrefix(line, "env "):
				r.env = append(r.env, strings.TrimPrefix(line, "env "))
			}
		}
		f.Close()
		out[e.Name()] = r
	}
	return out
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
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
