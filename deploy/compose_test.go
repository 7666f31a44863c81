package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"shoal/internal/cli"
	"shoal/internal/dockertest"
	"shoal/internal/pki"
	"shoal/internal/poll"
	"shoal/internal/testbin"
	"shoal/jobs"
)

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestDeploySecret runs make deploy-secret's script: a 0600 secret in a
// 0700 directory and a 0600 .env, owned by whom the containers run as,
// kept when run again; both git-ignored.
func TestDeploySecret(t *testing.T) {
	dir := t.TempDir()
	secret, env := filepath.Join(dir, "secret", "cluster-secret"), filepath.Join(dir, ".env")
	deploySecret(t, dir)
	first, err := os.ReadFile(secret)
	if err != nil {
		t.Fatal(err)
	}
	if !hex64.Match(first) {
		t.Fatalf("the secret is %d bytes, not 64 hex digits", len(first))
	}
	wantOwner := os.Getuid()
	if wantOwner == 0 {
		wantOwner = 65532 // the image's user: a container must not run as root
	}
	for path, mode := range map[string]os.FileMode{secret: 0o600, filepath.Dir(secret): 0o700 | os.ModeDir, env: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s has mode %v, want %v", path, fi.Mode(), mode)
		}
	}
	fi, _ := os.Stat(secret)
	if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != wantOwner {
		t.Errorf("the secret belongs to uid %d, want %d", uid, wantOwner)
	}
	vars := readEnv(t, env)
	if vars["SHOAL_UID"] != strconv.Itoa(wantOwner) || vars["COMPOSE_PROJECT_NAME"] != "shoal" ||
		vars["SHOAL_S3_ACCESS_KEY"] == "" || !hex64.MatchString(vars["SHOAL_S3_SECRET_KEY"]) {
		t.Errorf(".env: SHOAL_UID=%q COMPOSE_PROJECT_NAME=%q SHOAL_S3_ACCESS_KEY=%q, S3 secret key of %d characters",
			vars["SHOAL_UID"], vars["COMPOSE_PROJECT_NAME"], vars["SHOAL_S3_ACCESS_KEY"], len(vars["SHOAL_S3_SECRET_KEY"]))
	}
	// The certificates: the CA beside them, an identity per node valid
	// for its host name and the driver's, each readable by the
	// containers' user only.
	certs := map[string]string{}
	for _, who := range []string{"h1", "h2", "h3", "driver"} {
		d := filepath.Join(dir, "secret", "tls-"+who)
		id, err := pki.LoadDir(d)
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		if who != "driver" {
			if err := id.Leaf.VerifyHostname(who); err != nil {
				t.Errorf("%s's certificate: %v", who, err)
			}
		}
		certs[who] = id.Fingerprint()
		for path, mode := range map[string]os.FileMode{d: 0o700 | os.ModeDir, filepath.Join(d, pki.KeyFile): 0o600} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != mode {
				t.Errorf("%s has mode %v, want %v", path, fi.Mode(), mode)
			}
			if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != wantOwner {
				t.Errorf("%s belongs to uid %d, want %d", path, uid, wantOwner)
			}
		}
	}
	if _, err := pki.LoadCA(filepath.Join(dir, "secret", "ca")); err != nil {
		t.Fatal(err)
	}
	deploySecret(t, dir)
	for who, fp := range certs {
		if id, err := pki.LoadDir(filepath.Join(dir, "secret", "tls-"+who)); err != nil || id.Fingerprint() != fp {
			t.Errorf("a second make deploy-secret replaced %s's certificate (%v)", who, err)
		}
	}
	if again, _ := os.ReadFile(secret); !bytes.Equal(again, first) {
		t.Error("a second make deploy-secret replaced the secret")
	}
	if again := readEnv(t, env); again["SHOAL_S3_SECRET_KEY"] != vars["SHOAL_S3_SECRET_KEY"] {
		t.Error("a second make deploy-secret replaced .env")
	}
	// Never committed.
	for _, f := range []string{"deploy/secret/cluster-secret", "deploy/.env"} {
		cmd := exec.Command("git", "check-ignore", "-q", f)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("git check-ignore %s: %v %s (add it to .gitignore)", f, err, out)
		}
	}
}

