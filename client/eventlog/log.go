package eventlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sync"
	"time"
)

// Meta is what every event has: when it happened, in Unix milliseconds,
// and its name.
type Meta struct {
	TS    int64  `json:"ts"`
	Event string `json:"event"`
}

func (m *Meta) meta() *Meta { return m }

// Time is when the event happened.
func (m *Meta) Time() time.Time { return time.UnixMilli(m.TS) }

// Event is one record of the log: a pointer to one of the types of
// events.go. Only this package's types are events.
type Event interface {
	name() string
	meta() *Meta
}

// Name is the event's name in the log ("task_end").
func Name(ev Event) string { return ev.name() }

// Timestamp is when ev happened, in Unix milliseconds (its ts).
func Timestamp(ev Event) int64 { return ev.meta().TS }

// Writer appends events to a log as JSON Lines, flushed as they are
// written, so that a tool tailing the file, or reading it after a crash,
// sees every event, and hands each event to its listeners (AddListener).
// A nil *Writer writes nothing. It is safe for concurrent use.
type Writer struct {
	mu        sync.Mutex
	f         *os.File // nil unless the Writer opened it
	w         *bufio.Writer
	err       error // the first write error; later writes are dropped
	listeners []func(Event)
}

// Create opens the log at path for appending, creating it if needed.
func Create(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	return &Writer{f: f, w: bufio.NewWriter(f)}, nil
}

// NewWriter writes the log to w. With w nil it writes no log: the
// events only reach the listeners (the live UI with no event log).
func NewWriter(w io.Writer) *Writer {
	if w == nil {
		return &Writer{}
	}
	return &Writer{w: bufio.NewWriter(w)}
}

// AddListener makes f receive every event written from now on, in the
// log's order. f is called synchronously by Write, with the Writer's lock
// held (that is what keeps the order): it must be cheap and never block
// (hand the event to a bounded queue and return, say), and must not call
// Write. It must not modify the event; the event is the caller's, which
// does not change it after Write.
func (l *Writer) AddListener(f func(Event)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.listeners = append(l.listeners, f)
}

// Write stamps ev with its name and, if it has none, the time now,
// appends it and hands it to the listeners.
func (l *Writer) Write(ev Event) {
	if l == nil {
		return
	}
	m := ev.meta()
	m.Event = ev.name()
	if m.TS == 0 {
		m.TS = time.Now().UnixMilli()
	}
	var b []byte
	var err error
	if l.w != nil {
		b, err = json.Marshal(ev)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.listeners {
		f(ev)
	}
	if l.err != nil || l.w == nil {
		return
	}
	if err == nil {
		l.w.Write(b)
		l.w.WriteByte('\n')
		err = l.w.Flush()
	}
	l.err = err
}

// Close flushes the log and closes the file Create opened. It returns
// the first error any write met.
func (l *Writer) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.err
	if err == nil && l.w != nil {
		err = l.w.Flush()
	}
	if l.f != nil {
		err = errors.Join(err, l.f.Close())
		l.f = nil
	}
	if err != nil {
		return fmt.Errorf("eventlog: %w", err)
	}
	return nil
}

// ErrUnknownEvent is the error of Decode for a line whose event is not
// in the contract (a newer writer's); readers skip such lines.
var ErrUnknownEvent = errors.New("eventlog: unknown event")

// Decode parses one line of a log.
func Decode(line []byte) (Event, error) {
	var m Meta
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	ev, ok := New(m.Event)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownEvent, m.Event)
	}
	if err := json.Unmarshal(line, ev); err != nil {
		return nil, fmt.Errorf("eventlog: %s event: %w", m.Event, err)
	}
	return ev, nil
}

// ReadFile reads a whole log. A line that does not parse is an error
// naming the first such line (returned with the events of every other), except a last line without its newline (a writer killed
// mid-line), which is left out; events unknown to this version are
// skipped.
func ReadFile(path string) ([]Event, error) {
	t := Tail{Path: path}
	return t.Poll()
}

// Tail reads a log while its writer appends to it: each Poll returns the
// events of the complete lines written since the last one. A log that
// does not exist yet is empty.
type Tail struct {
	Path    string
	off     int64
	line    int    // lines read so far
	partial []byte // a line whose newline is not written yet
}

// Poll returns the events appended since the last Poll. A line that does
// not parse is left out and named in the error, returned with the events
// of the lines around it; the next Poll goes on after it.
func (t *Tail) Poll() ([]Event, error) {
	f, err := os.Open(t.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(t.off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	t.off += int64(len(b))
	b = append(t.partial, b...)
	var evs []Event
	var bad error
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		t.line++
		ev, err := Decode(b[:i])
		switch {
		case errors.Is(err, ErrUnknownEvent):
		case err != nil:
			if bad == nil {
				bad = fmt.Errorf("%s line %d: %w", t.Path, t.line, err)
			}
		default:
			evs = append(evs, ev)
		}
		b = b[i+1:]
	}
	t.partial = slices.Clone(b)
	return evs, bad
}
