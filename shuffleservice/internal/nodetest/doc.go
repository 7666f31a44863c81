// Package nodetest starts node services for the tests of shuffleservice
// and of the packages around it (shuffle's reader, the node client): one
// in-process on 127.0.0.1:0, or a real `shoal node` process, each with a
// client, all ended by t.Cleanup.
//
// It does not import shuffleservice, so that shuffleservice's own tests
// can use it: they open the Server, Serve serves it.
package nodetest
