package bench

import (
	"os"
	"testing"

	"shoal/client"
)

func TestMain(m *testing.M) {
	client.Init() // in a worker (this test binary re-executed) this runs the worker
	os.Exit(m.Run())
}
