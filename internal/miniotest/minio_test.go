package miniotest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
)

func TestStartStopRestart(t *testing.T) {
	ctx := context.Background()
	s := Start(t, "bkt")
	c, err := s.Client()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutObject(ctx, "bkt", "k", bytes.NewReader([]byte("v")), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	pid := s.Pid()
	s.Stop()
	if s.Pid() != 0 {
		t.Fatal("Pid after Stop is not 0")
	}
	if resp, err := http.Get(s.Endpoint() + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Fatalf("server pid %d still answers after Stop: %s", pid, resp.Status)
	}
	s.Stop() // stopping a stopped server does nothing

	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(ctx, "bkt", "k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil || string(b) != "v" {
		t.Fatalf("object after restart = %q, %v; want the one written before the kill", b, err)
	}
}

func TestMissingBinary(t *testing.T) {
	_, err := Launch(context.Background(), Config{Binary: "/nonexistent/minio", Dir: t.TempDir()})
	if !errors.Is(err, ErrNoBinary) || !strings.Contains(err.Error(), "make test") {
		t.Fatalf("Launch without the binary: %v; want ErrNoBinary saying make test installs it", err)
	}
}

func TestExitEarly(t *testing.T) {
	// A server that cannot listen exits at once: Launch says so, with its
	// output, instead of waiting ReadyTimeout.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Launch(context.Background(), Config{Dir: t.TempDir(), Addr: l.Addr().String()})
	if err == nil || !strings.Contains(err.Error(), "exited before it was ready") {
		t.Fatalf("Launch on a port it cannot bind: %v", err)
	}
	t.Log(err)
}
