package eventlog_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shoal/client/eventlog"
)

// TestEveryEventRoundTrips writes one event of every kind, with every
// field set, and reads it back: each line passes Check, and decodes to
// an event equal to the one written.
func TestEveryEventRoundTrips(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	w, err := eventlog.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var written []eventlog.Event
	for _, name := range eventlog.Names() {
		ev, ok := eventlog.New(name)
		if !ok {
			t.Fatalf("New(%q) = false", name)
		}
		w.Write(ev)
		written = append(written, ev)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if len(lines) != len(written) {
		t.Fatalf("%d lines, %d events", len(lines), len(written))
	}
	for i, l := range lines {
		if err := eventlog.Check(l); err != nil {
			t.Errorf("line %d: %v", i+1, err)
		}
		if !bytes.Contains(l, []byte(`"event":"`+eventlog.Names()[i]+`"`)) || !bytes.Contains(l, []byte(`"ts":`)) {
			t.Errorf("line %d lacks its name or ts: %s", i+1, l)
		}
	}
	read, err := eventlog.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != len(written) {
		t.Fatalf("read %d events, wrote %d", len(read), len(written))
	}
	for i := range read {
		if eventlog.Name(read[i]) != eventlog.Name(written[i]) {
			t.Errorf("event %d: read %s, wrote %s", i, eventlog.Name(read[i]), eventlog.Name(written[i]))
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`{"ts":1,"event":"job_start","job":0}`, `without "action"`},
		{`{"ts":1,"event":"job_start","job":0,"action":"count","jobs":1}`, `"jobs", which its type does not have`},
		{`{"ts":1,"event":"job_start","job":"0","action":"count"}`, `cannot unmarshal`},
		{`{"ts":1,"event":"job_begun"}`, `unknown event`},
		{`{"ts":1,"event":"task_end","stage":1,"stage_attempt":0,"partition":0,"attempt":0,"task":1,"kind":"map","worker":"w","node":"n","status":"succeeded","reason":""}`, `without "duration_ms"`},
	} {
		err := eventlog.Check([]byte(tc.line))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Check(%s) = %v, want an error with %q", tc.line, err, tc.want)
		}
	}
	ok := `{"ts":1,"event":"node_added","node":"n","addr":"a","pid":3}` // reason is omitted unless revived
	if err := eventlog.Check([]byte(ok)); err != nil {
		t.Errorf("Check(%s) = %v", ok, err)
	}
}

// TestTail reads a log as it is written, a line split across two polls
// and an event a newer writer added skipped.
func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.jsonl")
	tail := eventlog.Tail{Path: path}
	if evs, err := tail.Poll(); err != nil || len(evs) != 0 {
		t.Fatalf("a log not yet created: %v, %v", evs, err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString(`{"ts":1,"event":"app_start","app":"a"}` + "\n" + `{"ts":2,"event":"some_new_event"}` + "\n" + `{"ts":3,"event":"job_st`)
	evs, err := tail.Poll()
	if err != nil || len(evs) != 1 || eventlog.Name(evs[0]) != "app_start" {
		t.Fatalf("first poll: %v, %v", evs, err)
	}
	f.WriteString(`art","job":0,"action":"count"}` + "\n")
	evs, err = tail.Poll()
	if err != nil || len(evs) != 1 {
		t.Fatalf("second poll: %v, %v", evs, err)
	}
	if js, ok := evs[0].(*eventlog.JobStart); !ok || js.Action != "count" || js.TS != 3 {
		t.Fatalf("second poll: %#v", evs[0])
	}
	// A corrupt line is left out, named, and costs nothing around it.
	f.WriteString(`{"ts":4,"event":"job_start","job":1,"action":"a"}` + "\n" + "not json\n" + `{"ts":6,"event":"job_start","job":2,"action":"b"}` + "\n" + `{"ts":7,"event":"job_st`)
	evs, err = tail.Poll()
	if err == nil || !strings.Contains(err.Error(), "line 5") || len(evs) != 2 || evs[0].(*eventlog.JobStart).Job != 1 || evs[1].(*eventlog.JobStart).Job != 2 {
		t.Fatalf("a corrupt line between two: %v, %v; want both events and an error naming line 5", evs, err)
	}
	f.WriteString(`art","job":3,"action":"c"}` + "\n")
	if evs, err = tail.Poll(); err != nil || len(evs) != 1 || evs[0].(*eventlog.JobStart).Job != 3 {
		t.Fatalf("the poll after a corrupt line: %v, %v", evs, err)
	}
	if _, err := eventlog.Decode([]byte(`{"event":"x"}`)); !errors.Is(err, eventlog.ErrUnknownEvent) {
		t.Fatalf("Decode of an unknown event: %v", err)
	}
}

// TestListeners: listeners get every event, in the log's order, with or
// without a file.
func TestListeners(t *testing.T) {
	var buf bytes.Buffer
	for _, w := range []*eventlog.Writer{eventlog.NewWriter(&buf), eventlog.NewWriter(nil)} {
		var got []string
		w.AddListener(func(ev eventlog.Event) { got = append(got, eventlog.Name(ev)) })
		for _, name := range eventlog.Names() {
			ev, _ := eventlog.New(name)
			w.Write(ev)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != strings.Join(eventlog.Names(), ",") {
			t.Errorf("listener got %v", got)
		}
	}
	if n := strings.Count(buf.String(), "\n"); n != len(eventlog.Names()) {
		t.Errorf("the log has %d lines, want %d", n, len(eventlog.Names()))
	}
}
