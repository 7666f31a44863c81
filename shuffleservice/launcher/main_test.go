package launcher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"shoal/shuffleservice/internal/workertest"
)

// builds is the fake worker's build, shared by the tests; TestMain
// removes it.
var builds = &workertest.Builds{}

func TestMain(m *testing.M) {
	code := m.Run()
	builds.Remove()
	os.Exit(code)
}

// fakeWorker returns the path of the fake worker (workertest.Pkg),
// statically linked for the host.
func fakeWorker(t testing.TB) string { return builds.Path(t) }

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
