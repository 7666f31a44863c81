// Package miniotest runs a real MinIO server (the pinned build that `make
// test` installs at bin/minio/minio) on 127.0.0.1, for the tests of the
// S3 checkpoint store and for `shoal bench checkpoint`.
//
// Launch starts a server on a free port with a data directory and known
// root credentials (AccessKey, SecretKey) and returns once it is ready: it
// polls /minio/health/live until it answers 200 (the process serves HTTP),
// then /minio/health/cluster (its object layer is initialized; requests
// made between the two fail with "Server not initialized"), with a
// deadline, and fails early, quoting the server's output, if the process
// exits.
// Stop kills the server with SIGKILL, as a crash would, and waits for it;
// Restart starts it again on the same port and directory, so the objects
// it had survive. Start is Launch for a test: it fails the test (never
// skips it) when the binary is missing, and registers Close with
// t.Cleanup.
//
// The server is started with a parent-death signal (Linux), so it does not
// outlive a test binary that is killed.
package miniotest
