package toxiproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"shoal/internal/poll"
	"shoal/internal/testbin"
)

// Binary is where `make test` installs the server, relative to the module
// root; SHOAL_TOXIPROXY overrides it.
const Binary = "bin/toxiproxy/server"

// Server is a toxiproxy server process, stopped by t.Cleanup.
type Server struct {
	api string
}

// Start runs a toxiproxy server on a free port. Without the binary it
// skips the test, except under CI (CI=true), where it fails: there `make
// test` installs it, so a missing binary is a broken setup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := os.Getenv("SHOAL_TOXIPROXY")
	if bin == "" {
		bin = findBinary()
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("toxiproxy server not found at %q (make test installs it)", bin)
		}
		t.Skipf("toxiproxy server not found at %q: run make test, which installs it", bin)
	}
	port := freePort(t)
	cmd := exec.Command(bin, "-host", "127.0.0.1", "-port", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatalf("toxiproxy: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s := &Server{api: fmt.Sprintf("http://127.0.0.1:%d", port)}
	poll.WaitFor(t, 10*time.Second, "toxiproxy to answer on "+s.api+"/version", func() bool {
		resp, err := http.Get(s.api + "/version")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return s
}

func findBinary() string {
	if root, ok := testbin.ModuleRoot(); ok {
		return filepath.Join(root, Binary)
	}
	return Binary
}

// freePort asks the kernel for a free port. The server binds it a moment
// later; toxiproxy takes no port 0 for its API.
func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Proxy forwards a listening address to an upstream.
type Proxy struct {
	s    *Server
	name string
	addr string
}

// Proxy creates a proxy to upstream on a free port of 127.0.0.1.
func (s *Server) Proxy(t testing.TB, name, upstream string) *Proxy {
	t.Helper()
	var out struct {
		Listen string `json:"listen"`
	}
	s.call(t, "POST", "/proxies", map[string]any{"name": name, "listen": "127.0.0.1:0", "upstream": upstream, "enabled": true}, &out)
	return &Proxy{s: s, name: name, addr: out.Listen}
}

// Addr is the address clients dial instead of the upstream.
func (p *Proxy) Addr() string { return p.addr }

// AddToxic adds a toxic, e.g. ("lat", "latency", "downstream",
// {"latency": 100}), ("cut", "timeout", "downstream", {"timeout": 0})
// (data stops, the connection stays open), ("rst", "reset_peer",
// "downstream", {"timeout": 0}).
func (p *Proxy) AddToxic(t testing.TB, name, typ, stream string, attrs map[string]any) {
	t.Helper()
	p.s.call(t, "POST", "/proxies/"+p.name+"/toxics", map[string]any{"name": name, "type": typ, "stream": stream, "attributes": attrs}, nil)
}

// RemoveToxic removes a toxic.
func (p *Proxy) RemoveToxic(t testing.TB, name string) {
	t.Helper()
	p.s.call(t, "DELETE", "/proxies/"+p.name+"/toxics/"+name, nil, nil)
}

// SetEnabled opens or closes the proxy: disabled, it refuses connections
// and drops those it has (the upstream is unreachable).
func (p *Proxy) SetEnabled(t testing.TB, enabled bool) {
	t.Helper()
	p.s.call(t, "POST", "/proxies/"+p.name, map[string]any{"enabled": enabled}, nil)
}

func (s *Server) call(t testing.TB, method, path string, body, out any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, s.api+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("toxiproxy %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("toxiproxy %s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("toxiproxy %s %s: %v", method, path, err)
		}
	}
}
