package nodewire

import (
	"hash/crc32"
	"time"
)

const (
	// MaxMessageSize bounds a gRPC message in either direction, on the
	// server and in the client.
	MaxMessageSize = 32 << 20
	// DefaultChunkSize is the data of one message of a stream: what the
	// node sends per FetchChunk and GetBlockChunk unless configured
	// otherwise (shuffleservice.Options.ChunkSize), and what a client
	// sends per PutBlockChunk.
	DefaultChunkSize = 1 << 20
	// MaxChunkSize keeps a chunk plus one maximal frame under
	// MaxMessageSize.
	MaxChunkSize = 8 << 20
)

// Transport keepalive. A client pings its node when it has heard nothing
// on the connection for KeepaliveTime and drops the connection when no
// answer comes within KeepaliveTimeout; the calls on it then fail with
// Unavailable (retryable), 15 s after the link went silent at most. 10 s
// is the shortest ping interval gRPC allows a client; 5 s to answer is
// ample, since the node's transport answers pings whatever its handlers
// are doing. They are the values of the driver↔worker link
// (compute/wire.go). The node accepts pings every KeepaliveTime/2, with
// or without calls in flight (KeepaliveMinTime), so that it never
// answers a client's pings with GOAWAY too_many_pings.
const (
	KeepaliveTime    = 10 * time.Second
	KeepaliveTimeout = 5 * time.Second
	KeepaliveMinTime = KeepaliveTime / 2
)

// castagnoli is the CRC32-C table; never written.
//
//lint:table
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum is the CRC32-C of a whole block, as PutBlockHeader.crc32c and
// GetBlockChunk.crc32c carry it.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// SecretMetadataKey is the gRPC metadata key of the cluster secret,
// which a node started with one requires of every call.
const SecretMetadataKey = "shoal-cluster-secret"

// AppTokenMetadataKey is the gRPC metadata key of an application's token,
// which every call about the application's data must carry. The driver's
// endpoint takes the same token under the same key (package compute).
const AppTokenMetadataKey = "shoal-app-token"
