// Package nodewire is what the node service (package shuffleservice) and
// its client (package nodeclient) must agree on besides the protobuf
// messages of shufflepb: how errors travel (status.go: each sentinel of
// packages shuffle, blockstore and launcher as a gRPC code plus an ErrorInfo
// reason), the largest message, the keepalive the node accepts, the
// chunk size of block streams and their checksum, and how block IDs and
// levels are put into messages (block.go).
//
// It is internal to shuffleservice: users see the errors it restores
// (errors.Is(err, shuffle.ErrCorrupt)) and never the wire.
package nodewire
