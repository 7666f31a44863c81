package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"shoal/client/eventlog"
	"shoal/internal/codec"
	"shoal/internal/fnref"
	"shoal/objstore"
)

// Actions run a job: the scheduler computes the RDD's partitions on the
// workers, each through a result sink, and brings the results back.

// Count returns the number of records.
func Count[T any](ctx context.Context, r *RDD[T]) (int64, error) {
	res, err := r.n.ctx.runJob(ctx, r.n, "count", mustSpec(countSink[T]{}, nil), allParts(r.n))
	if err != nil {
		return 0, err
	}
	var total int64
	for _, b := range res {
		if len(b) != 8 {
			return 0, fmt.Errorf("client: count: bad result of %d bytes", len(b))
		}
		total += int64(binary.BigEndian.Uint64(b))
	}
	return total, nil
}

type countSink[T any] struct{}

func (countSink[T]) sink(b *build, _ json.RawMessage, input any) (sinkFn, error) {
	in, err := seqOf[T](input)
	if err != nil {
		return nil, err
	}
	return func(tc *taskContext, part int) ([]byte, error) {
		var n uint64
		for range in(tc, part) {
			n++
		}
		tc.addMetric(eventlog.MetricRecordsOut, int64(n))
		return binary.BigEndian.AppendUint64(nil, n), nil
	}, nil
}

// Collect returns every record, partition after partition. The records
// travel in the tasks' results: keep them small.
func Collect[T any](ctx context.Context, r *RDD[T]) ([]T, error) {
	return collectParts[T](ctx, r, allParts(r.n), -1)
}

