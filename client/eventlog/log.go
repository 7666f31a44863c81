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

// Writer appends events to a log as JSON Lines, flushed as they are
// written, so that a tool tailing the file, or reading it after a crash,
// sees every event. A nil *Writer writes nothing. It is safe for
// concurrent use.
type Writer struct {
	mu  sync.Mutex
	f   *os.File // nil unless the Writer opened it
	w   *bufio.Writer
	err error // the first write error; later writes are dropped
}

// Create opens the log at path for appending, creating it if needed.
func Create(path string) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("eventlog: %w", err)
	}
	return &Writer{f: f, w: bufio.NewWriter(f)}, nil
}

// NewWriter writes the log to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriter(w)} }

// Write stamps ev with its name and, if it has none, the time now, and
// appends it.
func (l *Writer) Write(ev Event) {
	if l == nil {
		return
	}
	m := ev.meta()
	m.Event = ev.name()
	if m.TS == 0 {
		m.TS = time.Now().UnixMilli()
	}
	b, err := json.Marshal(ev)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
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
	if err == nil {
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
// naming it, except a last line without its newline (a writer killed
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

// Poll returns the events appended since the last Poll.
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
			return evs, fmt.Errorf("%s line %d: %w", t.Path, t.line, err)
		default:
			evs = append(evs, ev)
		}
		b = b[i+1:]
	}
	t.partial = slices.Clone(b)
	return evs, nil
}
