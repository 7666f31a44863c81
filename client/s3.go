package client

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"shoal/objstore"
)

// Inputs and outputs on S3 (package doc, "Inputs and outputs on S3").

const (
	// maxInputObjects bounds the objects of one s3:// input listing (the
	// driver holds the listing while it cuts the splits).
	maxInputObjects = 1 << 20
	// s3CopyParallelism is how many parts the driver copies into place at
	// once when it commits an s3:// output.
	s3CopyParallelism = 8
	// s3CleanupTimeout bounds the removal of a failed output's temporary
	// objects, which runs even if the job's ctx has ended.
	s3CleanupTimeout = 2 * time.Minute
	// s3Temporary is the directory of an output's temporary objects, and
	// s3Success the marker of a committed output; s3Writing marks an
	// output being written from the job's start until its _SUCCESS is in.
	s3Temporary = "_temporary"
	s3Success   = "_SUCCESS"
	s3Writing   = "_writing"
)

// s3Clients are the object-store clients a process made, by endpoint:
// the driver's (Context: Options.S3) and each worker's (runner: its
// environment, where the driver put its endpoint and credentials). Close
// releases their connections; get fails afterwards.
type s3Clients struct {
	base   objstore.Options
	mu     sync.Mutex
	m      map[string]*objstore.Client
	closed bool
}

func newS3Clients(base objstore.Options) *s3Clients {
	return &s3Clients{base: base, m: map[string]*objstore.Client{}}
}

// get returns the client of endpoint ("" for the configured one), made
// on first use.
func (s *s3Clients) get(endpoint string) (*objstore.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("client: S3: the process is stopping (its S3 clients are closed)")
	}
	if c := s.m[endpoint]; c != nil {
		return c, nil
	}
	opts := s.base
	if endpoint != "" {
		opts.Endpoint = endpoint
	}
	c, err := objstore.New(opts)
	if err != nil {
		return nil, fmt.Errorf("client: S3: %w", err)
	}
	s.m[endpoint] = c
	return c, nil
}

func (s *s3Clients) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, c := range s.m {
		c.Close()
	}
	clear(s.m)
	return nil
}

// s3Input lists the objects an s3:// input reads: the object the URI
// names, if there is one; otherwise every object under it as a prefix
// (the URI with a '/' added, unless it ends in one or names the whole
// bucket), by key in lexical order, leaving out the keys with an element
// that skippedName skips (_SUCCESS, _temporary/, .crc) and directory
// markers (keys ending in '/'). An empty listing is an error naming the
// URI, and so is a prefix holding an output that is being written or
// whose job failed: a directory with a _temporary/ and no _SUCCESS.
func s3Input(ctx context.Context, cl *objstore.Client, uri string) ([]inputFile, error) {
	u, err := objstore.ParseURI(uri)
	if err != nil {
		return nil, fmt.Errorf("client: input: %w", err)
	}
	prefix := u.Key
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		obj, err := cl.Stat(ctx, u.Bucket, prefix)
		switch {
		case err == nil:
			return []inputFile{{path: u.String(), size: obj.Size, mtime: obj.ModTime, etag: obj.ETag}}, nil
		case !errors.Is(err, objstore.ErrNotFound):
			return nil, fmt.Errorf("client: input %s: %w", uri, err)
		}
		prefix += "/"
	}
	objs, err := cl.List(ctx, u.Bucket, prefix, maxInputObjects)
	if err != nil {
		return nil, fmt.Errorf("client: input %s: %w", uri, err)
	}
	var files []inputFile
	temporary, success := map[string]bool{}, map[string]bool{}
	for _, o := range objs {
		rel := strings.TrimPrefix(o.Key, prefix)
		elems := strings.Split(rel, "/")
		if i := slices.Index(elems, s3Temporary); i >= 0 && i < len(elems)-1 {
			temporary[strings.Join(elems[:i+1], "/")] = true
		}
		if elems[len(elems)-1] == s3Success {
			success[strings.Join(elems, "/")] = true
		}
		if strings.HasSuffix(rel, "/") || slices.ContainsFunc(elems, skippedName) {
			continue
		}
		files = append(files, inputFile{path: objstore.URI{Bucket: u.Bucket, Key: o.Key}.String(), size: o.Size, mtime: o.ModTime, etag: o.ETag})
	}
	for _, t := range slices.Sorted(maps.Keys(temporary)) {
		dir := strings.TrimSuffix(t, s3Temporary)
		if !success[dir+s3Success] {
			where := objstore.URI{Bucket: u.Bucket, Key: prefix + dir}
			return nil, fmt.Errorf("client: input %s: %s holds an output that is being written, or whose job failed (%s/ without %s): wait for its job to finish, or remove it", uri, where, s3Temporary, s3Success)
		}
	}
	if len(files) == 0 {
		if prefix == u.Key {
			return nil, fmt.Errorf("client: input %s: no object under it (an empty listing at %s: check the bucket and the prefix)", uri, cl.Endpoint())
		}
		return nil, fmt.Errorf("client: input %s: no such object, and no object under %s (an empty listing at %s: check the bucket and the key)", uri, objstore.URI{Bucket: u.Bucket, Key: prefix}, cl.Endpoint())
	}
	return files, nil
}

