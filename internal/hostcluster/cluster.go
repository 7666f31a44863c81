package hostcluster

import (
	"context"
	"crypto/rand"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"shoal/client"
	"shoal/internal/dockertest"
	"shoal/internal/pki"
	"shoal/objstore"
	"shoal/shuffleservice/nodeclient"
)

// MinIO's credentials in the cluster: a private network's, not secrets.
const (
	MinIOUser     = "shoaltest"
	MinIOPassword = "shoaltest-secret"
)

// NodePort is the port every node listens on in its container.
const NodePort = "7077"

// ServerName is the name every node's certificate carries, which drivers
// and workers verify instead of the address they dial: the containers'
// addresses change when they are started again, as pods' do.
const ServerName = "shoal-node"

// Options configure Start.
type Options struct {
	// Nodes is the number of node containers, h1 to hN; default 3.
	Nodes int
	// WorkersPerNode is each node's --workers; default 2.
	WorkersPerNode int
	// AppTTL is each node's application TTL (SHOAL_NODE_APP_TTL): how long
	// a driver that went silent keeps its workers; default 10 s.
	AppTTL time.Duration
	// Bucket is made in MinIO for the jobs' inputs and outputs; default
	// "shoal".
	Bucket string
	// LogLevel is the nodes' log level; default "debug" (the containers'
	// logs are what a failure shows).
	LogLevel string
	// ReadyTimeout bounds the wait for MinIO and for each node; default 1
	// minute.
	ReadyTimeout time.Duration
}

func (o *Options) ensureDefaults() {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.WorkersPerNode == 0 {
		o.WorkersPerNode = 2
	}
	if o.AppTTL == 0 {
		o.AppTTL = 10 * time.Second
	}
	if o.Bucket == "" {
		o.Bucket = "shoal"
	}
	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}
	if o.ReadyTimeout == 0 {
		o.ReadyTimeout = time.Minute
	}
}

// Cluster is the containers of one cluster and how to reach them. Its
// fields are set by Start and not changed afterwards.
type Cluster struct {
	Net   *dockertest.Network
	Hosts []*Host // h1, h2, ...
	MinIO *dockertest.Container
	// Endpoint is MinIO's, http://IP:9000, as the driver reaches it.
	Endpoint string
	// Secret is the cluster secret every node requires; random.
	Secret string
	// DriverTLS is the driver's certificate of the cluster's CA (made at
	// Start, as make deploy-secret does), in DriverTLSDir: a driver's
	// client.Options.TLSDir. Every node's certificate names its host and
	// ServerName, which clients verify (client.Options.TLSServerName).
	DriverTLS    *pki.Identity
	DriverTLSDir string
	// S3 is a client of MinIO with the cluster's credentials.
	S3     *minio.Client
	Bucket string
	opts   Options
}

// Host is a node's container.
type Host struct {
	*dockertest.Container
	// Name is the node's name (SHOAL_NODE_NAME) and the container's
	// host name: h1, h2, ...
	Name    string
	cluster *Cluster
}