// Take returns the first n records, computing as few partitions as it
// can: one, then more if they did not hold n records.
func Take[T any](ctx context.Context, r *RDD[T], n int) ([]T, error) {
	var out []T
	for next, step := 0, 1; next < r.n.parts && len(out) < n; step *= 4 {
		parts := allParts(r.n)[next:min(r.n.parts, next+step)]
		got, err := collectParts[T](ctx, r, parts, n-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		next += len(parts)
	}
	return out[:min(n, len(out))], nil
}

type collectParams struct {
	Limit int `json:"limit"` // at most this many records per partition; < 0: all
}

func collectParts[T any](ctx context.Context, r *RDD[T], parts []int, limit int) ([]T, error) {
	res, err := r.n.ctx.runJob(ctx, r.n, "collect", mustSpec(collectSink[T]{}, collectParams{limit}), parts)
	if err != nil {
		return nil, err
	}
	c, err := codecOf[T]()
	if err != nil {
		return nil, err
	}
	var out []T
	for _, b := range res {
		for len(b) > 0 {
			rec, rest, err := codec.CutFramed(b)
			if err != nil {
				return nil, errors.New("client: collect: malformed result")
			}
			v, err := c.Decode(rec)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			b = rest
		}
	}
	return out, nil
}

type collectSink[T any] struct{}

func (collectSink[T]) sink(b *build, params json.RawMessage, input any) (sinkFn, error) {
	var p collectParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	in, err := seqOf[T](input)
	if err != nil {
		return nil, err
	}
	return func(tc *taskContext, part int) ([]byte, error) {
		c, err := codecOf[T]()
		if err != nil {
			return nil, err
		}
		var out, rec []byte
		n := 0
		for v := range in(tc, part) {
			if p.Limit >= 0 && n >= p.Limit {
				break
			}
			rec = c.Append(rec[:0], v)
			out = codec.AppendFramed(out, rec)
			n++
		}
		tc.addMetric(eventlog.MetricRecordsOut, int64(n))
		return out, nil
	}, nil
}

// ErrEmptyRDD is the error of an action that must return a record of an
// RDD that has none: Reduce of an empty RDD. Fold returns its zero value
// instead.
var ErrEmptyRDD = errors.New("client: empty RDD")

// Reduce folds every record with f (associative and commutative). An
// empty RDD has no value to return: the error wraps ErrEmptyRDD. A
// computation that may meet an empty RDD (a sum over a filter) uses Fold.
func Reduce[T any](ctx context.Context, r *RDD[T], f func(T, T) T) (T, error) {
	var zero T
	partials, err := reducePartials(ctx, r, f, "Reduce")
	if err != nil {
		return zero, err
	}
	if len(partials) == 0 {
		return zero, fmt.Errorf("%w: Reduce of %s: it has no record, so there is no value to return (use Fold with a zero value, e.g. 0 for a sum)", ErrEmptyRDD, r.n.displayName())
	}
	acc := partials[0]
	for _, v := range partials[1:] {
		acc = f(acc, v)
	}
	return acc, nil
}

// Fold folds every record with f (associative and commutative) starting
// from zero, which must be an identity of f (0 for a sum, 1 for a
// product, an empty slice for a concatenation): an empty RDD gives zero.
// Unlike Spark's fold it applies zero once, not once per partition, so
// the result does not depend on the partitioning even when zero is not
// an identity.
func Fold[T any](ctx context.Context, r *RDD[T], zero T, f func(T, T) T) (T, error) {
	partials, err := reducePartials(ctx, r, f, "Fold")
	if err != nil {
		return zero, err
	}
	acc := zero
	for _, v := range partials {
		acc = f(acc, v)
	}
	return acc, nil
}

// reducePartials folds each partition of r with f on the workers and
// returns one value per non-empty partition, in partition order.
func reducePartials[T any](ctx context.Context, r *RDD[T], f func(T, T) T, action string) ([]T, error) {
	ref, err := fnref.Of(f)
	if err != nil {
		return nil, wrapFnErr(action, err)
	}
	return collectParts[T](ctx, &RDD[T]{reduceNode[T](r.n, ref)}, allParts(r.n), -1)
}

// reduceNode folds each partition to at most one record.
func reduceNode[T any](parent *node, ref fnref.Ref) *node {
	return newNode(parent.ctx, "reduce", parent.parts, mustSpec(reducePartOp[T]{}, fnParams{ref}), narrow(parent))
}

type reducePartOp[T any] struct{}

func (reducePartOp[T]) op(b *build, params json.RawMessage, parents []any) (any, error) {
	f, err := decodeFn[func(T, T) T](params)
	if err != nil {
		return nil, err
	}
	in, err := seqOf[T](parents[0])
	if err != nil {
		return nil, err
	}
	return seqFn[T](func(tc *taskContext, part int) iter.Seq[T] {
		return func(yield func(T) bool) {
			var acc T
			seen := false
			for v := range in(tc, part) {
				if seen {
					acc = f(acc, v)
				} else {
					acc, seen = v, true
				}
			}
			if seen {
				yield(acc)
			}
		}
	}), nil
}

// Foreach calls f on every record, on the workers.
func Foreach[T any](ctx context.Context, r *RDD[T], f func(T)) error {
	ref, err := fnref.Of(f)
	if err != nil {
		return wrapFnErr("Foreach", err)
	}
	_, err = r.n.ctx.runJob(ctx, r.n, "foreach", mustSpec(foreachSink[T]{}, fnParams{ref}), allParts(r.n))
	return err
}

type foreachSink[T any] struct{}

func (foreachSink[T]) sink(b *build, params json.RawMessage, input any) (sinkFn, error) {
	f, err := decodeFn[func(T)](params)
	if err != nil {
		return nil, err
	}
	in, err := seqOf[T](input)
	if err != nil {
		return nil, err
	}
	return func(tc *taskContext, part int) ([]byte, error) {
		for v := range countedOut(tc, in(tc, part)) {
			f(v)
		}
		return nil, nil
	}, nil
}

// CountByKey returns the number of records of each key.
func CountByKey[K comparable, V any](ctx context.Context, r *RDD[KV[K, V]]) (map[K]int64, error) {
	counts, err := Collect(ctx, ReduceByKey(MapWith[KV[K, V], KV[K, int64]](r, countOne[K, V]{}), addInt64, 0))
	if err != nil {
		return nil, err
	}
	out := make(map[K]int64, len(counts))
	for _, kv := range counts {
		out[kv.Key] = kv.Value
	}
	return out, nil
}

type countOne[K comparable, V any] struct{}

func (countOne[K, V]) Map(kv KV[K, V]) KV[K, int64] { return KV[K, int64]{kv.Key, 1} }
func addInt64(a, b int64) int64                     { return a + b }

// SaveAsTextFile writes r as text part files part-00000, part-00001, ...
// in dir, one record per line (a KV as key<TAB>value, anything else with
// fmt's %v). The files are written under a temporary sibling of dir
// (".DIR.tmp-RANDOM", made for this job; missing parents are created)
// and the directory is renamed into place when the job succeeds: a
// failed job leaves no dir.
//
// dir must not exist, or be an empty directory (which is replaced). It
// is refused, and left as it is, if it is a file, a symbolic link or a
// non-empty directory, or if it is an input of r's lineage or inside
// one. Nothing is ever deleted but what the job wrote under its
// temporary name.
func SaveAsTextFile[T any](ctx context.Context, r *RDD[T], dir string) error {
	return saveFiles(ctx, r, dir, mustSpec(textSink[T]{}, nil))
}

// SaveAsRawFile writes each record's bytes as they are, with no separator
// (e.g. gensort records), under the same rules as SaveAsTextFile.
func SaveAsRawFile(ctx context.Context, r *RDD[string], dir string) error {
	return saveFiles(ctx, r, dir, mustSpec(rawSink{}, nil))
}

type saveParams struct {
	// Dir is the temporary directory, or the s3:// URI of the temporary
	// prefix.
	Dir string `json:"dir"`
	// Endpoint is the S3 service of an s3:// Dir.
	Endpoint string `json:"endpoint,omitempty"`
}

func saveFiles[T any](ctx context.Context, r *RDD[T], dir string, sink opSpec) error {
	if err := r.n.lineageErr(); err != nil {
		return err
	}
	if objstore.IsURI(dir) {
		return saveS3(ctx, r, dir, sink)
	}
	dir = filepath.Clean(dir)
	if err := checkOutput(dir, inputRoots(r.n)); err != nil {
		return err
	}
	tmp, err := makeTempOutput(dir)
	if err != nil {
		return err
	}
	var params saveParams
	params.Dir = tmp
	b, _ := json.Marshal(params)
	sink.Params = b
	if _, err := r.n.ctx.runJob(ctx, r.n, "save", sink, allParts(r.n)); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := removeAttemptFiles(tmp); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("client: output: %w", err)
	}
	if err := renameOutput(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return nil
}

// checkOutput refuses an output that a job must not write: an existing
// file, symbolic link or non-empty directory, or a directory inside one
// of the inputs, or an input itself (paths compared with symbolic links
// resolved). An empty directory is accepted. An input inside the output
// would make the output non-empty, so it is refused as such.
func checkOutput(dir string, inputs []string) error {
	out, err := realPath(dir)
	if err != nil {
		return fmt.Errorf("client: output %s: %w", dir, err)
	}
	for _, in := range inputs {
		if objstore.IsURI(in) {
			continue
		}
		if rin, err := realPath(in); err == nil && within(out, rin) {
			return fmt.Errorf("client: output %s is inside the input %s: a later job reading the input would read this output too (choose an output outside it)", dir, in)
		}
	}
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("client: output %s: %w", dir, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("client: output %s exists and is a symbolic link; it is left as it is (remove it or choose another output)", dir)
	case !fi.IsDir():
		return fmt.Errorf("client: output %s exists and is a file, not a directory; it is left as it is (remove it or choose another output)", dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("client: output %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("client: output %s already exists and is not empty; it is left as it is (remove it or choose another output)", dir)
	}
	return nil
}

// realPath is p made absolute with the symbolic links of its longest
// existing ancestor resolved.
func realPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	var rest []string
	for dir := abs; ; dir = filepath.Dir(dir) {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(append([]string{r}, rest...)...), nil
		}
		if filepath.Dir(dir) == dir {
			return abs, nil
		}
		rest = append([]string{filepath.Base(dir)}, rest...)
	}
}

// within reports whether path a is b or inside it (both clean, absolute).
func within(a, b string) bool {
	rel, err := filepath.Rel(b, a)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// makeTempOutput makes the temporary directory a job writes dir's part
// files in: a new hidden sibling of dir, ".DIR.tmp-RANDOM", which no one
// else uses (os.Mkdir fails on an existing name). Missing parent
// directories are created.
func makeTempOutput(dir string) (string, error) {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("client: output %s: cannot create its parent directory: %w (choose an output where you can write)", dir, err)
	}
	for range 10 {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("client: output %s: %w", dir, err)
		}
		tmp := filepath.Join(parent, "."+filepath.Base(dir)+".tmp-"+hex.EncodeToString(b[:]))
		err := os.Mkdir(tmp, 0o755)
		switch {
		case err == nil:
			return tmp, nil
		case errors.Is(err, fs.ErrExist):
			continue
		}
		return "", fmt.Errorf("client: output %s: cannot create a directory in %s: %w (choose an output where you can write)", dir, parent, err)
	}
	return "", fmt.Errorf("client: output %s: no free temporary name in %s", dir, parent)
}