// s3Identity is InputIdentity of an s3:// input: the URI, the number and
// total size of its objects, and a fingerprint of their keys (relative
// to the URI), sizes and ETags.
func s3Identity(ctx context.Context, cl *objstore.Client, uri string) (string, error) {
	files, err := s3Input(ctx, cl, uri)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	var total int64
	for _, f := range files {
		fmt.Fprintf(h, "%q %d %q\n", strings.TrimPrefix(f.path, uri), f.size, f.etag)
		total += f.size
	}
	plural := "s"
	if len(files) == 1 {
		plural = ""
	}
	return fmt.Sprintf("%q: %d object%s, %d bytes, fingerprint %x", uri, len(files), plural, total, h.Sum(nil)[:8]), nil
}

// openS3Split reads bytes [off, end) of the object of split s (end: its
// size if < 0), the first request asking for [off, first).
func openS3Split(tc *taskContext, endpoint string, s split, off, first, end int64) (io.ReadCloser, error) {
	u, err := objstore.ParseURI(s.Path)
	if err != nil {
		return nil, err
	}
	cl, err := tc.runner.s3.get(endpoint)
	if err != nil {
		return nil, err
	}
	if end < 0 || end > s.Size {
		end = s.Size
	}
	return cl.NewRangeReader(tc.ctx, u.Bucket, u.Key, s.ETag, off, first, end), nil
}

// s3Output is an s3:// output being written.
type s3Output struct {
	uri    string
	bucket string
	prefix string // the output's key prefix: "" (the bucket) or ending in '/'
	tmp    string // prefix + "_temporary/RUN/"
	cl     *objstore.Client
}

// s3Part is the result of a task that wrote a part: its object (under
// the temporary prefix) and size.
type s3Part struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
}

// saveS3 writes r's partitions as part objects under the s3:// URI out,
// committing them as the package doc's "Inputs and outputs on S3" says.
func saveS3[T any](ctx context.Context, r *RDD[T], out string, sink opSpec) error {
	c := r.n.ctx
	o, err := c.openS3Output(ctx, out, inputRoots(r.n))
	if err != nil {
		return err
	}
	if err := o.cl.Put(ctx, o.bucket, o.tmp+s3Writing, nil); err != nil {
		return fmt.Errorf("client: output %s: %w", out, err)
	}
	sink.Params = mustJSON(saveParams{Dir: objstore.URI{Bucket: o.bucket, Key: strings.TrimSuffix(o.tmp, "/")}.String(), Endpoint: o.cl.Endpoint()})
	res, err := c.runJob(ctx, r.n, "save", sink, allParts(r.n))
	var created []string
	if err == nil {
		created, err = o.commit(ctx, res)
	}
	if err != nil {
		if cerr := o.cleanup(ctx, created); cerr != nil {
			err = fmt.Errorf("%w (and its temporary objects under %s could not all be removed: %v)", err, objstore.URI{Bucket: o.bucket, Key: o.tmp}, cerr)
		}
		return err
	}
	// The output is complete: the marker's removal is housekeeping.
	if err := o.cl.Delete(ctx, o.bucket, o.tmp+s3Writing); err != nil {
		c.log.Warn("output committed; its marker of an output being written remains", "output", out, "err", err)
	}
	return nil
}

// openS3Output checks that out may be written (see the package doc) and
// chooses its temporary prefix.
func (c *Context) openS3Output(ctx context.Context, out string, inputs []string) (*s3Output, error) {
	u, err := objstore.ParseURI(out)
	if err != nil {
		return nil, fmt.Errorf("client: output: %w", err)
	}
	prefix := strings.TrimSuffix(u.Key, "/")
	for _, in := range inputs {
		if iu, err := objstore.ParseURI(in); err == nil && iu.Bucket == u.Bucket && keyWithin(prefix, strings.TrimSuffix(iu.Key, "/")) {
			return nil, fmt.Errorf("client: output %s is inside the input %s: a later job reading the input would read this output too (choose an output outside it)", out, in)
		}
	}
	cl, err := c.s3.get("")
	if err != nil {
		return nil, fmt.Errorf("client: output %s: %w", out, err)
	}
	o := &s3Output{uri: out, bucket: u.Bucket, cl: cl}
	if prefix != "" {
		o.prefix = prefix + "/"
		_, err := cl.Stat(ctx, u.Bucket, prefix)
		switch {
		case err == nil:
			return nil, fmt.Errorf("client: output %s exists (an object of that name): remove it or pick another", out)
		case !errors.Is(err, objstore.ErrNotFound):
			return nil, fmt.Errorf("client: output %s: %w", out, err)
		}
	}
	switch found, err := cl.Any(ctx, u.Bucket, o.prefix); {
	case err != nil:
		return nil, fmt.Errorf("client: output %s: %w", out, err)
	case found:
		return nil, fmt.Errorf("client: output %s exists: remove it or pick another", out)
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("client: output %s: %w", out, err)
	}
	o.tmp = o.prefix + s3Temporary + "/" + time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:]) + "/"
	return o, nil
}

