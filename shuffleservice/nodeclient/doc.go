// Package nodeclient is the client of a node service (package
// shuffleservice). Dial returns a Client whose methods are the node's
// calls: RegisterApp, Heartbeat, RemoveShuffle, RemoveApp and Status for
// the driver; RegisterWorker (which returns the node's shuffle.Layout),
// CommitMapOutput (a Client is a shuffle.Committer) and Fetch (a
// shuffle.Fetcher) for workers; PutBlock, GetBlock and RemoveBlocks for
// cached blocks; HasBinary, PutBinary, StartWorkers, StopWorker and
// Workers for a driver in cluster mode (workers.go). The protocol they
// follow is described in shuffleservice's doc.go ("Write, commit,
// fetch", "Cached blocks", "Workers started by the node").
//
// Dial(addr, WithClusterSecret(secret)) sends the node's cluster secret
// with every call (gRPC metadata shoal-cluster-secret), which a node
// started with one requires ("Admission"); without it such a node
// answers every call with Unauthenticated. Dial(addr,
// WithCredentials(c)) adds mutual TLS 1.3 (package internal/pki): the
// client presents c.TLS's certificate and verifies the node's against the
// cluster's CA and the host dialled (or c.ServerName); a node started
// with --tls-dir accepts nothing else.
//
// A Source hands out shared clients by address (compute keeps one per
// node for a worker's life); Source.Fetchers makes it a shuffle reader's
// ClientSource.
//
// Errors match package shuffle's sentinels (and package blockstore's,
// for the block calls) with errors.Is: internal/nodewire restores them
// from the gRPC status the node sent. shuffle.IsRetryable tells
// transient failures apart; CommitMapOutput retries those itself, since
// a commit is idempotent.
//
// # Network faults
//
// A Client's link to its node is kept alive and its calls are bounded
// (link.go; the keepalive's times are internal/nodewire's, which the
// node's enforcement policy matches), so that a node that stops
// answering, say behind a route that silently drops packets (no answer,
// no reset), makes calls fail instead of wait forever:
//
//   - Keepalive: the client pings the node when it has heard nothing from
//     it for 10 s (gRPC's shortest interval for a client), idle or not,
//     and drops the connection if no answer comes within 5 s; the calls
//     on it fail with Unavailable, retryable. The node accepts a ping
//     every 5 s, with or without calls in flight, so that it never
//     answers them with GOAWAY too_many_pings.
//   - Deadlines, for a call whose context has none (a caller's own
//     deadline is kept): 30 s for a unary call, CommitMapOutput's retries
//     included; for PutBlock, 30 s plus 1 s per 4 MiB of the block (a
//     put waits for BlockBytesInFlight and stores the block without a
//     word on the wire, so no progress watchdog); a GetBlock stream that
//     delivers nothing for 30 s is cut. The error is then
//     DeadlineExceeded, retryable, and names the call and the node.
//   - Fetch has no deadline of its own: the Reader cuts a stream that
//     delivers nothing for IdleTimeout (20 s) and retries it.
//
// So a commit to a black-holed node fails within 30 s: the keepalive drops
// the connection after at most 15 s, and the retry waits for a new one,
// which the black hole never lets complete, until the deadline. The node
// does not ping its clients: a client that vanishes in the middle of a
// PutBlock holds its share of BlockBytesInFlight until the node's TCP
// gives up on the connection.
package nodeclient
