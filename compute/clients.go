package compute

import (
	"fmt"
	"sync"

	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shuffle"
)

// clientCache dials node services on first use and keeps one client per
// address for the worker's life: TaskEnv.Clients. The local node's client
// is shared too. Tasks never close these clients; the worker does, when it
// ends.
type clientCache struct {
	local *nodeclient.Client
	creds nodeclient.Credentials

	mu      sync.Mutex
	clients map[string]*nodeclient.Client
	closed  bool
}

func newClientCache(local *nodeclient.Client, creds nodeclient.Credentials) *clientCache {
	return &clientCache{local: local, creds: creds, clients: make(map[string]*nodeclient.Client)}
}

// get is a nodeclient.Source.
func (c *clientCache) get(addr string) (*nodeclient.Client, error) {
	if addr == c.local.Addr() {
		return c.local, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("compute: client of node %s: %w (the worker is stopping)", addr, shuffle.ErrClosed)
	}
	if cl := c.clients[addr]; cl != nil {
		return cl, nil
	}
	cl, err := nodeclient.Dial(addr, nodeclient.WithCredentials(c.creds))
	if err != nil {
		return nil, err
	}
	c.clients[addr] = cl
	return cl, nil
}

// close closes the clients dialled by get (not the local one).
func (c *clientCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for addr, cl := range c.clients {
		cl.Close()
		delete(c.clients, addr)
	}
}
