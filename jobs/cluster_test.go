package jobs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"shoal/blockstore"
	"shoal/client"
	"shoal/client/eventlog"
	"shoal/compute"
	"shoal/internal/dockertest"
	"shoal/internal/hostcluster"
	"shoal/internal/pki"
	"shoal/internal/poll"
	"shoal/jobs"
	"shoal/objstore"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shufflepb"
)

// The cluster-mode tests (docs/cluster.md): three node services, each in a
// container of its own on a private Docker network (its own address and
// file system), MinIO in a fourth, and the driver in this test process,
// outside them all. The workers are this test binary, which the driver
// ships to the nodes: it must be static (CGO_ENABLED=0, as make test
// builds it), for the nodes' image has no dynamic loader.

const (
	clusterBucket   = "shoal"
	minioUser       = hostcluster.MinIOUser
	minioPassword   = hostcluster.MinIOPassword
	clusterNodes    = 3
	workersPerHost  = 2
	clusterAppTTL   = 10 * time.Second
	clusterHBTimout = 4 * time.Second
	// faultPartitions is the map tasks of the fault tests' job: several
	// waves over the cluster's 12 slots, so that a host is lost while its
	// map outputs are still needed.
	faultPartitions = 48
)

// testCluster is the containers of one test (hostcluster.Start, shared
// with the experiments across hosts) and how to reach them.
type testCluster struct {
	net      *dockertest.Network
	hosts    []*hostcluster.Host // h1, h2, h3
	endpoint string              // MinIO's, http://IP:9000
	secret   string
	s3       *minio.Client
	// The cluster's certificates (docs/security.md): every node's names
	// clusterServerName (the containers' addresses change when they are
	// started again, as pods' do), driverTLS is the driver's identity,
	// in driverDir, and stranger another CA's client.
	driverTLS *pki.Identity
	driverDir string
	stranger  *pki.Identity
}

// clusterServerName is the name every node's certificate carries, which
// drivers and workers verify instead of the address they dial
// (client.Options.TLSServerName).
const clusterServerName = hostcluster.ServerName

// creds are what a client of the nodes presents.
func (tc *testCluster) creds() nodeclient.Credentials {
	return nodeclient.Credentials{Secret: tc.secret, TLS: tc.driverTLS, ServerName: clusterServerName}
}

func startCluster(t *testing.T) *testCluster {
	t.Helper()
	dockertest.Require(t)
	hostcluster.RequireStatic(t)
	hc := hostcluster.Start(t, hostcluster.Options{
		Nodes: clusterNodes, WorkersPerNode: workersPerHost, AppTTL: clusterAppTTL, Bucket: clusterBucket,
	})
	tc := &testCluster{net: hc.Net, hosts: hc.Hosts, endpoint: hc.Endpoint, secret: hc.Secret, s3: hc.S3,
		driverTLS: hc.DriverTLS, driverDir: hc.DriverTLSDir}
	now := time.Now()
	other, err := pki.NewCA("other-ca", 24*time.Hour, now)
	failIf(t, err)
	tc.stranger, err = other.Issue(pki.Request{Name: "stranger", Role: pki.RoleClient, ValidFor: 2 * time.Hour}, now)
	failIf(t, err)
	return tc
}

// nodeAddr is host h's address, as the driver dials it.
func (tc *testCluster) nodeAddr(t *testing.T, h *hostcluster.Host) string {
	t.Helper()
	addr, err := h.Addr(context.Background())
	failIf(t, err)
	return addr
}

// awaitNode waits until the node in h answers with the cluster secret.
func (tc *testCluster) awaitNode(t *testing.T, ctx context.Context, h *hostcluster.Host) {
	t.Helper()
	failIf(t, h.AwaitNode(ctx))
}

func (tc *testCluster) master(t *testing.T) string {
	addrs := make([]string, len(tc.hosts))
	for i, h := range tc.hosts {
		addrs[i] = tc.nodeAddr(t, h)
	}
	return "shoal://" + strings.Join(addrs, ",")
}

