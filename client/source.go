package client

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Parallelize distributes an in-memory slice over parts partitions. The
// records travel with the tasks (as JSON), so keep it small.
func Parallelize[T any](c *Context, data []T, parts int) *RDD[T] {
	parts = max(1, parts)
	p := sliceParams[T]{}
	for i := range parts {
		p.Parts = append(p.Parts, data[i*len(data)/parts:(i+1)*len(data)/parts])
	}
	n := newNode(c, "parallelize", parts, opSpec{})
	b, err := json.Marshal(p)
	if err != nil {
		n.setErr(fmt.Errorf("client: Parallelize: %T records cannot be sent as JSON: %w", data, err))
	}
	n.spec = opSpec{Factory: mustSpec(sliceOp[T]{}, nil).Factory, Params: b}
	return &RDD[T]{n}
}

type sliceParams[T any] struct {
	Parts [][]T `json:"parts"`
}

type sliceOp[T any] struct{}

func (sliceOp[T]) op(b *build, params json.RawMessage, _ []any) (any, error) {
	var p sliceParams[T]
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	return seqFn[T](func(tc *taskContext, part int) iter.Seq[T] {
		return countedIn(tc, func(yield func(T) bool) {
			for _, v := range p.Parts[part] {
				if !yield(v) {
					return
				}
			}
		})
	}), nil
}

// Range is the integers [start, end) in parts partitions.
func Range(c *Context, start, end int64, parts int) *RDD[int64] {
	parts = max(1, parts)
	n := newNode(c, "range", parts, mustSpec(rangeOp{}, rangeParams{start, end, parts}))
	return &RDD[int64]{n}
}

type rangeParams struct {
	Start, End int64
	Parts      int
}

type rangeOp struct{}

func (rangeOp) op(b *build, params json.RawMessage, _ []any) (any, error) {
	var p rangeParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	return seqFn[int64](func(tc *taskContext, part int) iter.Seq[int64] {
		span := max(0, p.End-p.Start)
		lo := p.Start + span*int64(part)/int64(p.Parts)
		hi := p.Start + span*int64(part+1)/int64(p.Parts)
		return countedIn(tc, func(yield func(int64) bool) {
			for v := lo; v < hi; v++ {
				if !yield(v) {
					return
				}
			}
		})
	}), nil
}

// split is a byte range of an input file read by one partition.
type split struct {
	Path  string `json:"path"`
	Start int64  `json:"start"`
	End   int64  `json:"end"`
	First bool   `json:"first"` // the split begins its file
}

// fileSplits cuts the files at path (a file, or every regular file of a
// directory whose name does not start with '.' or '_') into about parts
// splits of similar size, aligned to align bytes.
func fileSplits(path string, parts int, align int64) ([]split, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("client: input %s: %w", path, err)
	}
	var files []string
	if info.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, fmt.Errorf("client: input %s: %w", path, err)
		}
		for _, e := range entries {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") && !strings.HasPrefix(e.Name(), "_") {
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
	} else {
		files = []string{path}
	}
	var total int64
	sizes := make([]int64, len(files))
	for i, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("client: input %s: %w", f, err)
		}
		sizes[i] = st.Size()
		total += st.Size()
	}
	target := max(align, (total/int64(max(1, parts))+align-1)/align*align)
	var out []split
	for i, f := range files {
		for s := int64(0); s < sizes[i] || s == 0; s += target {
			out = append(out, split{Path: f, Start: s, End: min(s+target, sizes[i]), First: s == 0})
			if sizes[i] == 0 {
				break
			}
		}
	}
	return out, nil
}

// TextFile reads the lines of a file or of the files of a directory, in
// about minParts partitions. A line belongs to the split in which it
// starts; "\r\n" endings lose their "\r".
func TextFile(c *Context, path string, minParts int) *RDD[string] {
	splits, err := fileSplits(path, minParts, 1)
	n := newNode(c, "textFile", max(1, len(splits)), mustSpec(textOp{}, textParams{Splits: splits}))
	n.name = "textFile " + filepath.Base(path)
	n.setErr(err)
	return &RDD[string]{n}
}

// CSVFile reads CSV files whose first line is a header, which is skipped.
// Each line is one record (quoted fields may not span lines); a line that
// does not parse gives a record with Err set, so the job decides.
func CSVFile(c *Context, path string, minParts int) *RDD[CSVRecord] {
	splits, err := fileSplits(path, minParts, 1)
	n := newNode(c, "csvFile", max(1, len(splits)), mustSpec(textOp{}, textParams{Splits: splits, SkipHeader: true}))
	n.name = "csvFile " + filepath.Base(path)
	n.setErr(err)
	lines := &RDD[string]{n}
	m := newNode(c, "parseCSV", n.parts, mustSpec(csvOp{}, nil), narrow(lines.n))
	return &RDD[CSVRecord]{m}
}

// CSVRecord is one line of a CSV file.
type CSVRecord struct {
	Fields []string
	Err    string // why the line did not parse, or ""
}

