package client

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLineNumber(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.txt")
	text := "a b\n\nc d\r\n" + strings.Repeat("x", 300<<10) + "\nlast"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		off  int64
		want int64
	}{
		{0, 1},
		{4, 2},                      // the empty line
		{5, 3},                      // "c d\r"
		{10, 4},                     // the long line, past one read buffer
		{int64(len(text)) - 4, 5},   // "last", without a newline
		{int64(len(text)) + 100, 5}, // past the end: the last line
	}
	for _, tc := range tests {
		if got, err := lineNumber(openFile(path), tc.off); err != nil || got != tc.want {
			t.Errorf("lineNumber(%d) = %d, %v; want %d", tc.off, got, err, tc.want)
		}
	}
	if _, err := lineNumber(openFile(filepath.Join(t.TempDir(), "gone")), 0); err == nil {
		t.Error("lineNumber of a missing file: no error")
	}
	p := newInputPanic(path, 5, "bad", openFile(path))
	if msg := p.Error(); !strings.HasPrefix(msg, "input "+path+" line 3: bad\n") || !strings.Contains(msg, "goroutine ") {
		t.Errorf("inputPanic: %q", msg)
	}
}

func openFile(path string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return os.Open(path) }
}