// Start builds the images and starts the cluster for t (a test, or a
// dockertest.Harness inside its Do); t's cleanups remove it. It fails t
// if any part does not start or become ready.
func Start(t dockertest.TB, opts Options) *Cluster {
	t.Helper()
	opts.ensureDefaults()
	var b [24]byte
	_, _ = rand.Read(b[:]) // it never fails (crypto/rand, Go 1.24)
	c := &Cluster{Secret: "cluster-" + hex.EncodeToString(b[:]), Bucket: opts.Bucket, opts: opts}
	img := dockertest.BuildImage(t, dockertest.Shoal)
	minioImg := dockertest.BuildImage(t, dockertest.MinIO)
	c.Net = dockertest.NewNetwork(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*opts.ReadyTimeout)
	defer cancel()

	c.MinIO = dockertest.Run(t, dockertest.RunOptions{
		Name: "minio", Image: minioImg, Network: c.Net, Hostname: "minio",
		Env: []string{"MINIO_ROOT_USER=" + MinIOUser, "MINIO_ROOT_PASSWORD=" + MinIOPassword},
	})
	ip, err := c.MinIO.IP(ctx)
	if err != nil {
		t.Fatalf("hostcluster: %v", err)
	}
	c.Endpoint = "http://" + ip + ":9000"
	if err := waitFor(ctx, opts.ReadyTimeout, func() error {
		resp, err := http.Get(c.Endpoint + "/minio/health/cluster")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: %s", resp.Status)
		}
		return nil
	}); err != nil {
		t.Fatalf("hostcluster: MinIO at %s not ready: %v", c.Endpoint, err)
	}
	c.S3, err = minio.New(ip+":9000", &minio.Options{Creds: credentials.NewStaticV4(MinIOUser, MinIOPassword, "")})
	if err != nil {
		t.Fatalf("hostcluster: %v", err)
	}
	if err := c.S3.MakeBucket(ctx, c.Bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("hostcluster: make bucket %s: %v", c.Bucket, err)
	}

	names := make([]string, opts.Nodes)
	for i := range names {
		names[i] = fmt.Sprintf("h%d", i+1)
	}
	certs, err := MakeCerts(t.TempDir(), names...)
	if err != nil {
		t.Fatalf("hostcluster: certificates: %v", err)
	}
	c.DriverTLS, c.DriverTLSDir = certs.Driver, certs.DriverDir
	for i := range opts.Nodes {
		name := fmt.Sprintf("h%d", i+1)
		vol := dockertest.NewVolume(t)
		c.Hosts = append(c.Hosts, &Host{Name: name, cluster: c, Container: dockertest.Run(t, dockertest.RunOptions{
			Name: name, Image: img, Network: c.Net, Hostname: name, User: certs.User,
			Env: []string{
				"SHOAL_NODE_NAME=" + name,
				"SHOAL_CLUSTER_SECRET=" + c.Secret,
				"SHOAL_NODE_TLS_DIR=/etc/shoal/tls",
				fmt.Sprintf("SHOAL_NODE_WORKERS=%d", opts.WorkersPerNode),
				"SHOAL_NODE_APP_TTL=" + opts.AppTTL.String(),
				"SHOAL_NODE_LOG_LEVEL=" + opts.LogLevel,
			},
			Mounts: []dockertest.Mount{{Source: vol.Name(), Target: "/var/lib/shoal"}, {Source: certs.NodeDirs[i], Target: "/etc/shoal/tls", ReadOnly: true}},
		})})
	}
	for _, h := range c.Hosts {
		if err := h.AwaitNode(ctx); err != nil {
			t.Fatalf("hostcluster: %v", err)
		}
	}
	return c
}

// Certs are certificates of a new CA for node containers: one directory
// per node (its host name and ServerName), readable by User, the user
// the containers run as (the files' owner, as make deploy-secret does:
// root's files are given to the image's user 65532), and the driver's.
type Certs struct {
	NodeDirs  []string
	User      string
	Driver    *pki.Identity
	DriverDir string
}

// MakeCerts makes a CA and Certs for the nodes named, under root.
func MakeCerts(root string, names ...string) (*Certs, error) {
	now := time.Now()
	ca, err := pki.NewCA("hostcluster-ca", 24*time.Hour, now)
	if err != nil {
		return nil, err
	}
	c := &Certs{DriverDir: filepath.Join(root, "driver")}
	if c.Driver, err = ca.Issue(pki.Request{Name: "driver", Role: pki.RoleClient, ValidFor: 12 * time.Hour}, now); err != nil {
		return nil, err
	}
	if err := c.Driver.WriteDir(c.DriverDir); err != nil {
		return nil, err
	}
	owner := os.Getuid()
	if owner == 0 {
		owner = 65532
	}
	c.User = fmt.Sprintf("%d:65532", owner)
	for _, name := range names {
		id, err := ca.Issue(pki.Request{Name: name, Role: pki.RoleNode, Hosts: []string{name, ServerName}, ValidFor: 12 * time.Hour}, now)
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(root, name)
		if err := id.WriteDir(dir); err != nil {
			return nil, err
		}
		if owner != os.Getuid() {
			for _, f := range []string{"", pki.CAFile, pki.CertFile, pki.KeyFile} {
				if err := os.Chown(filepath.Join(dir, f), owner, owner); err != nil {
					return nil, err
				}
			}
		}
		c.NodeDirs = append(c.NodeDirs, dir)
	}
	return c, nil
}

// Credentials are what a client of the nodes presents: the cluster
// secret and the driver's certificate, verifying the nodes by
// ServerName.
func (c *Cluster) Credentials() nodeclient.Credentials {
	return nodeclient.Credentials{Secret: c.Secret, TLS: c.DriverTLS, ServerName: ServerName}
}