type textParams struct {
	Splits     []split `json:"splits"`
	SkipHeader bool    `json:"skip_header"`
}

type textOp struct{}

func (textOp) op(b *build, params json.RawMessage, _ []any) (any, error) {
	var p textParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	return seqFn[string](func(tc *taskContext, part int) iter.Seq[string] {
		return countedIn(tc, func(yield func(string) bool) {
			if part >= len(p.Splits) {
				return
			}
			readLines(tc, p.Splits[part], p.SkipHeader, yield)
		})
	}), nil
}

// readLines yields the lines that start in s: a split that does not
// begin its file first skips the rest of the line that started before it.
func readLines(tc *taskContext, s split, skipHeader bool, yield func(string) bool) {
	f, err := os.Open(s.Path)
	if err != nil {
		tc.fail(fmt.Errorf("client: input: %w", err))
		return
	}
	defer f.Close()
	pos := s.Start
	if !s.First {
		pos-- // a line starts at s.Start only if the byte before ends one
	}
	if _, err := f.Seek(pos, io.SeekStart); err != nil {
		tc.fail(err)
		return
	}
	r := bufio.NewReaderSize(f, 256<<10)
	if !s.First {
		for {
			chunk, err := r.ReadSlice('\n')
			pos += int64(len(chunk))
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				tc.fail(fmt.Errorf("client: input %s: %w", s.Path, err))
				return
			}
			break
		}
	}
	header := s.First && skipHeader
	start := pos
	defer func() { tc.addMetric("input_bytes", pos-start) }()
	var long []byte
	for pos < s.End {
		line, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = r.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && err != io.EOF {
			tc.fail(fmt.Errorf("client: input %s: %w", s.Path, err))
			return
		}
		if len(line) == 0 {
			return
		}
		pos += int64(len(line))
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if header {
			header = false
		} else if tc.failed() || !yield(string(line)) {
			return
		}
		if err == io.EOF {
			return
		}
	}
}

type csvOp struct{}

func (csvOp) op(b *build, _ json.RawMessage, parents []any) (any, error) {
	in, err := seqOf[string](parents[0])
	if err != nil {
		return nil, err
	}
	return seqFn[CSVRecord](func(tc *taskContext, part int) iter.Seq[CSVRecord] {
		return func(yield func(CSVRecord) bool) {
			var rd strings.Reader
			for line := range in(tc, part) {
				rd.Reset(line)
				cr := csv.NewReader(&rd)
				cr.FieldsPerRecord = -1
				fields, err := cr.Read()
				rec := CSVRecord{Fields: fields}
				if err != nil {
					rec = CSVRecord{Err: err.Error()}
				}
				if !yield(rec) {
					return
				}
			}
		}
	}), nil
}

// GensortRecordBytes is the size of a gensort record; its first
// GensortKeyBytes bytes are the key.
const (
	GensortRecordBytes = 100
	GensortKeyBytes    = 10
)

// GensortFile reads gensort-format records (100 bytes each) as (key,
// rest) pairs of 10 and 90 bytes.
func GensortFile(c *Context, path string, minParts int) *RDD[KV[string, string]] {
	splits, err := fileSplits(path, minParts, GensortRecordBytes)
	n := newNode(c, "gensortFile", max(1, len(splits)), mustSpec(gensortOp{}, textParams{Splits: splits}))
	n.name = "gensortFile " + filepath.Base(path)
	n.setErr(err)
	return &RDD[KV[string, string]]{n}
}

type gensortOp struct{}

func (gensortOp) op(b *build, params json.RawMessage, _ []any) (any, error) {
	var p textParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	return seqFn[KV[string, string]](func(tc *taskContext, part int) iter.Seq[KV[string, string]] {
		return countedIn(tc, func(yield func(KV[string, string]) bool) {
			if part >= len(p.Splits) {
				return
			}
			s := p.Splits[part]
			f, err := os.Open(s.Path)
			if err != nil {
				tc.fail(fmt.Errorf("client: input: %w", err))
				return
			}
			defer f.Close()
			r := bufio.NewReaderSize(io.NewSectionReader(f, s.Start, s.End-s.Start), 256<<10)
			var rec [GensortRecordBytes]byte
			var read int64
			defer func() { tc.addMetric("input_bytes", read) }()
			for {
				if _, err := io.ReadFull(r, rec[:]); err != nil {
					if err == io.ErrUnexpectedEOF {
						tc.fail(fmt.Errorf("client: %s: size is not a multiple of %d bytes", s.Path, GensortRecordBytes))
					} else if err != io.EOF {
						tc.fail(err)
					}
					return
				}
				read += GensortRecordBytes
				s := string(rec[:]) // one allocation; key and rest share it
				if tc.failed() || !yield(KV[string, string]{s[:GensortKeyBytes], s[GensortKeyBytes:]}) {
					return
				}
			}
		})
	}), nil
}