// deploySecret runs scripts/deploy-secret.sh DIR, with the shoal binary
// built for the test.
func deploySecret(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command("../scripts/deploy-secret.sh", dir)
	cmd.Env = append(os.Environ(), "SHOAL="+testbin.Shoal(t))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deploy-secret.sh: %v\n%s", err, out)
	}
}

// readEnv reads a Compose .env file: KEY=VALUE lines, # comments.
func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			m[k] = v
		}
	}
	return m
}

// project is a copy of compose.yaml in a temporary directory with its
// own secret and .env, as make deploy-secret makes them.
type project struct {
	dir     string
	compose []string // the command: docker compose, or docker-compose
	name    string   // -p
	files   []string // -f
	env     map[string]string
}

// newProject copies compose.yaml into a temporary directory and runs the
// secret script there. It skips t when there is no Compose (or fails it
// under SHOAL_REQUIRE_DOCKER=1); Compose's config needs no daemon.
func newProject(t *testing.T) *project {
	t.Helper()
	compose, err := dockertest.ComposeCommand(context.Background())
	if err != nil {
		if os.Getenv(dockertest.RequireEnv) == "1" {
			t.Fatalf("Docker Compose is required (%s=1): %v", dockertest.RequireEnv, err)
		}
		t.Skipf("Docker Compose is not available (%v); set %s=1 to fail instead", err, dockertest.RequireEnv)
	}
	dir := t.TempDir()
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &project{dir: dir, compose: compose, name: "shoaltest" + hex.EncodeToString(b[:]), files: []string{filepath.Join(dir, "compose.yaml")}}
}

// run runs a Compose command in the project; stdin may be nil. Variables
// of the test's own environment that Compose would read instead of .env
// are left out.
func (p *project) run(ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	full := append([]string{}, p.compose[1:]...)
	full = append(full, "-p", p.name)
	for _, f := range p.files {
		full = append(full, "-f", f)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, p.compose[0], full...)
	cmd.Dir = p.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHOAL_") && !strings.HasPrefix(kv, "COMPOSE_") && !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var o, e bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &o, &e
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w\n%s", strings.Join(p.compose, " "), strings.Join(args, " "), err, e.String())
	}
	return o.String(), e.String(), err
}

// composeFile is what the tests read of `compose config`'s output, which
// both Compose implementations write (long or short volume syntax).
type composeFile struct {
	Services map[string]struct {
		Image       string            `json:"image"`
		Hostname    string            `json:"hostname"`
		User        string            `json:"user"`
		Command     []string          `json:"command"`
		Environment map[string]string `json:"environment"`
		Profiles    []string          `json:"profiles"`
		Secrets     []struct {
			Source string `json:"source"`
		} `json:"secrets"`
		Volumes []any `json:"volumes"`
	} `json:"services"`
	Secrets map[string]struct {
		File string `json:"file"`
	} `json:"secrets"`
	Volumes map[string]any `json:"volumes"`
}

// volumeMounts returns a service's volumes as source -> target.
func volumeMounts(t *testing.T, vols []any) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, v := range vols {
		switch v := v.(type) {
		case string: // SOURCE:TARGET[:MODE]
			parts := strings.Split(v, ":")
			if len(parts) < 2 {
				t.Fatalf("volume %q", v)
			}
			m[parts[0]] = parts[1]
		case map[string]any:
			m[fmt.Sprint(v["source"])] = fmt.Sprint(v["target"])
		default:
			t.Fatalf("volume %v of type %T", v, v)
		}
	}
	return m
}