// keyWithin reports whether key a is b or below it ('/'-separated, no
// trailing '/'; "" is the whole bucket).
func keyWithin(a, b string) bool {
	return b == "" || a == b || strings.HasPrefix(a, b+"/")
}

// commit moves the parts that res names (the winning attempt of each
// partition) into place, removes the temporary objects and writes
// _SUCCESS, in that order. It returns the part objects it created, for
// cleanup if it fails.
func (o *s3Output) commit(ctx context.Context, res [][]byte) ([]string, error) {
	parts := make([]s3Part, len(res))
	for i, b := range res {
		if err := json.Unmarshal(b, &parts[i]); err != nil || !strings.HasPrefix(parts[i].Key, o.tmp) {
			return nil, fmt.Errorf("client: output %s: partition %d reported no part it wrote under %s", o.uri, i, o.tmp)
		}
	}
	// Anything but this job's temporary objects appeared while it ran
	// (another job writing the same output, say): the output is left to
	// it and this job's is discarded.
	objs, err := o.cl.List(ctx, o.bucket, o.prefix, maxInputObjects)
	if err != nil {
		return nil, fmt.Errorf("client: output %s: %w", o.uri, err)
	}
	var temps []string
	for _, obj := range objs {
		if !strings.HasPrefix(obj.Key, o.tmp) {
			return nil, fmt.Errorf("client: output %s: %s appeared while the job ran; the job's output is discarded (remove it or pick another output)", o.uri, objstore.URI{Bucket: o.bucket, Key: obj.Key})
		}
		if obj.Key != o.tmp+s3Writing {
			temps = append(temps, obj.Key)
		}
	}
	created := make([]string, len(parts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s3CopyParallelism)
	for i, p := range parts {
		dst := fmt.Sprintf("%spart-%05d", o.prefix, i)
		created[i] = dst
		g.Go(func() error { return o.cl.Copy(gctx, o.bucket, p.Key, dst, p.Size) })
	}
	if err := g.Wait(); err != nil {
		return created, fmt.Errorf("client: output %s: %w", o.uri, err)
	}
	if err := o.cl.Delete(ctx, o.bucket, temps...); err != nil {
		return created, fmt.Errorf("client: output %s: %w", o.uri, err)
	}
	if err := o.cl.Put(ctx, o.bucket, o.prefix+s3Success, nil); err != nil {
		return created, fmt.Errorf("client: output %s: %w", o.uri, err)
	}
	return created, nil
}

// cleanup removes, as far as it can, what a failed job wrote: the parts
// it had copied into place (created) and every object under its
// temporary prefix. It runs even if ctx has ended.
func (o *s3Output) cleanup(ctx context.Context, created []string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s3CleanupTimeout)
	defer cancel()
	objs, err := o.cl.List(ctx, o.bucket, o.tmp, maxInputObjects)
	keys := slices.Clone(created)
	for _, obj := range objs {
		keys = append(keys, obj.Key)
	}
	return errors.Join(err, o.cl.Delete(ctx, o.bucket, keys...))
}

// writeS3Part streams a task's part to an object under the output's
// temporary prefix p.Dir, named by the task's ID so that no two attempts
// share one; its result names it (s3Part). An error of write, or of the
// task, aborts the upload: nothing is left under the name.
func writeS3Part(tc *taskContext, p saveParams, part int, write func(w *bufio.Writer) error) ([]byte, error) {
	u, err := objstore.ParseURI(p.Dir)
	if err != nil {
		return nil, err
	}
	cl, err := tc.runner.s3.get(p.Endpoint)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%s/part-%05d.task-%d", u.Key, part, tc.task.TaskId)
	pr, pw := io.Pipe()
	type result struct {
		size int64
		err  error
	}
	done := make(chan result, 1)
	go func() {
		n, err := cl.PutStream(tc.ctx, u.Bucket, key, pr)
		// A writer still writing gets the upload's error (nil: the
		// upload read to the end, so the writer has closed).
		pr.CloseWithError(err)
		done <- result{n, err}
	}()
	w := bufio.NewWriterSize(pw, 256<<10)
	err = write(w)
	if err == nil {
		err = tc.err
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		pw.CloseWithError(err) // aborts the upload
	} else {
		pw.Close()
	}
	res := <-done
	if err == nil && res.err != nil {
		err = fmt.Errorf("client: output: %w", res.err)
	}
	if err != nil {
		return nil, err
	}
	return mustJSON(s3Part{Key: key, Size: res.size}), nil
}