// renameOutput moves the finished temporary directory to dir in one
// rename(2), which replaces an empty directory and fails on a file or a
// non-empty directory: one that appeared while the job ran is left as it
// is, never overwritten.
func renameOutput(tmp, dir string) error {
	// os.Rename refuses any existing directory; rename(2) replaces an
	// empty one atomically.
	err := syscall.Rename(tmp, dir)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.EEXIST), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("client: output %s appeared while the job ran and is left as it is; the job's output is discarded (remove it or choose another output)", dir)
	}
	return fmt.Errorf("client: output %s: rename %s into place: %w", dir, tmp, err)
}

// removeAttemptFiles removes from dir the part files of attempts that did
// not commit: a task whose worker died while it wrote leaves its
// part-NNNNN.attempt-K behind, and another attempt committed the part.
func removeAttemptFiles(dir string) error {
	tmps, err := filepath.Glob(filepath.Join(dir, "part-*.attempt-*"))
	if err != nil {
		return err
	}
	for _, name := range tmps {
		if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// writePart writes one part file under a temporary name and renames it.
func writePart(tc *taskContext, params json.RawMessage, part int, write func(w *bufio.Writer) error) ([]byte, error) {
	var p saveParams
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, err
	}
	if objstore.IsURI(p.Dir) {
		return writeS3Part(tc, p, part, write)
	}
	name := filepath.Join(p.Dir, fmt.Sprintf("part-%05d", part))
	tmp := name + ".attempt-" + strconv.Itoa(int(tc.task.Attempt))
	f, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("client: output: %w", err)
	}
	w := bufio.NewWriterSize(f, 256<<10)
	err = write(w)
	if err == nil {
		err = tc.err
	}
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, err
	}
	return nil, nil
}

