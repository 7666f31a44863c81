package dockertest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
)

// TB is what the constructors (Run, NewNetwork, NewVolume, BuildImage)
// need of their caller: a name for the labels, a temporary directory,
// cleanups to register, and a way to fail. testing.TB satisfies it in
// tests; a Harness does outside them.
type TB interface {
	Helper()
	Name() string
	TempDir() string
	Cleanup(func())
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// Harness is a TB for a program rather than a test (`shoal demo faults
// --hosts`): Do runs a function that calls the constructors, as a test
// body runs, and Close removes what they made, as a test's cleanups do.
// Fatalf ends the function Do runs (runtime.Goexit in Do's goroutine,
// as testing's FailNow does) and Do returns the error; Errorf records an
// error and goes on. Cleanups run on Close in the reverse order of their
// registration, once; the program calls Close on every path out,
// including an error and a signal (a context cancelled by Ctrl-C).
type Harness struct {
	name string
	log  io.Writer

	mu       sync.Mutex
	cleanups []func()
	errs     []error
	closed   bool
}

// NewHarness returns a Harness whose resources carry name in their
// shoal-test.test label; log receives Logf's lines (nil: discarded).
func NewHarness(name string, log io.Writer) *Harness {
	if log == nil {
		log = io.Discard
	}
	return &Harness{name: name, log: log}
}

// Do runs fn in a goroutine of its own and waits for it. It returns the
// errors fn reported with Errorf or Fatalf (a Fatalf ends fn at once).
// fn must call Fatalf only from that goroutine, as a test's body does.
func (h *Harness) Do(fn func()) error {
	h.mu.Lock()
	before := len(h.errs)
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
	h.mu.Lock()
	defer h.mu.Unlock()
	return errors.Join(h.errs[before:]...)
}

// Helper does nothing: there are no test frames to skip.
func (h *Harness) Helper() {}

// Name is the name given to NewHarness.
func (h *Harness) Name() string { return h.name }

// TempDir makes a new temporary directory, removed by Close. It calls
// Fatalf if it cannot.
func (h *Harness) TempDir() string {
	dir, err := os.MkdirTemp("", "shoal-"+sanitize(h.name)+"-")
	if err != nil {
		h.Fatalf("dockertest: %v", err)
	}
	h.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Cleanup registers f to run on Close. After Close it runs f at once.
func (h *Harness) Cleanup(f func()) {
	h.mu.Lock()
	if !h.closed {
		h.cleanups = append(h.cleanups, f)
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	f()
}

// Logf writes a line to the harness's log.
func (h *Harness) Logf(format string, args ...any) {
	fmt.Fprintf(h.log, format+"\n", args...)
}

// Errorf records an error, which Do (or Close, during the cleanups)
// returns.
func (h *Harness) Errorf(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errs = append(h.errs, fmt.Errorf(format, args...))
}

// Fatalf records an error and ends the calling goroutine, which must be
// the one Do started.
func (h *Harness) Fatalf(format string, args ...any) {
	h.Errorf(format, args...)
	runtime.Goexit()
}

// Close runs the cleanups, last registered first, and returns the errors
// they reported. Later calls return nil.
func (h *Harness) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	fs := h.cleanups
	h.cleanups = nil
	before := len(h.errs)
	h.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return errors.Join(h.errs[before:]...)
}
