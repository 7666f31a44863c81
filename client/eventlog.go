package client

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// eventLog appends the event log of DESIGN.md §8: JSON Lines, one object
// per event, each with ts (Unix milliseconds) and event. A nil *eventLog
// records nothing. Events are flushed as they are written, so a tool
// tailing the file, or reading it after a crash, sees every event.
type eventLog struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

func openEventLog(path string) (*eventLog, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("client: event log: %w", err)
	}
	return &eventLog{f: f, w: bufio.NewWriter(f)}, nil
}

// emit writes one event with the given fields.
func (l *eventLog) emit(event string, fields map[string]any) {
	if l == nil {
		return
	}
	m := make(map[string]any, len(fields)+2)
	for k, v := range fields {
		m[k] = v
	}
	m["ts"] = time.Now().UnixMilli()
	m["event"] = event
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Write(b)
	l.w.WriteByte('\n')
	l.w.Flush()
}

func (l *eventLog) close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.w.Flush(); err != nil {
		l.f.Close()
		return err
	}
	return l.f.Close()
}
