package shuffleservice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"sync"
	"testing"

	"shoal/shuffleservice/internal/workertest"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shufflepb"
)

// Helpers of the tests of cluster mode's node side: admission, the node's
// name, its binary cache and the workers it starts.

// fakeWorkers is the fake worker's build (workertest.Pkg), shared by the
// package's tests.
var fakeWorkers = &workertest.Builds{}

func TestMain(m *testing.M) {
	code := m.Run()
	fakeWorkers.Remove()
	os.Exit(code)
}

// logBuffer is a log destination safe for concurrent writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// debugLogger logs everything into buf.
func debugLogger(buf *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// uploadFakeWorker puts the fake worker into c's node and returns its
// digest.
func uploadFakeWorker(t testing.TB, c *nodeclient.Client) string {
	t.Helper()
	b, err := os.ReadFile(fakeWorkers.Path(t))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	d := hex.EncodeToString(sum[:])
	if err := c.PutBinary(context.Background(), d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatalf("PutBinary: %v", err)
	}
	return d
}

// startFakeWorkers registers app with c's node and starts n fake workers
// in mode there; they record themselves in the returned directory.
func startFakeWorkers(t testing.TB, c *nodeclient.Client, app, mode string, n uint32) ([]*shufflepb.WorkerProcess, string) {
	t.Helper()
	ctx := context.Background()
	d := uploadFakeWorker(t, c)
	if err := c.RegisterApp(ctx, app, 0); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	ws, err := c.StartWorkers(ctx, &shufflepb.StartWorkersRequest{
		App: app, BinarySha256: d, Workers: n,
		Env: []string{"SHOAL_TEST_OUT=" + out}, Args: []string{mode},
	})
	if err != nil {
		t.Fatalf("StartWorkers: %v", err)
	}
	return ws, out
}

func pids(ws []*shufflepb.WorkerProcess) []int {
	out := make([]int, len(ws))
	for i, w := range ws {
		out[i] = int(w.GetPid())
	}
	return out
}
