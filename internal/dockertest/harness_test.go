package dockertest

import (
	"os"
	"strings"
	"testing"
)

// TestHarness: outside a test, Fatalf ends the function Do runs and Do
// returns the error; Errorf goes on; cleanups run once, last first, on
// Close, also those registered by a function Fatalf ended; TempDir goes
// with them.
func TestHarness(t *testing.T) {
	var _ TB = (testing.TB)(nil) // testing.TB satisfies TB
	h := NewHarness("harness-test", nil)
	var order []string
	var dir string
	reached := false
	err := h.Do(func() {
		dir = h.TempDir()
		h.Cleanup(func() { order = append(order, "first") })
		h.Errorf("soft %d", 1)
		h.Cleanup(func() { order = append(order, "second") })
		h.Fatalf("hard %d", 2)
		reached = true
	})
	if reached {
		t.Error("the function went on after Fatalf")
	}
	if err == nil || !strings.Contains(err.Error(), "soft 1") || !strings.Contains(err.Error(), "hard 2") {
		t.Errorf("Do returned %v, want both errors", err)
	}
	if err := h.Do(func() {}); err != nil {
		t.Errorf("a second Do returned the first one's errors: %v", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("TempDir %s is gone before Close: %v", dir, err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if strings.Join(order, ",") != "second,first" {
		t.Errorf("cleanups ran as %v, want second, first", order)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("TempDir %s after Close: %v", dir, err)
	}
	if err := h.Close(); err != nil || len(order) != 2 {
		t.Errorf("a second Close: %v, cleanups %v", err, order)
	}
}
