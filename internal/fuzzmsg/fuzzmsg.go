// Package fuzzmsg splits a fuzzer's bytes into messages, as the fuzz
// targets of the gRPC handlers (shuffleservice FuzzNodeCall, compute
// FuzzEndpointConnect) read a stream's messages from one input.
package fuzzmsg

import "encoding/binary"

// Frame prefixes b with its length as a uvarint (Split's format).
func Frame(b []byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(b))), b...) }

// Split splits b into uvarint-length-prefixed messages; a bad or short
// prefix ends the list (the rest is one last message).
func Split(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return append(out, b)
		}
		out = append(out, b[k:k+int(n)])
		b = b[k+int(n):]
	}
	return out
}
