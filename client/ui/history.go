package ui

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"shoal/client/eventlog"
)

// History is the history server (`shoal history`): the same pages and API
// for every event log in a directory, read as they are written, so the
// logs of applications still running, or killed, are shown too (without
// app_end they are "incomplete").
type History struct {
	*Server
	dir  string
	opts Options

	mu      sync.Mutex           // guards entries and byID; a log's model has its own goroutine
	entries map[string]*logEntry // by file name
	byID    map[string]*logEntry
}

type logEntry struct {
	entry
	path string
	tail *eventlog.Tail
	log  *slog.Logger
	err  error // the log's last read error, if any; owned by the tracker's goroutine
}

// NewHistory serves the event logs in dir: every regular file whose name
// does not start with a dot. Logs that appear later are found when the
// index or the API's application list is asked for.
func NewHistory(dir string, opts Options) (*History, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		if err == nil {
			err = fmt.Errorf("not a directory")
		}
		return nil, fmt.Errorf("ui: event logs %s: %w (give the directory the drivers' --event-log files are in)", dir, err)
	}
	opts.Registry = nil // the driver's metrics are the live driver's
	h := &History{dir: dir, opts: opts, entries: map[string]*logEntry{}, byID: map[string]*logEntry{}}
	srv, err := newServer(opts, h, false)
	if err != nil {
		return nil, err
	}
	h.Server = srv
	h.scan()
	return h, nil
}

// Close stops every log's goroutine. Shut the server down first.
func (h *History) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.entries {
		e.t.close()
	}
}

// scan loads the logs not seen yet.
func (h *History) scan() {
	des, err := os.ReadDir(h.dir)
	if err != nil {
		h.opts.Logger.Error("ui: history: read the event log directory", "dir", h.dir, "err", err)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") || !de.Type().IsRegular() || h.entries[name] != nil {
			continue
		}
		e := &logEntry{path: filepath.Join(h.dir, name), tail: &eventlog.Tail{Path: filepath.Join(h.dir, name)}, log: h.opts.Logger}
		e.t = newTracker(h.opts, false, nil)
		e.refresh = e.poll
		e.poll()
		id := strings.TrimSuffix(name, filepath.Ext(name))
		e.t.do(func(m *model) {
			if m.app != "" {
				id = m.app
			}
		})
		if h.byID[id] != nil {
			id += "@" + name
		}
		e.id = id
		h.entries[name] = e
		h.byID[id] = e
	}
}

// poll applies what was appended to the log since the last poll, unless
// the log is complete.
func (e *logEntry) poll() {
	e.t.do(func(m *model) {
		if m.complete {
			return
		}
		evs, err := e.tail.Poll()
		for _, ev := range evs {
			m.apply(ev)
		}
		if err != nil && (e.err == nil || err.Error() != e.err.Error()) {
			e.log.Error("ui: history: the event log has a line that does not parse; it is left out", "err", err)
		}
		e.err = err
	})
}

func (h *History) list() []*entry {
	h.scan()
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*entry
	for _, name := range slices.Sorted(maps.Keys(h.entries)) {
		out = append(out, &h.entries[name].entry)
	}
	return out
}

func (h *History) get(id string) *entry {
	h.mu.Lock()
	e := h.byID[id]
	h.mu.Unlock()
	if e == nil {
		h.scan()
		h.mu.Lock()
		e = h.byID[id]
		h.mu.Unlock()
	}
	if e == nil {
		return nil
	}
	return &e.entry
}
