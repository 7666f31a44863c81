package bench

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"shoal/internal/testbin"
)

// TestRunSortComparison sorts 10,000 records both ways; RunSortComparison
// itself verifies both outputs.
func TestRunSortComparison(t *testing.T) {
	if _, err := exec.LookPath("sort"); err != nil {
		t.Skip("no sort command")
	}
	res, err := RunSortComparison(context.Background(), SortConfig{
		Records: 10_000, Seed: 3, Binary: os.Args[0], NodeBinary: testbin.Shoal(t),
		SortBuffer: "1M", Dir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 10_000 || res.InputBytes != 1_000_000 || res.Parts != 4 ||
		res.ShoalSeconds <= 0 || res.GNUSortSeconds <= 0 || res.GNUSortInputBytes != 1_000_000 {
		t.Fatalf("result %+v", res)
	}
	t.Logf("%+v", res)
}
