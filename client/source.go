package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"shoal/objstore"
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

// split is a byte range of an input file (or object) read by one
// partition.
type split struct {
	Path  string `json:"path"` // a file's path, or an object's s3:// URI
	Start int64  `json:"start"`
	End   int64  `json:"end"`
	First bool   `json:"first"` // the split begins its file
	// Size and ETag are the object's, for an s3:// split: a read past End
	// stops at Size, and every read is pinned to ETag.
	Size int64  `json:"size,omitempty"`
	ETag string `json:"etag,omitempty"`
}

// inputFile is one file (or object) of an input.
type inputFile struct {
	path  string
	size  int64
	mtime time.Time
	etag  string // an object's
}

// skippedName reports whether a file or directory below an input
// directory is skipped: hidden ('.') and underscore ('_') names, as
// Hadoop and Spark skip them (_SUCCESS, .part-00000.crc, _temporary/,
// the temporary directory of an output being written).
func skippedName(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// inputFiles lists the files an input reads: path itself if it is a file,
// or every file below the directory path, recursively, by path in
// lexical (byte) order, leaving out skippedName files and directories.
// A symbolic link to a file is read; a symbolic link to a directory, or
// anything that is not a regular file, is an error naming it: no input
// is left out without a word.
func inputFiles(path string) ([]inputFile, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("client: input: %w", err)
	}
	if !info.IsDir() {
		if !info.Mode().IsRegular() {
			return nil, fmt.Errorf("client: input %s is not a regular file or a directory (%v)", path, info.Mode().Type())
		}
		return []inputFile{{path: path, size: info.Size(), mtime: info.ModTime()}}, nil
	}
	var files []inputFile
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case p == path:
			return nil
		case skippedName(d.Name()) && d.IsDir():
			return filepath.SkipDir
		case skippedName(d.Name()), d.IsDir():
			return nil
		}
		fi, err := os.Stat(p) // follows a symbolic link
		if err != nil {
			return err
		}
		switch {
		case fi.Mode().IsRegular():
			files = append(files, inputFile{path: p, size: fi.Size(), mtime: fi.ModTime()})
			return nil
		case fi.IsDir():
			return fmt.Errorf("%s is a symbolic link to a directory, which is not followed (pass that directory as an input of its own)", p)
		}
		return fmt.Errorf("%s is not a regular file (%v): remove it from the input directory", p, fi.Mode().Type())
	})
	if err != nil {
		return nil, fmt.Errorf("client: input %s: %w", path, err)
	}
	slices.SortFunc(files, func(a, b inputFile) int { return strings.Compare(a.path, b.path) })
	return files, nil
}

