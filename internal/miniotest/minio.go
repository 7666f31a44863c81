package miniotest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"shoal/internal/tail"
	"shoal/internal/testbin"
)

// Binary is where `make test` installs the server, relative to the module
// root; SHOAL_MINIO overrides it.
const Binary = "bin/minio/minio"

// The root credentials of every server started here.
const (
	AccessKey = "shoal-test"
	SecretKey = "shoal-test-secret"
)

// ReadyTimeout bounds the wait for a server to answer after it started.
const ReadyTimeout = 30 * time.Second

// Config configures Launch.
type Config struct {
	// Binary is the minio executable. Default: $SHOAL_MINIO, else Binary
	// under the module root (FindBinary).
	Binary string
	// Dir is the server's working directory: its objects go in Dir/data,
	// its (empty) certificates directory is Dir/certs. Required.
	Dir string
	// Addr is host:port to listen on. Default: a free port of 127.0.0.1.
	Addr string
	// Output receives the server's stdout and stderr; default discarded.
	// The last lines are kept anyway and quoted when it fails to start.
	Output io.Writer
}

// Server is a MinIO server process.
type Server struct {
	cfg Config

	mu   sync.Mutex
	proc *process // nil when stopped
}

type process struct {
	cmd     *exec.Cmd
	done    chan struct{} // closed once waited for
	waitErr error         // valid after done
	out     *tail.Buffer
}

// FindBinary returns the minio binary's path: $SHOAL_MINIO, else Binary
// under the module root found from the working directory (as go test runs
// a package's tests in its directory), else Binary as is.
func FindBinary() string {
	if b := os.Getenv("SHOAL_MINIO"); b != "" {
		return b
	}
	if root, ok := testbin.ModuleRoot(); ok {
		return filepath.Join(root, Binary)
	}
	return Binary
}

// ErrNoBinary is returned by Launch when the minio binary is missing.
var ErrNoBinary = errors.New("miniotest: minio binary not found")

// Launch starts a server and waits until it is ready (at most
// ReadyTimeout, or ctx).
func Launch(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Binary == "" {
		cfg.Binary = FindBinary()
	}
	if cfg.Dir == "" {
		return nil, errors.New("miniotest: Config.Dir is empty")
	}
	if _, err := os.Stat(cfg.Binary); err != nil {
		return nil, fmt.Errorf("%w at %s: `make test` installs it (`make bin/minio/minio` alone; SHOAL_MINIO overrides the path): %v", ErrNoBinary, cfg.Binary, err)
	}
	pickPort := cfg.Addr == ""
	for attempt := 0; ; attempt++ {
		s := &Server{cfg: cfg}
		if pickPort {
			port, err := freePort()
			if err != nil {
				return nil, err
			}
			s.cfg.Addr = fmt.Sprintf("127.0.0.1:%d", port)
		}
		err := s.start(ctx)
		if err == nil {
			return s, nil
		}
		// The free port may have been taken between our probe and the
		// server's bind: try another.
		if pickPort && attempt < 3 && strings.Contains(err.Error(), "already in use") {
			continue
		}
		return nil, err
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("miniotest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start(ctx context.Context) error {
	args := []string{"server", "--quiet", "--address", s.cfg.Addr, "--console-address", "127.0.0.1:0",
		"--certs-dir", filepath.Join(s.cfg.Dir, "certs"), filepath.Join(s.cfg.Dir, "data")}
	cmd := exec.Command(s.cfg.Binary, args...)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey,
		"MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.SysProcAttr = sysProcAttr()
	p := &process{cmd: cmd, done: make(chan struct{}), out: &tail.Buffer{Max: 8 << 10}}
	var w io.Writer = p.out
	if s.cfg.Output != nil {
		w = io.MultiWriter(p.out, s.cfg.Output)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("miniotest: start %s: %w", s.cfg.Binary, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()

	cmdline := s.cfg.Binary + " " + strings.Join(args, " ")
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	// Live first (the process serves HTTP), then cluster (its object layer
	// is initialized and has write quorum): live answers 200 a moment
	// before requests stop failing with "Server not initialized".
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond) // polling for readiness, with a deadline
	defer tick.Stop()
	for _, path := range []string{"/minio/health/live", "/minio/health/cluster"} {
		url := s.Endpoint() + path
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = fmt.Errorf("%s answered %s", url, resp.Status)
			}
			select {
			case <-p.done:
				return fmt.Errorf("miniotest: %s exited before it was ready (%v); its output ends with:\n%s", cmdline, p.waitErr, p.out.String())
			case <-ctx.Done():
				s.Stop()
				return fmt.Errorf("miniotest: %s was not ready within %v (%v, last: %v); its output ends with:\n%s", cmdline, ReadyTimeout, ctx.Err(), err, p.out.String())
			case <-tick.C:
			}
		}
	}
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.cfg.Addr }

// Endpoint is the server's URL, http://127.0.0.1:PORT.
func (s *Server) Endpoint() string { return "http://" + s.cfg.Addr }

// Dir is the server's working directory.
func (s *Server) Dir() string { return s.cfg.Dir }

// Pid is the server's process ID, 0 when stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// Stop kills the server with SIGKILL, as a crash would, and waits for it
// to exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGKILL) // fails only if it has exited already
		<-p.done
	}
}

// Close stops the server; for t.Cleanup and defer.
func (s *Server) Close() { s.Stop() }

// Restart stops the server if it runs and starts it again on the same
// address and directory, waiting until it is ready.
func (s *Server) Restart(ctx context.Context) error {
	s.Stop()
	return s.start(ctx)
}

// Output returns the last lines the server printed.
func (s *Server) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return ""
	}
	return s.proc.out.String()
}

// Client returns a minio-go client of the server with the root
// credentials, retrying a request at most twice.
func (s *Server) Client() (*minio.Client, error) {
	return minio.New(s.cfg.Addr, &minio.Options{
		Creds:      credentials.NewStaticV4(AccessKey, SecretKey, ""),
		Region:     "us-east-1",
		MaxRetries: 2,
	})
}

// MakeBucket creates a bucket.
func (s *Server) MakeBucket(ctx context.Context, bucket string) error {
	c, err := s.Client()
	if err != nil {
		return err
	}
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
		return fmt.Errorf("miniotest: make bucket %q at %s: %w", bucket, s.Endpoint(), err)
	}
	return nil
}
