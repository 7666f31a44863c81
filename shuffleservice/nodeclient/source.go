package nodeclient

import "shoal/shuffleservice/shuffle"

// Source returns the client of a node service address. Clients are shared
// and owned by the source (compute keeps one per address for a worker's
// life): callers do not close them.
type Source func(addr string) (*Client, error)

// Fetchers is s as a shuffle reader's source of fetchers
// (shuffle.ReaderOptions.Clients).
func (s Source) Fetchers() shuffle.ClientSource {
	return func(addr string) (shuffle.Fetcher, error) {
		c, err := s(addr)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return c, nil
	}
}
