package poll

import (
	"testing"
	"time"
)

// Interval is the pause between two evaluations of a condition.
const Interval = 5 * time.Millisecond

// WaitFor evaluates cond every Interval until it returns true, and fails
// the test (t.Fatalf: call it from the test's goroutine) if it has not
// within timeout: "timed out after TIMEOUT waiting for WHAT". what says
// what was awaited, e.g. "the node to expire the application". cond may
// itself fail the test, or stash a value for the caller to use once
// WaitFor returns.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(Interval)
	}
}
