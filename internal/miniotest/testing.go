package miniotest

import (
	"context"
	"testing"
)

// Start runs a server for a test, with a data directory in t.TempDir() and
// one bucket per name in buckets, and stops it with t.Cleanup. Without the
// binary it fails the test, saying that `make test` installs it: the tests
// of the S3 store are not optional.
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	s, err := Launch(context.Background(), Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for _, b := range buckets {
		if err := s.MakeBucket(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	return s
}
