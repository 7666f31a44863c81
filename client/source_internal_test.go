package client

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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

// TestFileSplits: a single file is cut into about parts splits, one per
// partition; many small files are packed, in order, into about parts
// partitions, each split counted with fileOpenCost.
func TestFileSplits(t *testing.T) {
	files := func(sizes ...int64) []inputFile {
		var fs []inputFile
		for i, s := range sizes {
			fs = append(fs, inputFile{path: fmt.Sprintf("f%03d", i), size: s})
		}
		return fs
	}
	many := func(n int, size int64) []inputFile {
		return files(slices.Repeat([]int64{size}, n)...)
	}
	for _, tc := range []struct {
		name          string
		files         []inputFile
		parts         int
		align         int64
		splits, packs int
	}{
		{"one file", files(1000), 8, 1, 8, 8},
		{"one file, aligned", files(1000), 8, 100, 5, 5},
		{"one large file", files(1 << 30), 8, 1, 8, 8},
		{"an empty file", files(0), 4, 1, 1, 1},
		{"a few files, each cut as one file is", files(1000, 1000, 1000), 8, 1, 9, 9},
		{"many small files", many(3400, 350<<10), 8, 1, 3400, 8},
		{"many tiny files", many(10000, 1000), 4, 1, 10000, 4},
		{"small files, one large", append(files(1<<30), many(100, 1000)...), 4, 1, 104, 5},
	} {
		splits, starts := fileSplits(tc.files, tc.parts, tc.align)
		if len(splits) != tc.splits || len(starts)-1 != tc.packs {
			t.Errorf("%s: %d splits in %d partitions, want %d in %d", tc.name, len(splits), len(starts)-1, tc.splits, tc.packs)
		}
		// The splits cover every file, in order, and the partitions every
		// split, in order.
		var at int64
		f := 0
		for i, s := range splits {
			if s.Path != tc.files[f].path || s.Start != at || s.First != (at == 0) {
				t.Fatalf("%s: split %d is %+v, want %s from %d", tc.name, i, s, tc.files[f].path, at)
			}
			at = s.End
			if at == tc.files[f].size {
				f, at = f+1, 0
			}
		}
		if f != len(tc.files) || starts[0] != 0 || starts[len(starts)-1] != len(splits) {
			t.Fatalf("%s: splits end at file %d of %d; partitions %v", tc.name, f, len(tc.files), starts)
		}
		for i := 1; i < len(starts); i++ {
			if starts[i] <= starts[i-1] {
				t.Fatalf("%s: partition %d is empty: %v", tc.name, i-1, starts)
			}
		}
	}
}

func TestDefaultPartitions(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		slots int
		sizes []int64
		want  int
	}{
		{4, []int64{1000}, 4},                  // one wave, however small
		{4, []int64{512 * mib}, 4},             // 128 MiB each
		{4, []int64{512*mib + 1}, 8},           // two waves
		{4, []int64{600 * mib, 600 * mib}, 12}, // 1.2 GB: three waves
		{0, []int64{100 * mib}, 1},             // no slots counted: one
		{3, nil, 3},                            // an empty input
	} {
		var files []inputFile
		for i, s := range tc.sizes {
			files = append(files, inputFile{path: fmt.Sprint(i), size: s})
		}
		c := &Context{slots: tc.slots}
		if got := c.defaultPartitions(files); got != tc.want {
			t.Errorf("%d slots, sizes %v: %d partitions, want %d", tc.slots, tc.sizes, got, tc.want)
		}
	}
}
