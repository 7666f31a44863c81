// Package hostcluster starts a shoal cluster of containers, each a host:
// MinIO and N node services (`shoal node` from shoal:dev, each on its own
// volume) on a private Docker network, with internal/dockertest. It is
// the one place that says how such a cluster is made (its images, the
// nodes' environment, the cluster secret, the bucket the jobs read and
// write), for the tests of cluster mode (jobs.TestCluster) and for the
// experiments across hosts (`shoal demo faults --hosts`, `shoal demo
// soak --hosts`, package bench).
//
// Start builds the images (make image, make image-minio), creates the
// network, MinIO and its bucket, and the nodes, h1, h2, ..., and waits
// until each node answers with the cluster secret. Everything is removed
// by the caller's cleanups (a test's, or a dockertest.Harness's Close).
// The driver runs outside the containers, in the calling process: it
// reaches the nodes and MinIO by their containers' addresses (Master,
// S3Options), and the nodes start its workers from the binary it ships.
//
// A Host is a node's container with the faults of a real cluster: Kill
// (docker kill -s KILL), Pause, Disconnect, and Restore, which brings it
// back (started again on its volume, unpaused, connected again) and
// waits for its node.
package hostcluster