// TestComposeConfig has Docker Compose validate compose.yaml and checks
// what it resolves to: MinIO, three nodes each on its own volume with its
// name and address, the driver behind a profile pointing at all three, the
// secret and the credentials of .env.
func TestComposeConfig(t *testing.T) {
	p := newProject(t)
	ctx := context.Background()
	// Without make deploy-secret, Compose refuses, saying what to run.
	if _, _, err := p.run(ctx, nil, "config"); err == nil || !strings.Contains(err.Error(), "make deploy-secret") {
		t.Fatalf("config without .env: %v, want an error saying to run make deploy-secret", err)
	}
	deploySecret(t, p.dir)
	env := readEnv(t, filepath.Join(p.dir, ".env"))
	out, _, err := p.run(ctx, nil, "config")
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal([]byte(out), &cf); err != nil {
		t.Fatalf("compose config's output: %v\n%s", err, out)
	}
	user := env["SHOAL_UID"] + ":65532"
	if s := cf.Secrets["cluster-secret"]; s.File != filepath.Join(p.dir, "secret", "cluster-secret") {
		t.Errorf("the secret cluster-secret is file %q, want make deploy-secret's", s.File)
	}
	if got := mapsKeys(cf.Services); fmt.Sprint(got) != "[driver h1 h2 h3 minio]" {
		t.Fatalf("services %v", got)
	}
	minio := cf.Services["minio"]
	if minio.Image != "shoal-minio:dev" || minio.Environment["MINIO_ROOT_USER"] != env["SHOAL_S3_ACCESS_KEY"] || minio.Environment["MINIO_ROOT_PASSWORD"] != env["SHOAL_S3_SECRET_KEY"] {
		t.Errorf("minio runs %s with credentials other than .env's", minio.Image)
	}
	seen := map[string]string{} // volume -> node
	var addrs []string
	for _, h := range []string{"h1", "h2", "h3"} {
		s := cf.Services[h]
		if s.Image != image || s.Hostname != h || s.User != user || len(s.Profiles) != 0 {
			t.Errorf("%s: image %s, hostname %s, user %s, profiles %v; want %s, %s, %s, none", h, s.Image, s.Hostname, s.User, s.Profiles, image, h, user)
		}
		if len(s.Command) == 0 || s.Command[0] != "node" || flagValue(s.Command, "--name") != h || flagValue(s.Command, "--advertise") != h+":7077" {
			t.Errorf("%s runs %q, want node --name %s --advertise %s:7077", h, s.Command, h, h)
		}
		for k, want := range map[string]string{
			"SHOAL_NODE_LISTEN": "0.0.0.0:7077", "SHOAL_NODE_DIR": "/var/lib/shoal", "SHOAL_NODE_WORKERS": "2",
			"SHOAL_NODE_CLUSTER_SECRET_FILE": "/run/secrets/cluster-secret",
			"SHOAL_NODE_TLS_DIR":             "/etc/shoal/tls",
		} {
			if s.Environment[k] != want {
				t.Errorf("%s: %s=%q, want %q", h, k, s.Environment[k], want)
			}
		}
		if len(s.Secrets) != 1 || s.Secrets[0].Source != "cluster-secret" {
			t.Errorf("%s has secrets %+v, want cluster-secret", h, s.Secrets)
		}
		vols := volumeMounts(t, s.Volumes)
		if src := filepath.Join(p.dir, "secret", "tls-"+h); vols[src] != "/etc/shoal/tls" {
			t.Errorf("%s mounts %v, want its certificate %s at /etc/shoal/tls", h, vols, src)
		}
		for src, dst := range vols {
			if dst != "/var/lib/shoal" {
				continue
			}
			if _, ok := cf.Volumes[src]; !ok {
				t.Errorf("%s's directory is %q, not a named volume", h, src)
			}
			if other, dup := seen[src]; dup {
				t.Errorf("%s and %s share volume %s", other, h, src)
			}
			seen[src] = h
		}
		addrs = append(addrs, h+":7077")
	}
	if len(seen) != 3 {
		t.Errorf("the nodes' directories are on volumes %v, want one each", seen)
	}
	d := cf.Services["driver"]
	master := "shoal://" + strings.Join(addrs, ",")
	if !slices.Equal(d.Profiles, []string{"driver"}) || d.Image != image || d.User != user {
		t.Errorf("driver: profiles %v, image %s, user %s", d.Profiles, d.Image, d.User)
	}
	if len(d.Command) < 2 || d.Command[0] != "run" || flagValue(d.Command, "--master") != master ||
		flagValue(d.Command, "--cluster-secret-file") != "/run/secrets/cluster-secret" || d.Environment["SHOAL_MASTER"] != master {
		t.Errorf("the driver runs %q with SHOAL_MASTER=%q; want a job against %s with the secret", d.Command, d.Environment["SHOAL_MASTER"], master)
	}
	for _, f := range []string{"--input", "--output"} {
		if v := flagValue(d.Command, f); !strings.HasPrefix(v, "s3://") {
			t.Errorf("the driver's %s is %q, want s3:// (the containers share no files)", f, v)
		}
	}
	if d.Environment["AWS_ENDPOINT_URL"] != "http://minio:9000" || d.Environment["AWS_ACCESS_KEY_ID"] != env["SHOAL_S3_ACCESS_KEY"] || d.Environment["AWS_SECRET_ACCESS_KEY"] != env["SHOAL_S3_SECRET_KEY"] {
		t.Error("the driver's S3 endpoint or credentials are not MinIO's")
	}
}

