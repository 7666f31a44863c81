// Package toxiproxy runs a real toxiproxy server (Shopify's TCP fault
// injector, installed by `make test` at bin/toxiproxy/server) for tests
// of network faults: latency, resets, connections that stop carrying
// data, a peer unreachable for a while. This machine has no netem, and a
// proxy on 127.0.0.1 needs no privileges.
package toxiproxy
