package compute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"shoal/shuffleservice"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shuffle"
)

const (
	// workerShuffleDirName is the directory, in each of the node's local
	// directories, under which workers that serve their own map outputs
	// keep them: NODE_DIR/worker-shuffle/APP/WORKER. The node service
	// does not sweep it (it holds no shuffle-N directories of its own).
	workerShuffleDirName = "worker-shuffle"
	// embeddedAppTTL is the application's TTL on a worker's own shuffle
	// server: the server dies with the worker, so nothing needs to expire
	// (the maximum a shuffle server accepts).
	embeddedAppTTL = 365 * 24 * time.Hour
	// embeddedStopTimeout bounds the graceful stop of a worker's own
	// shuffle server when the worker exits.
	embeddedStopTimeout = time.Second
)

// workerShuffleDir is the directory where worker id of app keeps the map
// outputs it serves itself, in one of its node's local directories.
func workerShuffleDir(nodeDir, app, id string) string {
	return filepath.Join(nodeDir, workerShuffleDirName, app, id)
}

// shuffleServer is a worker's own shuffle server (WorkerOptions.
// ServeShuffle): an in-process shuffleservice.Server holding the map
// outputs the worker writes and serving their blocks to every reader. It
// lives and dies with the worker process: its catalogue is in memory, its
// files are removed when the worker exits (or by the launcher when the
// worker is killed).
type shuffleServer struct {
	srv    *shuffleservice.Server
	client *nodeclient.Client // the worker's own client of it
	addr   string             // advertised address
	dirs   []string
	served chan error
}

// openShuffleServer starts the worker's own shuffle server in a
// directory of its own under each of the node's local directories
// (nodeDirs), listening on the node's host on a port picked by the OS,
// and registers the application with it.
func openShuffleServer(ctx context.Context, opts WorkerOptions, creds nodeclient.Credentials, nodeDirs []string, log *slog.Logger) (_ *shuffleServer, err error) {
	if len(nodeDirs) == 0 {
		return nil, errors.New("the node service gave no local directories")
	}
	dirs := make([]string, len(nodeDirs))
	for i, d := range nodeDirs {
		dirs[i] = workerShuffleDir(d, opts.App, opts.WorkerID)
		// A directory of this (app, worker) is left only by an earlier
		// process of the same worker that was killed: nothing in it is
		// anyone's.
		if err := os.RemoveAll(dirs[i]); err != nil {
			return nil, err
		}
	}
	host, _, err := net.SplitHostPort(opts.NodeAddr)
	if err != nil {
		return nil, fmt.Errorf("node address %q: %w", opts.NodeAddr, err)
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, fmt.Errorf("listen for its shuffle server: %w", err)
	}
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	s := &shuffleServer{addr: net.JoinHostPort(host, port), dirs: dirs, served: make(chan error, 1)}
	s.srv, err = shuffleservice.Open(shuffleservice.Options{
		Dirs:      dirs,
		AppTTL:    embeddedAppTTL,
		CatalogFS: vfs.NewMem(),
		Addr:      s.addr,
		Logger:    log,
		// Its readers are the application's workers: they hold the
		// cluster secret.
		ClusterSecret: opts.ClusterSecret,
		// And its certificate: they verify it as their node's.
		TLSDir: opts.TLSDir,
		Name:   "worker-" + opts.WorkerID,
	})
	if err != nil {
		lis.Close()
		return nil, err
	}
	go func() { s.served <- s.srv.Serve(lis) }()
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if s.client, err = nodeclient.Dial(s.addr, nodeclient.WithCredentials(creds), nodeclient.WithAppToken(opts.AppToken)); err != nil {
		return nil, err
	}
	if err := s.client.RegisterApp(ctx, opts.App, embeddedAppTTL); err != nil {
		return nil, fmt.Errorf("register application %q with its shuffle server %s: %w", opts.App, s.addr, err)
	}
	return s, nil
}

// layout is where the worker's map outputs go.
func (s *shuffleServer) layout() shuffle.Layout { return s.srv.Layout() }

// close stops the server, waits for Serve to return and removes its
// files: nobody may read them once the worker is gone.
func (s *shuffleServer) close() {
	if s.client != nil {
		s.client.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), embeddedStopTimeout)
	s.srv.Shutdown(ctx)
	cancel()
	s.srv.Close()
	<-s.served
	for _, d := range s.dirs {
		os.RemoveAll(d)
	}
}
