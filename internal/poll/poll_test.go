package poll

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// fakeT records what WaitFor does to a test. Fatalf ends the calling
// goroutine, as testing.T's does.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	panic(f)
}

// run calls WaitFor with a fake test and returns the failure, if any.
func run(timeout time.Duration, cond func() bool) (failed string) {
	f := &fakeT{}
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
		failed = f.failed
	}()
	WaitFor(f, timeout, "the thing", cond)
	return ""
}

func TestWaitFor(t *testing.T) {
	var calls atomic.Int32
	if failed := run(time.Minute, func() bool { return calls.Add(1) == 3 }); failed != "" || calls.Load() != 3 {
		t.Fatalf("a condition true on the third call: failed %q after %d calls", failed, calls.Load())
	}
	start := time.Now()
	failed := run(50*time.Millisecond, func() bool { return false })
	if want := "timed out after 50ms waiting for the thing"; failed != want {
		t.Fatalf("a condition never true: failed %q, want %q", failed, want)
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 10*time.Second {
		t.Fatalf("gave up after %v, want about 50ms", d)
	}
}