// InputIdentity identifies the input at path as TextFile, CSVFile and
// GensortFile read it: its absolute path, the number and total size of
// its files, and a fingerprint of their names, sizes and modification
// times. It stays the same while no file of the input is added, removed,
// resized or rewritten, and costs a stat per file. A checkpoint records
// it (CheckpointInfo.Input) so that a later run resumes only from a
// checkpoint of the same input.
//
// For an s3:// input it is the URI, the number and total size of its
// objects and a fingerprint of their keys, sizes and ETags (one listing),
// with the S3 configuration of the AWS environment variables;
// Context.InputIdentity uses the context's Options.S3.
func InputIdentity(path string) (string, error) {
	if objstore.IsURI(path) {
		cl := newS3Clients(objstore.Options{})
		defer cl.close()
		return s3InputIdentity(context.Background(), cl, path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("client: input %s: %w", path, err)
	}
	files, err := inputFiles(abs)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	var total int64
	for _, f := range files {
		rel, _ := filepath.Rel(abs, f.path)
		fmt.Fprintf(h, "%q %d %d\n", rel, f.size, f.mtime.UnixNano())
		total += f.size
	}
	plural := "s"
	if len(files) == 1 {
		plural = ""
	}
	return fmt.Sprintf("%q: %d file%s, %d bytes, fingerprint %x", abs, len(files), plural, total, h.Sum(nil)[:8]), nil
}

// InputIdentity is the package's InputIdentity, with the context's S3
// configuration (Options.S3) for an s3:// input.
func (c *Context) InputIdentity(ctx context.Context, path string) (string, error) {
	if objstore.IsURI(path) {
		return s3InputIdentity(ctx, c.s3, path)
	}
	return InputIdentity(path)
}

func s3InputIdentity(ctx context.Context, clients *s3Clients, uri string) (string, error) {
	cl, err := clients.get("")
	if err != nil {
		return "", fmt.Errorf("client: input %s: %w", uri, err)
	}
	return s3Identity(ctx, cl, uri)
}

// listInput lists the files of the input at path: inputFiles of a local
// path, s3Input of an s3:// URI (with Options.S3). It returns too the
// input's root, as inputRoots gives it (an absolute path, or the URI),
// and the S3 endpoint the workers read it from ("" for a local path).
func (c *Context) listInput(path string) (files []inputFile, root, endpoint string, err error) {
	if !objstore.IsURI(path) {
		root, _ = filepath.Abs(path)
		files, err = inputFiles(path)
		return files, root, "", err
	}
	cl, err := c.s3.get("")
	if err != nil {
		return nil, path, "", fmt.Errorf("client: input %s: %w", path, err)
	}
	files, err = s3Input(context.Background(), cl, path)
	return files, path, cl.Endpoint(), err
}

// fileOpenCost is what a split costs besides its bytes when splits are
// packed into partitions: opening its file, starting to read it (Spark
// SQL's spark.sql.files.openCostInBytes).
const fileOpenCost = 4 << 20

// fileSplits cuts files into splits of about total/parts bytes, aligned
// to align bytes (an empty file is one empty split), and packs
// consecutive splits into partitions of about (total + fileOpenCost per
// split)/parts, as Spark SQL packs files into FilePartitions: a
// directory of many small files makes about parts partitions, not one
// per file, and the order of the input's records is kept. Partition i
// reads splits[starts[i]:starts[i+1]]. A split of a single file's full
// size never shares a partition, so a single file is cut as before.
func fileSplits(files []inputFile, parts int, align int64) (splits []split, starts []int) {
	parts = max(1, parts)
	var total int64
	for _, f := range files {
		total += f.size
	}
	target := max(align, (total/int64(parts)+align-1)/align*align)
	for _, f := range files {
		for s := int64(0); s < f.size || s == 0; s += target {
			sp := split{Path: f.path, Start: s, End: min(s+target, f.size), First: s == 0}
			if objstore.IsURI(f.path) {
				sp.Size, sp.ETag = f.size, f.etag
			}
			splits = append(splits, sp)
			if f.size == 0 {
				break
			}
		}
	}
	weight := func(s split) int64 { return s.End - s.Start + fileOpenCost }
	var all int64
	for _, s := range splits {
		all += weight(s)
	}
	limit := (all + int64(parts) - 1) / int64(parts)
	var cur int64
	for i, s := range splits {
		if i == 0 || cur+weight(s) > limit {
			starts = append(starts, i)
			cur = 0
		}
		cur += weight(s)
	}
	return splits, append(starts, len(splits))
}

// maxPartitionBytes bounds the partitions DefaultPartitions makes of an
// input (Spark SQL's spark.sql.files.maxPartitionBytes).
const maxPartitionBytes = 128 << 20

// DefaultPartitions is how many partitions the file sources (TextFile,
// CSVFile, GensortFile) make of the input at path when given no minParts
// (0 or less): the fewest full waves of the cluster's task slots (as
// counted at NewContext) whose partitions hold at most 128 MiB each. It
// lists the input, as a file source does.
func (c *Context) DefaultPartitions(path string) (int, error) {
	files, _, _, err := c.listInput(path)
	if err != nil {
		return 0, err
	}
	return c.defaultPartitions(files), nil
}

func (c *Context) defaultPartitions(files []inputFile) int {
	var total int64
	for _, f := range files {
		total += f.size
	}
	slots := int64(max(1, c.slots))
	waves := max(1, (total+slots*maxPartitionBytes-1)/(slots*maxPartitionBytes))
	return int(slots * waves)
}

// fileSource makes the source node of a file input. An s3:// input is
// listed here, on the driver.
func fileSource(c *Context, op, path string, minParts int, align int64, factory any, p textParams) *node {
	files, root, endpoint, err := c.listInput(path)
	if minParts <= 0 {
		minParts = c.defaultPartitions(files)
	}
	p.Splits, p.Starts = fileSplits(files, minParts, align)
	p.Root, p.Endpoint = root, endpoint
	n := newNode(c, op, max(1, len(p.Starts)-1), mustSpec(factory, p))
	n.name = op + " " + filepath.Base(strings.TrimSuffix(path, "/"))
	n.setErr(err)
	return n
}

// inputRoots returns the absolute paths (or s3:// URIs) of the file
// inputs in n's lineage (up to truncated checkpoints, whose inputs are
// read already).
func inputRoots(n *node) []string {
	var out []string
	seen := map[int]bool{}
	for stack := []*node{n}; len(stack) > 0; {
		m := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[m.id] {
			continue
		}
		seen[m.id] = true
		switch m.op {
		case "textFile", "csvFile", "gensortFile":
			var p textParams
			if json.Unmarshal(m.spec.Params, &p) == nil && p.Root != "" {
				out = append(out, p.Root)
			}
		}
		for _, d := range m.deps {
			stack = append(stack, d.parent)
		}
	}
	return out
}

// TextFile reads the lines of a file, or of the files of a directory and
// its subdirectories (by path in lexical order, leaving out hidden and
// underscore names, see the package doc's "Inputs"), in about minParts
// partitions (0 or less: DefaultPartitions); small files share a
// partition (fileSplits). A line belongs to the split in which it starts; "\r\n"
// endings lose their "\r"; a line is held whole in memory, however long.
// Lines are bytes: nothing checks that they are UTF-8.
func TextFile(c *Context, path string, minParts int) *RDD[string] {
	return &RDD[string]{fileSource(c, "textFile", path, minParts, 1, textOp{}, textParams{})}
}

// CSVFile reads CSV files (as TextFile finds them) whose first line is a
// header, which is skipped in each file. Each line is one record (quoted
// fields may not span lines); a line that does not parse gives a record
// with Err set, so the job decides.
func CSVFile(c *Context, path string, minParts int) *RDD[CSVRecord] {
	n := fileSource(c, "csvFile", path, minParts, 1, textOp{}, textParams{SkipHeader: true})
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
	Splits []split `json:"splits"`
	// Starts: partition i reads Splits[Starts[i]:Starts[i+1]], in order
	// (fileSplits).
	Starts     []int `json:"starts"`
	SkipHeader bool  `json:"skip_header"`
	// Root is the input's absolute path (or s3:// URI), for the output
	// checks (inputRoots).
	Root string `json:"root,omitempty"`
	// Endpoint is the S3 service of an s3:// input, the one the driver
	// listed it from.
	Endpoint string `json:"endpoint,omitempty"`
}

// partSplits are the splits partition part reads.
func (p *textParams) partSplits(part int) []split {
	if part < 0 || part+1 >= len(p.Starts) {
		return nil
	}
	return p.Splits[p.Starts[part]:p.Starts[part+1]]
}

type textOp struct{}

func (textOp) op(b *build, params json.RawMessage, _ []any) (any, error) {
	var p textParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	return seqFn[string](func(tc *taskContext, part int) iter.Seq[string] {
		return countedIn(tc, func(yield func(string) bool) {
			for _, s := range p.partSplits(part) {
				if !readLines(tc, &p, s, yield) {
					return
				}
			}
		})
	}), nil
}

// openInput opens the file or object of split s at byte off, to be read
// up to limit (< 0: to its end). An object is read with ranged GETs, the
// first of [off, first) (objstore.RangeReader).
func openInput(tc *taskContext, p *textParams, s split, off, first, limit int64) (io.ReadCloser, error) {
	if objstore.IsURI(s.Path) {
		return openS3Split(tc, p.Endpoint, s, off, first, limit)
	}
	f, err := os.Open(s.Path)
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)) {
		// The driver saw it: this worker's machine does not (cluster mode).
		return nil, fmt.Errorf("input %s cannot be read on node %s: %w (a worker reads a local input on its own machine: with a cluster, put it on a file system every node mounts at the same path, or in S3, s3://bucket/prefix)",
			s.Path, tc.env.NodeAddr, pe.Err)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	if limit < 0 {
		return f, nil
	}
	return limitedFile{io.LimitReader(f, max(0, limit-off)), f}, nil
}