// DriverOptions completes a driver's options with the cluster's master,
// credentials and S3.
func (c *Cluster) DriverOptions(ctx context.Context, o client.Options) (client.Options, error) {
	master, err := c.Master(ctx)
	if err != nil {
		return o, err
	}
	o.Master, o.ClusterSecret, o.TLSDir, o.TLSServerName, o.S3 = master, c.Secret, c.DriverTLSDir, ServerName, c.S3Options()
	return o, nil
}

// RequireStatic fails t if this test binary, which a driver ships to
// the nodes as their workers, is dynamically linked: the nodes' image has
// no loader.
func RequireStatic(t dockertest.TB) {
	t.Helper()
	f, err := elf.Open(os.Args[0])
	if err != nil {
		t.Fatalf("hostcluster: %v", err)
		return
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("this test binary is dynamically linked, and the nodes' image has no loader: run it with CGO_ENABLED=0 (make test does)")
		}
	}
}

// WorkersPerNode is each node's number of workers.
func (c *Cluster) WorkersPerNode() int { return c.opts.WorkersPerNode }

// Master is the driver's --master: shoal:// and every node's current
// address.
func (c *Cluster) Master(ctx context.Context) (string, error) {
	addrs := make([]string, len(c.Hosts))
	for i, h := range c.Hosts {
		a, err := h.Addr(ctx)
		if err != nil {
			return "", err
		}
		addrs[i] = a
	}
	return "shoal://" + strings.Join(addrs, ","), nil
}

// S3Options are the driver's options of the cluster's MinIO.
func (c *Cluster) S3Options() objstore.Options {
	return objstore.Options{Endpoint: c.Endpoint, AccessKey: MinIOUser, SecretKey: MinIOPassword}
}

// Addr is the host's node address, IP:7077, as the driver dials it; it
// changes when the container is started again or reconnected.
func (h *Host) Addr(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ip, err := h.IP(ctx)
	if err != nil {
		return "", err
	}
	return ip + ":" + NodePort, nil
}

// AwaitNode waits until the host's node answers with the cluster secret,
// at most the cluster's ReadyTimeout; its error quotes the node's log.
func (h *Host) AwaitNode(ctx context.Context) error {
	var addr string
	err := waitFor(ctx, h.cluster.opts.ReadyTimeout, func() error {
		var err error
		if addr, err = h.Addr(ctx); err != nil {
			return err
		}
		cl, err := nodeclient.Dial(addr, nodeclient.WithCredentials(h.cluster.Credentials()))
		if err != nil {
			return err
		}
		defer cl.Close()
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err = cl.Status(sctx)
		return err
	})
	if err != nil {
		logs, _ := h.Logs(ctx)
		return fmt.Errorf("node %s (%s) at %s not ready: %w\n%s", h.Name, h, addr, err, logs)
	}
	return nil
}

// Fault is what can happen to a host.
type Fault string

// The faults of a host.
const (
	// Killed: docker kill -s KILL; the node and its workers die at once.
	Killed Fault = "killed"
	// Paused: docker pause; every process freezes, its connections stay
	// open and nothing answers on them.
	Paused Fault = "paused"
	// CutOff: docker network disconnect; the processes run on, unreachable.
	CutOff Fault = "cut off"
)

// Faults lists the faults, in a fixed order.
func Faults() []Fault { return []Fault{Killed, Paused, CutOff} }

// Inject makes the fault happen to the host.
func (h *Host) Inject(ctx context.Context, f Fault) error {
	switch f {
	case Killed:
		return h.Kill(ctx, 9)
	case Paused:
		return h.Pause(ctx)
	case CutOff:
		return h.Disconnect(ctx)
	}
	return fmt.Errorf("hostcluster: unknown fault %q", f)
}

// Restore undoes the fault: a killed host's container is started again
// on its volume, a paused one resumed, a cut-off one connected again;
// then it waits for the node.
func (h *Host) Restore(ctx context.Context, f Fault) error {
	var err error
	switch f {
	case Killed:
		err = h.Start(ctx)
	case Paused:
		err = h.Unpause(ctx)
	case CutOff:
		err = h.Connect(ctx)
	default:
		err = fmt.Errorf("hostcluster: unknown fault %q", f)
	}
	if err != nil {
		return err
	}
	return h.AwaitNode(ctx)
}

// waitFor calls try until it returns nil, every 100 ms, for at most
// timeout; it returns try's last error if it never does.
func waitFor(ctx context.Context, timeout time.Duration, try func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := try()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