type textSink[T any] struct{}

func (textSink[T]) sink(b *build, params json.RawMessage, input any) (sinkFn, error) {
	in, err := seqOf[T](input)
	if err != nil {
		return nil, err
	}
	// Chosen once: for string records (every built-in job's output) the
	// record is written as it is, with no conversion to an interface.
	format, ok := any(writeString).(func(*bufio.Writer, T))
	if !ok {
		format = writeFormatted[T]
	}
	return func(tc *taskContext, part int) ([]byte, error) {
		return writePart(tc, params, part, func(w *bufio.Writer) error {
			for v := range countedOut(tc, in(tc, part)) {
				format(w, v)
				if err := w.WriteByte('\n'); err != nil {
					return err
				}
			}
			return nil
		})
	}, nil
}

func writeString(w *bufio.Writer, s string) { w.WriteString(s) }

// writeFormatted writes a KV (or any fmt.Stringer) with its String method,
// anything else with fmt's %v.
func writeFormatted[T any](w *bufio.Writer, v T) {
	if s, ok := any(v).(fmt.Stringer); ok {
		w.WriteString(s.String())
		return
	}
	fmt.Fprint(w, v)
}

type rawSink struct{}

func (rawSink) sink(b *build, params json.RawMessage, input any) (sinkFn, error) {
	in, err := seqOf[string](input)
	if err != nil {
		return nil, err
	}
	return func(tc *taskContext, part int) ([]byte, error) {
		return writePart(tc, params, part, func(w *bufio.Writer) error {
			for v := range countedOut(tc, in(tc, part)) {
				if _, err := w.WriteString(v); err != nil {
					return err
				}
			}
			return nil
		})
	}, nil
}

// String formats a KV as key<TAB>value.
func (kv KV[K, V]) String() string { return fmt.Sprintf("%v\t%v", kv.Key, kv.Value) }

func allParts(n *node) []int {
	out := make([]int, n.parts)
	for i := range out {
		out[i] = i
	}
	return out
}
