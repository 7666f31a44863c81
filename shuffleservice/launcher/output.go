package launcher

import (
	"bytes"
	"sync"
)

// A worker's output: every line of its stdout and stderr is copied to the
// node's log (at debug level, prefixed with the worker's ID), and the end
// of its stderr is kept to quote when it fails. Both are bounded: a line
// longer than maxLine is cut, and the tail keeps tailBytes.

const (
	// maxLine bounds a line copied to the log; the rest of a longer line
	// is dropped.
	maxLine = 4 << 10
	// tailBytes is how much of a worker's stderr is kept.
	tailBytes = 4 << 10
)

// lineWriter splits what a process writes into lines and hands each to
// emit, cut at maxLine bytes. exec copies each stream from one goroutine,
// so Write is not called concurrently; flush is called after the copy
// ended.
type lineWriter struct {
	emit     func(line []byte)
	buf      []byte // the current line, at most maxLine bytes
	dropping bool   // the current line was cut: skip to its end
}

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		chunk := p
		if i >= 0 {
			chunk = p[:i]
		}
		if !w.dropping {
			room := maxLine - len(w.buf)
			if len(chunk) > room {
				w.buf = append(w.buf, chunk[:room]...)
				w.emit(w.buf)
				w.buf = w.buf[:0]
				w.dropping = true
			} else {
				w.buf = append(w.buf, chunk...)
			}
		}
		if i < 0 {
			break
		}
		if !w.dropping {
			w.emit(w.buf)
		}
		w.buf, w.dropping = w.buf[:0], false
		p = p[i+1:]
	}
	return n, nil
}

// flush emits a last line without its newline.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 && !w.dropping {
		w.emit(w.buf)
	}
	w.buf, w.dropping = w.buf[:0], false
}

// ring keeps the last tailBytes bytes written to it. Safe for concurrent
// use.
type ring struct {
	mu    sync.Mutex
	buf   [tailBytes]byte
	start int // of the oldest byte
	n     int // bytes held
}

func (r *ring) write(p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(p) >= len(r.buf) {
		copy(r.buf[:], p[len(p)-len(r.buf):])
		r.start, r.n = 0, len(r.buf)
		return
	}
	for len(p) > 0 {
		end := (r.start + r.n) % len(r.buf)
		c := copy(r.buf[end:], p)
		// copy wrote c bytes at end; any beyond the free space overwrote
		// the oldest ones.
		if over := r.n + c - len(r.buf); over > 0 {
			r.start = (r.start + over) % len(r.buf)
			r.n -= over
		}
		r.n += c
		p = p[c:]
	}
}

func (r *ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	first := r.buf[r.start:min(r.start+r.n, len(r.buf))]
	rest := r.n - len(first)
	return string(first) + string(r.buf[:rest])
}