type limitedFile struct {
	io.Reader
	io.Closer
}

// readLines yields the lines that start in s: a split that does not
// begin its file first skips the rest of the line that started before it.
// It reads on past s.End to the end of its last line, and no further
// than it needs (a ranged read of an object asks first for the split and
// then for small windows). It reports whether the split was read to its
// end: false if yield asked to stop or the task failed.
func readLines(tc *taskContext, p *textParams, s split, yield func(string) bool) bool {
	pos := s.Start
	if !s.First {
		pos-- // a line starts at s.Start only if the byte before ends one
	}
	in, err := openInput(tc, p, s, pos, s.End, -1)
	if err != nil {
		tc.fail(fmt.Errorf("client: input: %w", err))
		return false
	}
	defer in.Close()
	r := bufio.NewReaderSize(in, 256<<10)
	if !s.First {
		for {
			chunk, err := r.ReadSlice('\n')
			pos += int64(len(chunk))
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF {
				return true
			}
			if err != nil {
				tc.fail(fmt.Errorf("client: input %s: %w", s.Path, err))
				return false
			}
			break
		}
	}
	header := s.First && p.SkipHeader
	start := pos
	defer func() { tc.addMetric("input_bytes", pos-start) }()
	lineStart := int64(-1) // offset of the line being yielded, or -1
	defer func() {
		if lineStart < 0 {
			return // not in yield: let any panic go as it is
		}
		if r := recover(); r != nil {
			panic(newInputPanic(s.Path, lineStart, r, func() (io.ReadCloser, error) {
				return openInput(tc, p, s, 0, lineStart, lineStart)
			}))
		}
	}()
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
			return false
		}
		if len(line) == 0 {
			return true
		}
		lineStart, pos = pos, pos+int64(len(line))
		line = bytes.TrimSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if header {
			header = false
		} else if tc.failed() || !yield(string(line)) {
			return false
		}
		lineStart = -1
		if err == io.EOF {
			return true
		}
	}
	return true
}