// up starts the project's services with every container, network and
// volume labelled for dockertest's sweeper, and takes it all down with
// t.Cleanup.
func (p *project) up(t *testing.T, services ...string) {
	t.Helper()
	override := "services:\n"
	for _, s := range []string{"minio", "h1", "h2", "h3", "driver"} {
		override += fmt.Sprintf("  %s:\n    labels:\n      %s: %q\n", s, dockertest.LabelKey, dockertest.LabelValue)
	}
	override += fmt.Sprintf("networks:\n  default:\n    labels:\n      %s: %q\nvolumes:\n", dockertest.LabelKey, dockertest.LabelValue)
	for _, v := range []string{"minio-data", "h1-data", "h2-data", "h3-data"} {
		override += fmt.Sprintf("  %s:\n    labels:\n      %s: %q\n", v, dockertest.LabelKey, dockertest.LabelValue)
	}
	f := filepath.Join(p.dir, "labels.yaml")
	if err := os.WriteFile(f, []byte(override), 0o644); err != nil {
		t.Fatal(err)
	}
	p.files = append(p.files, f)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if _, _, err := p.run(ctx, nil, "--profile", "driver", "down", "--volumes", "--remove-orphans", "--timeout", "1"); err != nil {
			t.Errorf("taking the project down: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, _, err := p.run(ctx, nil, append([]string{"up", "-d"}, services...)...); err != nil {
		t.Fatal(err)
	}
}

// container returns the ID of a service's container.
func (p *project) container(t *testing.T, service string) string {
	t.Helper()
	out, _, err := p.run(context.Background(), nil, "ps", "-q", service)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	if id == "" {
		t.Fatalf("no container of %s", service)
	}
	return id
}

// TestComposeS3 runs MinIO from compose.yaml and the driver's S3 commands
// against it, the way docs/cluster.md uploads the input and reads the
// ranks: a generated graph piped from one driver container into another,
// read back whole.
func TestComposeS3(t *testing.T) {
	dockertest.Require(t)
	p := newProject(t)
	dockertest.BuildImage(t, dockertest.Shoal)
	dockertest.BuildImage(t, dockertest.MinIO)
	deploySecret(t, p.dir)
	p.up(t, "minio")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	driver := func(stdin io.Reader, args ...string) (string, error) {
		out, _, err := p.run(ctx, stdin, append([]string{"run", "--rm", "--no-deps", "-T", "driver"}, args...)...)
		return out, err
	}
	// MinIO answers once it has formatted its volume.
	poll.WaitFor(t, 2*time.Minute, "the driver to make the bucket in MinIO", func() bool {
		_, err := driver(nil, "s3", "mb", "s3://shoal")
		return err == nil
	})
	graph, err := driver(nil, "gen", "graph", "--records", "2000", "--output", "-")
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := jobs.Generate("graph", &want, 2000, 1); err != nil {
		t.Fatal(err)
	}
	if graph != want.String() {
		t.Fatalf("gen in the container wrote %d bytes, not the %d of jobs.Generate", len(graph), want.Len())
	}
	if _, err := driver(strings.NewReader(graph), "s3", "cp", "-", "s3://shoal/graph.txt"); err != nil {
		t.Fatal(err)
	}
	ls, err := driver(nil, "s3", "ls", "s3://shoal")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%12d  s3://shoal/graph.txt\n", want.Len()); ls != want {
		t.Fatalf("s3 ls printed %q, want %q", ls, want)
	}
	back, err := driver(nil, "s3", "cat", "s3://shoal/graph.txt")
	if err != nil {
		t.Fatal(err)
	}
	if back != graph {
		t.Fatalf("s3 cat returned %d bytes, not the %d uploaded", len(back), len(graph))
	}
}

