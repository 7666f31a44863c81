// Package tail keeps the end of a child process's output, to quote when
// it fails.
package tail

import (
	"bytes"
	"sync"
)

// Buffer keeps the last Max bytes written to it. It is safe for
// concurrent use (exec copies a child's stdout and stderr from two
// goroutines).
type Buffer struct {
	Max int

	mu  sync.Mutex
	buf bytes.Buffer
}

func (t *Buffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(b)
	if over := t.buf.Len() - t.Max; over > 0 {
		t.buf.Next(over)
	}
	return len(b), nil
}

func (t *Buffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