// context starts a driver on the cluster.
func (tc *testCluster) context(t *testing.T, eventLog string) *client.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.NewContext(ctx, client.Options{
		Master: tc.master(t), ClusterSecret: tc.secret, TLSDir: tc.driverDir, TLSServerName: clusterServerName,
		EventLog: eventLog, HeartbeatTimeout: clusterHBTimout, UIAddr: "off",
		S3: tc.s3Options(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (tc *testCluster) s3Options() objstore.Options {
	return objstore.Options{Endpoint: tc.endpoint, AccessKey: minioUser, SecretKey: minioPassword}
}

// put uploads a generated input and returns its s3:// URI.
func (tc *testCluster) put(t *testing.T, key, kind string, records int64) (uri string, data []byte) {
	t.Helper()
	var buf bytes.Buffer
	if err := jobs.Generate(kind, &buf, records, 42); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.s3.PutObject(context.Background(), clusterBucket, key, bytes.NewReader(buf.Bytes()), int64(buf.Len()), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	return "s3://" + clusterBucket + "/" + key, buf.Bytes()
}

// output returns the lines of a committed output's parts, sorted; it
// fails the test if the output has no _SUCCESS marker.
func (tc *testCluster) output(t *testing.T, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	if _, err := tc.s3.StatObject(ctx, clusterBucket, prefix+"/_SUCCESS", minio.StatObjectOptions{}); err != nil {
		t.Fatalf("output %s: no _SUCCESS: %v", prefix, err)
	}
	var lines []string
	for obj := range tc.s3.ListObjects(ctx, clusterBucket, minio.ListObjectsOptions{Prefix: prefix + "/part-", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		o, err := tc.s3.GetObject(ctx, clusterBucket, obj.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := b.ReadFrom(o); err != nil {
			t.Fatal(err)
		}
		o.Close()
		for l := range strings.SplitSeq(b.String(), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
	}
	slices.Sort(lines)
	return lines
}

// TestCluster runs the jobs on three hosts and then takes hosts away
// while jobs run: killed, hung, cut off. One cluster serves every subtest,
// in order (each leaves every host up again).
func TestCluster(t *testing.T) {
	tc := startCluster(t)
	text, textData := tc.put(t, "in/text", "text", 200_000)
	t.Run("tls-refused", tc.testTLSRefused)
	t.Run("jobs", func(t *testing.T) { tc.testJobs(t, text, textData) })
	t.Run("another-application", func(t *testing.T) { tc.testAnotherApplication(t, text, textData) })
	t.Run("host-killed", func(t *testing.T) { tc.testHostFault(t, text, textData, "kill") })
	t.Run("host-paused", func(t *testing.T) { tc.testHostFault(t, text, textData, "pause") })
	t.Run("host-cut-off", func(t *testing.T) { tc.testHostFault(t, text, textData, "disconnect") })
	t.Run("restart-new-address", func(t *testing.T) { tc.testRestartNewAddress(t, text) })
	t.Run("driver-killed", func(t *testing.T) { tc.testDriverKilled(t, text) })
}

// testAnotherApplication: while one application's job runs, a second
// application, with the cluster's credentials, calls every node about the
// first's data. Every call is refused PermissionDenied, its fetches of the
// first's shuffle get no byte, and the first's answer is right.
func (tc *testCluster) testAnotherApplication(t *testing.T, text string, textData []byte) {
	events := filepath.Join(t.TempDir(), "events.jsonl")
	victim := tc.context(t, events)
	other := tc.context(t, "")
	app := victim.App()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	jobErr := make(chan error, 1)
	go func() { jobErr <- jobs.WordCount(ctx, victim, text, "s3://"+clusterBucket+"/out/isolated", 12) }()

	var clients []*nodeclient.Client
	for _, h := range tc.hosts {
		cl, err := nodeclient.Dial(tc.nodeAddr(t, h), nodeclient.WithCredentials(tc.creds()), nodeclient.WithAppToken(other.AppToken()))
		failIf(t, err)
		defer cl.Close()
		clients = append(clients, cl)
	}
	calls := map[string]func(cl *nodeclient.Client) error{
		"Fetch": func(cl *nodeclient.Client) error {
			req := &shufflepb.FetchRequest{App: app, Shuffle: 0, Blocks: []*shufflepb.BlockRange{{Map: 0, ReduceEnd: 12}, {Map: 1, ReduceEnd: 12}}}
			return cl.Fetch(ctx, req, func(ch *shufflepb.FetchChunk) error {
				t.Errorf("another application received %d bytes of %s's shuffle from %s", len(ch.GetData()), app, cl.Addr())
				return nil
			})
		},
		"GetBlock": func(cl *nodeclient.Client) error {
			_, _, _, err := cl.GetBlock(ctx, blockstore.BlockID{App: app, RDD: 1})
			return err
		},
		"Workers":       func(cl *nodeclient.Client) error { _, _, err := cl.Workers(ctx, app); return err },
		"StopWorker":    func(cl *nodeclient.Client) error { return cl.StopWorker(ctx, app, "w-h1-1") },
		"Heartbeat":     func(cl *nodeclient.Client) error { return cl.Heartbeat(ctx, app) },
		"RegisterApp":   func(cl *nodeclient.Client) error { return cl.RegisterApp(ctx, app, time.Second) },
		"RemoveShuffle": func(cl *nodeclient.Client) error { return cl.RemoveShuffle(ctx, app, 0) },
		"RemoveApp":     func(cl *nodeclient.Client) error { return cl.RemoveApp(ctx, app) },
	}
	rounds := 0
	for done := false; !done; rounds++ {
		for name, call := range calls {
			for _, cl := range clients {
				if err := call(cl); status.Code(err) != codes.PermissionDenied {
					t.Errorf("%s of %s's data on %s by another application: %v, want PermissionDenied", name, app, cl.Addr(), err)
				}
			}
		}
		select {
		case err := <-jobErr:
			failIf(t, err)
			done = true
		default:
		}
	}
	want, err := jobs.RefWordCount(bytes.NewReader(textData))
	failIf(t, err)
	if got := tc.output(t, "out/isolated"); !slices.Equal(got, want) {
		t.Errorf("the job beside the other application: %d lines, want %d", len(got), len(want))
	}
	t.Logf("%d rounds of %d calls on each of %d nodes, all refused, while the job ran", rounds, len(calls), len(clients))
}

// testTLSRefused: with the cluster secret but without a certificate of
// the cluster's CA, no client can call a node; nor can a driver whose
// certificate does not name the node (no TLSServerName) start.
func (tc *testCluster) testTLSRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr := tc.nodeAddr(t, tc.hosts[0])
	// Another CA's client that checks nothing of the node: the node
	// refuses it, and logs why.
	cfg := tc.stranger.ClientConfig("", "", "")
	cfg.VerifyConnection = nil
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(grpccreds.NewTLS(cfg)),
		grpc.WithPerRPCCredentials(secretMetadata(tc.secret)))
	failIf(t, err)
	sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = shufflepb.NewShuffleClient(conn).Status(sctx, &shufflepb.StatusRequest{})
	scancel()
	conn.Close()
	if err == nil {
		t.Errorf("another CA's client was served by %s", addr)
	}
	for name, creds := range map[string]nodeclient.Credentials{
		"no certificate":          {Secret: tc.secret},
		"the node's name unknown": {Secret: tc.secret, TLS: tc.driverTLS},
	} {
		cl, err := nodeclient.Dial(addr, nodeclient.WithCredentials(creds))
		failIf(t, err)
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = cl.Status(sctx)
		scancel()
		cl.Close()
		if err == nil {
			t.Errorf("%s: a client was served by %s", name, addr)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	logs, err := tc.hosts[0].Logs(ctx)
	failIf(t, err)
	if !strings.Contains(logs, `refused a connection: pki: certificate \"stranger\" of client`) || !strings.Contains(logs, "signed by another CA") {
		t.Errorf("node h1 logged no refused connection:\n%s", logs)
	}
	if strings.Contains(logs, tc.secret) {
		t.Error("node h1's log holds the cluster secret")
	}
	_, err = client.NewContext(ctx, client.Options{Master: tc.master(t), ClusterSecret: tc.secret, TLSDir: tc.driverDir, UIAddr: "off"})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("a driver that verifies the nodes by their addresses started: %v, want the nodes refused", err)
	}
}

// secretMetadata sends the cluster secret with every call, as
// nodeclient.WithClusterSecret does.
type secretMetadata string

func (s secretMetadata) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"shoal-cluster-secret": string(s)}, nil
}

func (secretMetadata) RequireTransportSecurity() bool { return false }

// testRestartNewAddress: a node's container started again on its volume
// with another address is the same node (its name) and serves the map
// outputs it had committed, byte for byte.
func (tc *testCluster) testRestartNewAddress(t *testing.T, text string) {
	events := filepath.Join(t.TempDir(), "events.jsonl")
	c := tc.context(t, events)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	failIf(t, jobs.WordCount(ctx, c, text, "s3://"+clusterBucket+"/out/restart", 12))
	victim := tc.hosts[2]
	oldAddr := tc.nodeAddr(t, victim)

	// The map outputs the victim holds, from the event log.
	evs, err := eventlog.ReadFile(events)
	failIf(t, err)
	shuffle, maps := -1, []int{}
	stageShuffle := map[int]int{}
	for _, ev := range evs {
		switch e := ev.(type) {
		case *eventlog.StageSubmitted:
			if e.Kind == eventlog.KindMap {
				stageShuffle[e.Stage] = e.Shuffle
			}
		case *eventlog.TaskEnd:
			if sh, ok := stageShuffle[e.Stage]; ok && e.Node == oldAddr && e.Status == eventlog.StatusSucceeded {
				shuffle, maps = sh, append(maps, e.Partition)
			}
		}
	}
	if len(maps) == 0 {
		t.Fatalf("no map output on %s", oldAddr)
	}
	fetch := func(addr string) []byte {
		cl, err := nodeclient.Dial(addr, nodeclient.WithCredentials(tc.creds()), nodeclient.WithAppToken(c.AppToken()))
		failIf(t, err)
		defer cl.Close()
		req := &shufflepb.FetchRequest{App: c.App(), Shuffle: uint32(shuffle)}
		for _, m := range maps {
			req.Blocks = append(req.Blocks, &shufflepb.BlockRange{Map: uint32(m), ReduceStart: 0, ReduceEnd: 12})
		}
		var got bytes.Buffer
		failIf(t, cl.Fetch(ctx, req, func(ch *shufflepb.FetchChunk) error {
			fmt.Fprintf(&got, "%d/%d:", ch.GetMap(), ch.GetReduce())
			got.Write(ch.GetData())
			return nil
		}))
		return got.Bytes()
	}
	before := fetch(oldAddr)

	// Stopped, its address taken by another container, started again.
	failIf(t, victim.Stop(ctx, 5*time.Second))
	squatter := dockertest.Run(t, dockertest.RunOptions{Name: "squatter", Image: string(dockertest.MinIO), Network: tc.net,
		Env: []string{"MINIO_ROOT_USER=" + minioUser, "MINIO_ROOT_PASSWORD=" + minioPassword}})
	if ip, err := squatter.IP(ctx); err != nil || ip+":7077" != oldAddr {
		t.Logf("the squatter has %s (%v), not the old address %s: the node may get its old address back", ip, err, oldAddr)
	}
	failIf(t, victim.Start(ctx))
	tc.awaitNode(t, ctx, victim)
	newAddr := tc.nodeAddr(t, victim)
	if newAddr == oldAddr {
		t.Fatalf("the node came back at its old address %s", oldAddr)
	}
	cl, err := nodeclient.Dial(newAddr, nodeclient.WithCredentials(tc.creds()))
	failIf(t, err)
	st, err := cl.Status(ctx)
	cl.Close()
	failIf(t, err)
	if st.GetName() != "h3" || st.GetAddr() != newAddr {
		t.Errorf("restarted node: name %q addr %q, want h3 at %s", st.GetName(), st.GetAddr(), newAddr)
	}
	if after := fetch(newAddr); !bytes.Equal(after, before) {
		t.Errorf("the map outputs served at %s (%d bytes) differ from those served at %s before (%d bytes)", newAddr, len(after), oldAddr, len(before))
	}
	t.Logf("%d map outputs, %d bytes, served again from %s after %s", len(maps), len(before), newAddr, oldAddr)
	// The other subtests reach it at its new address (tc.master).
}

// testDriverKilled: a driver SIGKILLed leaves no worker behind: each node
// stops the application's workers once its heartbeats stop (the TTL).
func (tc *testCluster) testDriverKilled(t *testing.T, text string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The driver: this test binary as `shoal run` is not at hand, so the
	// driver is a child running the test helper below.
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestClusterDriverChild$")
	cmd.Env = append(os.Environ(), "SHOAL_TEST_CLUSTER_CHILD=1", "SHOAL_TEST_MASTER="+tc.master(t),
		"SHOAL_TEST_SECRET="+tc.secret, "SHOAL_TEST_INPUT="+text, "SHOAL_TEST_TLS_DIR="+tc.driverDir,
		"AWS_ENDPOINT_URL="+tc.endpoint, "AWS_ACCESS_KEY_ID="+minioUser, "AWS_SECRET_ACCESS_KEY="+minioPassword)
	cmd.Stderr = os.Stderr
	failIf(t, cmd.Start())
	defer cmd.Process.Kill()
	// count sums the nodes' workers and applications.
	count := func() (workers, apps int) {
		for _, h := range tc.hosts {
			cl, err := nodeclient.Dial(tc.nodeAddr(t, h), nodeclient.WithCredentials(tc.creds()))
			failIf(t, err)
			st, err := cl.Status(ctx)
			cl.Close()
			if err == nil {
				workers, apps = workers+int(st.GetWorkers()), apps+int(st.GetApps())
			}
		}
		return workers, apps
	}
	poll.WaitFor(t, time.Minute, "the driver's workers on every node", func() bool {
		time.Sleep(50 * time.Millisecond)
		w, _ := count()
		return w == clusterNodes*workersPerHost
	})
	failIf(t, cmd.Process.Signal(syscall.SIGKILL))
	cmd.Wait()
	killed := time.Now()
	ttl := compute.DefaultRemoteAppTTL // what the driver registered
	poll.WaitFor(t, ttl+10*time.Second, "the nodes to remove the killed driver's application and stop its workers", func() bool {
		time.Sleep(100 * time.Millisecond)
		w, apps := count()
		return w == 0 && apps == 0
	})
	t.Logf("workers stopped %v after the driver was killed (application TTL %v)", time.Since(killed).Round(100*time.Millisecond), ttl)
	for _, h := range tc.hosts {
		procs, err := h.Top(ctx)
		failIf(t, err)
		if len(procs) != 1 {
			t.Errorf("%s runs %d processes, want only its node: %+v", h, len(procs), procs)
		}
	}
}

// TestClusterDriverChild is the driver testDriverKilled kills: it joins
// the cluster and runs jobs until it is killed. It does nothing unless
// started by that test.
func TestClusterDriverChild(t *testing.T) {
	if os.Getenv("SHOAL_TEST_CLUSTER_CHILD") != "1" {
		return
	}
	c, err := client.NewContext(context.Background(), client.Options{
		Master: os.Getenv("SHOAL_TEST_MASTER"), ClusterSecret: os.Getenv("SHOAL_TEST_SECRET"),
		TLSDir: os.Getenv("SHOAL_TEST_TLS_DIR"), TLSServerName: clusterServerName,
		HeartbeatTimeout: clusterHBTimout, UIAddr: "off",
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if err := jobs.WordCount(context.Background(), c, os.Getenv("SHOAL_TEST_INPUT"), fmt.Sprintf("s3://%s/out/child-%d", clusterBucket, i), 12); err != nil {
			t.Fatal(err)
		}
	}
}

// testJobs: wordcount, the e-commerce group-by and PageRank read S3 and
// write S3 and give the single-process references' answers; the workers
// ran in the containers.
func (tc *testCluster) testJobs(t *testing.T, text string, textData []byte) {
	events := filepath.Join(t.TempDir(), "events.jsonl")
	c := tc.context(t, events)
	ctx := context.Background()

	if err := jobs.WordCount(ctx, c, text, "s3://"+clusterBucket+"/out/wordcount", 6); err != nil {
		t.Fatal(err)
	}
	want, err := jobs.RefWordCount(bytes.NewReader(textData))
	if err != nil {
		t.Fatal(err)
	}
	if got := tc.output(t, "out/wordcount"); !slices.Equal(got, want) {
		t.Errorf("wordcount: %d lines, want %d", len(got), len(want))
	}

	ecom, ecomData := tc.put(t, "in/ecommerce.csv", "ecommerce", 20_000)
	if _, err := jobs.Ecommerce(ctx, c, ecom, "s3://"+clusterBucket+"/out/ecommerce", 6, false); err != nil {
		t.Fatal(err)
	}
	wantRows, _, err := jobs.RefEcommerce(bytes.NewReader(ecomData))
	if err != nil {
		t.Fatal(err)
	}
	if got := tc.output(t, "out/ecommerce"); !slices.Equal(got, wantRows) {
		t.Errorf("ecommerce: %d rows, want %d", len(got), len(wantRows))
	}

	graph, graphData := tc.put(t, "in/graph", "graph", 20_000)
	res, err := jobs.PageRankWith(ctx, c, graph, "s3://"+clusterBucket+"/out/ranks", jobs.PageRankOptions{Iterations: 5, Partitions: 6})
	if err != nil {
		t.Fatal(err)
	}
	wantRanks, err := jobs.RefPageRank(bytes.NewReader(graphData), 5)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != int64(len(wantRanks)) {
		t.Errorf("pagerank: %d pages, want %d", res.Pages, len(wantRanks))
	}
	gotRanks := parseRanks(t, tc.output(t, "out/ranks"))
	sameRanks(t, gotRanks, wantRanks, 1e-9)

	// A local path the driver sees and the hosts do not: the job fails,
	// naming the path and a node.
	local := filepath.Join(t.TempDir(), "local.txt")
	failIf(t, os.WriteFile(local, textData[:4096], 0o644))
	err = jobs.WordCount(ctx, c, local, "s3://"+clusterBucket+"/out/local", 2)
	if err == nil || !strings.Contains(err.Error(), "input "+local+" cannot be read on node ") {
		t.Errorf("a local input in cluster mode: %v", err)
	}

	// The workers ran in the containers: each names its host, reports
	// its host's address as its node, and ran tasks.
	hostOf := map[string]string{}
	for i, h := range tc.hosts {
		hostOf[tc.nodeAddr(t, h)] = fmt.Sprintf("h%d", i+1)
	}
	ran, joined := map[string]int{}, map[string]int{}
	evs, err := eventlog.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		switch ev := ev.(type) {
		case *eventlog.WorkerAdded:
			host, ok := hostOf[ev.Node]
			if !ok || !strings.HasPrefix(ev.Worker, "w-"+host+"-") || ev.Pid <= 1 {
				t.Errorf("worker_added %+v: not a worker of a node container (%v)", ev, hostOf)
			}
			joined[host]++
		case *eventlog.TaskEnd:
			if ev.Status == eventlog.StatusSucceeded {
				ran[hostOf[ev.Node]]++
			}
		}
	}
	total := 0
	for i := range tc.hosts {
		h := fmt.Sprintf("h%d", i+1)
		if joined[h] != workersPerHost {
			t.Errorf("%d workers of %s joined, want %d", joined[h], h, workersPerHost)
		}
		total += ran[h]
	}
	if ran[""] > 0 || total == 0 {
		t.Errorf("tasks by host: %v; want them all on the node containers", ran)
	}
}

// parseRanks reads "page\trank" lines.
func parseRanks(t *testing.T, lines []string) map[string]float64 {
	t.Helper()
	ranks := map[string]float64{}
	for _, l := range lines {
		var page string
		var r float64
		if _, err := fmt.Sscanf(strings.Replace(l, "\t", " ", 1), "%s %g", &page, &r); err != nil {
			t.Fatalf("rank line %q: %v", l, err)
		}
		ranks[page] = r
	}
	return ranks
}

// testHostFault runs wordcount and, once the map stage has committed
// outputs on host h2, takes h2 away: kill (docker kill -s KILL), pause
// (docker pause) or disconnect (docker network disconnect, then connect
// again once the driver has found it lost). The answer must be right,
// the loss found in time, only h2's map outputs recomputed, and a second
// job afterwards must run on every host again.
func (tc *testCluster) testHostFault(t *testing.T, text string, textData []byte, fault string) {
	events := filepath.Join(t.TempDir(), "events.jsonl")
	c := tc.context(t, events)
	victim := tc.hosts[1]
	victimAddr := tc.nodeAddr(t, victim)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	out := fmt.Sprintf("out/fault-%s", fault)
	jobErr := make(chan error, 1)
	go func() { jobErr <- jobs.WordCount(ctx, c, text, "s3://"+clusterBucket+"/"+out, faultPartitions) }()

	// Wait for a map task to succeed on the victim while its stage runs.
	tail := &eventlog.Tail{Path: events}
	// Wait for a map output on the victim while the map stage still has
	// tasks to start: the rest of the job will need it.
	mapStage, mapTasks, started, onVictim := -1, 0, 0, false
	poll.WaitFor(t, 2*time.Minute, "a map output on "+victimAddr+" early in the map stage", func() bool {
		evs, err := tail.Poll()
		failIf(t, err)
		for _, ev := range evs {
			switch ev := ev.(type) {
			case *eventlog.StageSubmitted:
				if ev.Kind == eventlog.KindMap && mapStage < 0 {
					mapStage, mapTasks = ev.Stage, ev.Tasks
				}
			case *eventlog.TaskStart:
				if ev.Stage == mapStage {
					started++
				}
			case *eventlog.TaskEnd:
				if ev.Stage == mapStage && ev.Node == victimAddr && ev.Status == eventlog.StatusSucceeded {
					onVictim = true
				}
			}
		}
		if mapStage >= 0 && started >= mapTasks {
			t.Fatalf("the map stage's %d tasks all started before one ended on %s: give it more partitions", mapTasks, victimAddr)
		}
		return onVictim
	})
	faultAt := time.Now()
	switch fault {
	case "kill":
		failIf(t, victim.Kill(ctx, syscall.SIGKILL))
	case "pause":
		failIf(t, victim.Pause(ctx))
	case "disconnect":
		failIf(t, victim.Disconnect(ctx))
	}

	// The loss is found: the first worker_lost or node_lost of the victim.
	var found time.Time
	lost := false // node_lost seen
	poll.WaitFor(t, time.Minute, "the driver to find "+victimAddr+" lost", func() bool {
		evs, err := tail.Poll()
		failIf(t, err)
		for _, ev := range evs { // all of them: a node_lost may follow
			at := time.UnixMilli(eventlog.Timestamp(ev))
			switch e := ev.(type) {
			case *eventlog.WorkerLost:
				if e.Node == victimAddr && found.IsZero() && !at.Before(faultAt.Add(-50*time.Millisecond)) {
					found = at
				}
			case *eventlog.NodeLost:
				if e.Node == victimAddr {
					lost = true
					if found.IsZero() {
						found = at
					}
				}
			}
		}
		return !found.IsZero()
	})
	detect := found.Sub(faultAt)
	bound := 2 * time.Second
	if fault != "kill" {
		bound += clusterHBTimout
	}
	t.Logf("%s: found in %v (bound %v)", fault, detect.Round(time.Millisecond), bound)
	if detect > bound {
		t.Errorf("%s: the loss was found after %v, want within %v", fault, detect, bound)
	}
	// The host is declared lost (its outputs with it), then comes back:
	// killed, it is started again on its volume; paused, it is resumed;
	// cut off, it is connected again, at the same address.
	deadline, dumped := time.Now().Add(time.Minute), false
	poll.WaitFor(t, time.Minute+time.Second, "the driver to declare "+victimAddr+" lost", func() bool {
		if lost {
			return true
		}
		if !dumped && time.Now().After(deadline) {
			dumped = true // what the driver saw, once, before the test fails
			dumpEvents(t, events, victimAddr)
		}
		evs, err := tail.Poll()
		failIf(t, err)
		lost = slices.ContainsFunc(evs, func(ev eventlog.Event) bool {
			e, ok := ev.(*eventlog.NodeLost)
			return ok && e.Node == victimAddr
		})
		return lost
	})
	switch fault {
	case "kill":
		// A driver that starts while the host is down joins the others,
		// and the host once it is back.
		master := "shoal://" + victimAddr
		for _, h := range tc.hosts {
			if h != victim {
				master += "," + tc.nodeAddr(t, h)
			}
		}
		c2, err := client.NewContext(ctx, client.Options{Master: master, ClusterSecret: tc.secret, TLSDir: tc.driverDir, TLSServerName: clusterServerName, UIAddr: "off", S3: tc.s3Options()})
		failIf(t, err)
		defer c2.Close()
		if n := len(c2.Remote().Nodes()); n != clusterNodes-1 {
			t.Errorf("a driver started while %s is down joined %d nodes, want %d", victimAddr, n, clusterNodes-1)
		}
		tc.restartHost(t, victim)
		poll.WaitFor(t, 30*time.Second, "the second driver to join "+victimAddr+" once it is back", func() bool {
			return len(c2.Remote().Nodes()) == clusterNodes
		})
	case "pause":
		failIf(t, victim.Unpause(ctx))
	case "disconnect":
		failIf(t, victim.Connect(ctx))
	}
	if got := tc.nodeAddr(t, victim); got != victimAddr {
		t.Fatalf("%s came back at %s, was %s", victim, got, victimAddr)
	}

	if err := <-jobErr; err != nil {
		t.Fatalf("wordcount with %s: %v", fault, err)
	}
	want, err := jobs.RefWordCount(bytes.NewReader(textData))
	if err != nil {
		t.Fatal(err)
	}
	if got := tc.output(t, out); !slices.Equal(got, want) {
		t.Errorf("wordcount with %s: %d lines, want %d", fault, len(got), len(want))
	}

	// Only the victim's map outputs were computed again: every map
	// partition that succeeded twice had first succeeded on the victim.
	evs, err := eventlog.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	firstOn := map[int]string{}
	recomputed := 0
	for _, ev := range evs {
		if e, ok := ev.(*eventlog.TaskEnd); ok && e.Stage == mapStage && e.Status == eventlog.StatusSucceeded {
			if node, seen := firstOn[e.Partition]; seen {
				recomputed++
				if node != victimAddr {
					t.Errorf("map partition %d, first computed on %s, was computed again", e.Partition, node)
				}
				continue
			}
			firstOn[e.Partition] = e.Node
		}
	}
	t.Logf("%s: %d map outputs recomputed", fault, recomputed)
	if recomputed == 0 {
		dumpEvents(t, events, victimAddr)
		t.Errorf("%s: the lost host's map outputs were not recomputed", fault)
	}

	// The host serves the next job once its workers are back: its node
	// is taken back and they run tasks.
	for back, start := false, time.Now(); !back; time.Sleep(50 * time.Millisecond) {
		evs, err := eventlog.ReadFile(events)
		failIf(t, err)
		for _, ev := range evs {
			if e, ok := ev.(*eventlog.WorkerAdded); ok && e.Node == victimAddr && !time.UnixMilli(eventlog.Timestamp(ev)).Before(faultAt) {
				back = true
			}
		}
		if !back && time.Since(start) > time.Minute {
			logs, _ := victim.Logs(ctx)
			t.Fatalf("no worker on %s a minute after it came back; its log:\n%s", victimAddr, logs)
		}
	}
	evs, err = eventlog.ReadFile(events)
	failIf(t, err)
	job2 := len(evs)
	if err := jobs.WordCount(ctx, c, text, "s3://"+clusterBucket+"/"+out+"-next", faultPartitions); err != nil {
		t.Fatalf("the job after %s: %v", fault, err)
	}
	evs, err = eventlog.ReadFile(events)
	failIf(t, err)
	served := 0
	for _, ev := range evs[job2:] {
		if e, ok := ev.(*eventlog.TaskEnd); ok && e.Node == victimAddr && e.Status == eventlog.StatusSucceeded {
			served++
		}
	}
	if served == 0 {
		t.Errorf("after %s, the next job ran no task on %s", fault, victimAddr)
	}
}

// restartHost starts a killed host's container again, on its volume, and
// waits for its node.
func (tc *testCluster) restartHost(t *testing.T, h *hostcluster.Host) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	failIf(t, h.Start(ctx))
	tc.awaitNode(t, ctx, h)
}

func failIf(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// dumpEvents logs the events that name node.
func dumpEvents(t *testing.T, path, node string) {
	t.Helper()
	evs, _ := eventlog.ReadFile(path)
	for _, ev := range evs {
		if b, err := json.Marshal(ev); err == nil && bytes.Contains(b, []byte(node)) {
			t.Logf("%s %s", eventlog.Name(ev), b)
		}
	}
}