// inputPanic is a panic raised while a line of a text input was being
// processed (a user function that panics on a malformed line): the
// worker reports it with the input's name and the line's number, so
// that the person reading the job's error knows where to look, and with
// the stack of the original panic.
type inputPanic struct {
	path  string
	line  int64 // 1-based; 0 if the file could not be read to count it
	off   int64 // byte offset of the line
	value any
	stack []byte
}

// newInputPanic describes a panic raised at the line that starts at byte
// off of the input at path; open opens the input at its start, to count
// the lines before off.
func newInputPanic(path string, off int64, value any, open func() (io.ReadCloser, error)) *inputPanic {
	p := &inputPanic{path: path, off: off, value: value, stack: debug.Stack()}
	if n, err := lineNumber(open, off); err == nil {
		p.line = n
	}
	return p
}

func (p *inputPanic) Error() string {
	pos := fmt.Sprintf("line %d", p.line)
	if p.line == 0 {
		pos = fmt.Sprintf("byte %d", p.off)
	}
	return fmt.Sprintf("input %s %s: %v\n\n%s", p.path, pos, p.value, p.stack)
}

// Unwrap gives the panic's value if it is an error.
func (p *inputPanic) Unwrap() error {
	err, _ := p.value.(error)
	return err
}

// lineNumber is the 1-based number of the line that starts at byte off
// of the input open opens: one more than the newlines before it. It
// reads the input up to off, which only a failing task does.
func lineNumber(open func() (io.ReadCloser, error), off int64) (int64, error) {
	f, err := open()
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n := int64(1)
	buf := make([]byte, 256<<10)
	r := io.LimitReader(f, off)
	for {
		k, err := r.Read(buf)
		n += int64(bytes.Count(buf[:k], []byte{'\n'}))
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
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
// rest) pairs of 10 and 90 bytes, from a file or the files of a
// directory as TextFile finds them. A file whose size is not a multiple
// of 100 bytes fails the job.
func GensortFile(c *Context, path string, minParts int) *RDD[KV[string, string]] {
	return &RDD[KV[string, string]]{fileSource(c, "gensortFile", path, minParts, GensortRecordBytes, gensortOp{}, textParams{})}
}

type gensortOp struct{}

func (gensortOp) op(b *build, params json.RawMessage, _ []any) (any, error) {
	var p textParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	return seqFn[KV[string, string]](func(tc *taskContext, part int) iter.Seq[KV[string, string]] {
		return countedIn(tc, func(yield func(KV[string, string]) bool) {
			for _, s := range p.partSplits(part) {
				if !readGensort(tc, &p, s, yield) {
					return
				}
			}
		})
	}), nil
}

// readGensort yields the records of split s and reports whether it read
// them all: false if yield asked to stop or the task failed.
func readGensort(tc *taskContext, p *textParams, s split, yield func(KV[string, string]) bool) bool {
	f, err := openInput(tc, p, s, s.Start, s.End, s.End)
	if err != nil {
		tc.fail(fmt.Errorf("client: input: %w", err))
		return false
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 256<<10)
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
			return err == io.EOF
		}
		read += GensortRecordBytes
		s := string(rec[:]) // one allocation; key and rest share it
		if tc.failed() || !yield(KV[string, string]{s[:GensortKeyBytes], s[GensortKeyBytes:]}) {
			return false
		}
	}
}