// nodeFlags returns the flags of `shoal node` (from its usage), to check
// the files against: every SHOAL_NODE_* variable and node flag they use
// must be one.
func nodeFlags(t *testing.T) map[string]bool {
	t.Helper()
	var stdout, stderr bytes.Buffer
	_ = cli.RunNode(context.Background(), []string{"-h"}, &stdout, &stderr)
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`).FindAllStringSubmatch(stderr.String(), -1) {
		flags[m[1]] = true
	}
	if !flags["listen"] || !flags["dir"] {
		t.Fatalf("no --listen or --dir in shoal node's usage:\n%s", stderr.String())
	}
	return flags
}

// requireClusterNode skips t until `shoal node` has the cluster-mode
// flags that compose.yaml and the DaemonSet give it (issue 11, the node's
// side).
func requireClusterNode(t *testing.T) map[string]bool {
	t.Helper()
	flags := nodeFlags(t)
	for _, f := range []string{"advertise", "name", "workers", "cluster-secret-file"} {
		if !flags[f] {
			t.Skipf("shoal node has no --%s yet: cluster mode's node side has not landed", f)
		}
	}
	return flags
}

// TestNodeFlagsExist checks that every node setting the deploy files give
// (SHOAL_NODE_* variables, the nodes' command lines in compose.yaml, the
// image's ENV) names a flag of `shoal node`.
func TestNodeFlagsExist(t *testing.T) {
	flags := requireClusterNode(t)
	check := func(where, env string) {
		name, ok := strings.CutPrefix(env, "SHOAL_NODE_")
		if !ok {
			return
		}
		flag := strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		if !flags[flag] || envName(flag) != env {
			t.Errorf("%s sets %s, but shoal node has no --%s", where, env, flag)
		}
	}
	for _, m := range loadManifests(t, k8sDir) {
		if ds, ok := m.obj.(*appsv1.DaemonSet); ok {
			for _, e := range ds.Spec.Template.Spec.Containers[0].Env {
				check(m.String(), e.Name)
			}
		}
	}
	var raw struct {
		Services map[string]struct {
			Command     []string          `json:"command"`
			Environment map[string]string `json:"environment"`
		} `json:"services"`
	}
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for name, s := range raw.Services {
		for k := range s.Environment {
			check("compose.yaml's "+name, k)
		}
		if len(s.Command) > 0 && s.Command[0] == "node" {
			for _, a := range s.Command[1:] {
				if f, ok := strings.CutPrefix(a, "--"); ok && !flags[strings.SplitN(f, "=", 2)[0]] {
					t.Errorf("compose.yaml's %s runs node with %s, which shoal node does not have", name, a)
				}
			}
		}
	}
	dockerfile, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`SHOAL_NODE_[A-Z_]+`).FindAllString(string(dockerfile), -1) {
		check("the Dockerfile", m)
	}
}

// TestComposeNodes runs the three nodes of compose.yaml and checks that
// each listens on port 7077 of its container as the user of .env, and
// that a node killed and started again on its volume listens again.
func TestComposeNodes(t *testing.T) {
	requireClusterNode(t)
	dockertest.Require(t)
	p := newProject(t)
	dockertest.BuildImage(t, dockertest.Shoal)
	deploySecret(t, p.dir)
	env := readEnv(t, filepath.Join(p.dir, ".env"))
	p.up(t, "h1", "h2", "h3")
	ctx := context.Background()
	// listening waits until the service's node has said it listens the
	// times-th time (once per start) and its port answers.
	listening := func(service string, times int) {
		t.Helper()
		id := p.container(t, service)
		poll.WaitFor(t, time.Minute, service+" to listen on its port", func() bool {
			out, err := exec.Command("docker", "logs", id).CombinedOutput()
			if err != nil || strings.Count(string(out), "shoal node listening on") < times {
				return false
			}
			ip, err := exec.Command("docker", "inspect", "--format", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", id).Output()
			if err != nil {
				return false
			}
			c, err := net.DialTimeout("tcp", net.JoinHostPort(strings.TrimSpace(string(ip)), "7077"), time.Second)
			if err != nil {
				return false
			}
			c.Close()
			return true
		})
		// docker top needs the pid column.
		top, err := exec.Command("docker", "top", id, "-eo", "pid,uid,args").Output()
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`(?m)^\s*\d+\s+` + env["SHOAL_UID"] + `\s+/shoal node`).Match(top) {
			t.Errorf("%s: no /shoal node process of uid %s:\n%s", service, env["SHOAL_UID"], top)
		}
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		listening(h, 1)
	}
	if _, _, err := p.run(ctx, nil, "kill", "-s", "SIGKILL", "h2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.run(ctx, nil, "start", "h2"); err != nil {
		t.Fatal(err)
	}
	listening("h2", 2)
}
