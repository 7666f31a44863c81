package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// Object describes an object of a listing.
type Object struct {
	Key  string
	Size int64
	// ETag identifies the object's content: a rewritten object has
	// another (RangeReader pins its reads to it).
	ETag    string
	ModTime time.Time
}

// ErrTooMany is wrapped by List's error when the listing holds more
// objects than its limit.
var ErrTooMany = errors.New("objstore: too many objects")

// List returns the objects whose keys start with prefix ("" for the whole
// bucket), recursively, sorted by key. A listing of more than limit
// objects fails with ErrTooMany (limit <= 0: no limit): it bounds the
// memory a listing holds.
func (c *Client) List(ctx context.Context, bucket, prefix string, limit int) ([]Object, error) {
	octx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
	defer cancel()
	var out []Object
	for obj := range c.mc.ListObjects(octx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, c.Wrap(ctx, "list", bucket, prefix, obj.Err)
		}
		if limit > 0 && len(out) == limit {
			return nil, fmt.Errorf("%w: list %s in bucket %q at %s: more than %d objects", ErrTooMany, prefix, bucket, c.opts.Endpoint, limit)
		}
		out = append(out, Object{Key: obj.Key, Size: obj.Size, ETag: obj.ETag, ModTime: obj.LastModified})
	}
	if err := octx.Err(); err != nil { // the listing ended early
		return nil, c.Wrap(ctx, "list", bucket, prefix, err)
	}
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Any reports whether an object's key starts with prefix, listing at most
// one.
func (c *Client) Any(ctx context.Context, bucket, prefix string) (bool, error) {
	octx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
	defer cancel()
	for obj := range c.mc.ListObjects(octx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, MaxKeys: 1}) {
		if obj.Err != nil {
			return false, c.Wrap(ctx, "list", bucket, prefix, obj.Err)
		}
		return true, nil // cancel ends the listing
	}
	return false, c.Wrap(ctx, "list", bucket, prefix, octx.Err())
}

// Stat describes the object under key; an error wrapping ErrNotFound if
// there is none.
func (c *Client) Stat(ctx context.Context, bucket, key string) (Object, error) {
	octx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
	defer cancel()
	info, err := c.mc.StatObject(octx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return Object{}, c.Wrap(ctx, "stat", bucket, key, err)
	}
	return Object{Key: info.Key, Size: info.Size, ETag: info.ETag, ModTime: info.LastModified}, nil
}

// Put stores data under key in one request (or a multipart upload above
// Options.PartSize), atomically: the object appears whole or not at all.
func (c *Client) Put(ctx context.Context, bucket, key string, data []byte) error {
	octx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
	defer cancel()
	_, err := c.mc.PutObject(octx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    uint64(c.opts.PartSize),
		NumThreads:  uint(c.opts.PartThreads),
	})
	return c.Wrap(ctx, "put", bucket, key, err)
}

// PutStream stores what r gives until EOF under key, as a multipart
// upload of Options.PartSize parts sent one after the other: it holds one
// part in memory, whatever the object's size, and the object appears only
// when the upload completes. An error of r (a writer closing its pipe
// with an error) aborts the upload, leaving nothing under key. It
// returns the object's size. Only ctx bounds it (it lasts as long as r).
func (c *Client) PutStream(ctx context.Context, bucket, key string, r io.Reader) (int64, error) {
	info, err := c.mc.PutObject(ctx, bucket, key, r, -1, minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    uint64(c.opts.PartSize),
	})
	if err != nil {
		return 0, c.Wrap(ctx, "put", bucket, key, err)
	}
	return info.Size, nil
}

// maxCopyObject is the largest object one CopyObject request copies; a
// larger one is copied in parts (ComposeObject).
const maxCopyObject = 5 << 30

// Copy copies the object src to dst in the same bucket, on the server
// (no byte passes through this process). size is src's size: above 5 GiB
// it is copied as a multipart upload of server-side part copies.
func (c *Client) Copy(ctx context.Context, bucket, src, dst string, size int64) error {
	octx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
	defer cancel()
	d := minio.CopyDestOptions{Bucket: bucket, Object: dst}
	s := minio.CopySrcOptions{Bucket: bucket, Object: src}
	var err error
	if size > maxCopyObject {
		_, err = c.mc.ComposeObject(octx, d, s)
	} else {
		_, err = c.mc.CopyObject(octx, d, s)
	}
	return c.Wrap(ctx, "copy "+src+" to", bucket, dst, err)
}

// Delete removes the objects under keys. Absent keys are not an error.
func (c *Client) Delete(ctx context.Context, bucket string, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	octx, cancel := context.WithTimeout(ctx, c.opts.OpTimeout)
	defer cancel()
	ch := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		ch <- minio.ObjectInfo{Key: k}
	}
	close(ch)
	var errs []error
	for e := range c.mc.RemoveObjects(octx, bucket, ch, minio.RemoveObjectsOptions{}) {
		if e.Err != nil {
			errs = append(errs, c.Wrap(ctx, "delete", bucket, e.ObjectName, e.Err))
		}
	}
	if len(errs) == 0 && octx.Err() != nil {
		errs = append(errs, c.Wrap(ctx, "delete", bucket, keys[0], octx.Err()))
	}
	return errors.Join(errs...)
}

// RangeReader reads bytes [off, end) of an object with ranged GETs: the
// first asks for [off, first), each next one for a window past the bytes
// read, from 64 KiB doubling up to 8 MiB, so that a reader that stops
// soon after first (a split finishing its last line) asks for little
// more than it reads. Each GET is pinned to the object's ETag: if the
// object was rewritten since it was listed, the read fails with
// ErrChanged instead of mixing two versions. It holds no buffer of its
// own (the response body streams); only ctx bounds it.
type RangeReader struct {
	c               *Client
	ctx             context.Context
	bucket, key     string
	etag            string
	pos, end, first int64
	window          int64
	body            io.ReadCloser
	bodyEnd         int64 // the end of the body's range
	err             error
}

// Windows of RangeReader past its first range.
const (
	firstWindow = 64 << 10
	maxWindow   = 8 << 20
)

// NewRangeReader returns a reader of bytes [off, end) of the object under
// key, whose ETag must be etag ("" to read any version); first is the end
// of the first GET's range (clamped to [off, end]). It sends nothing
// until the first Read.
func (c *Client) NewRangeReader(ctx context.Context, bucket, key, etag string, off, first, end int64) *RangeReader {
	return &RangeReader{c: c, ctx: ctx, bucket: bucket, key: key, etag: etag, pos: off, end: end,
		first: min(max(first, off), end), window: firstWindow}
}

func (r *RangeReader) Read(p []byte) (int, error) {
	for {
		if r.err != nil {
			return 0, r.err
		}
		if r.pos >= r.end {
			return 0, io.EOF
		}
		if r.body == nil {
			if err := r.open(); err != nil {
				r.err = err
				return 0, err
			}
		}
		n, err := r.body.Read(p[:min(int64(len(p)), r.bodyEnd-r.pos)])
		r.pos += int64(n)
		if r.pos == r.bodyEnd {
			r.body.Close()
			r.body = nil
			err = nil
		}
		if err == io.EOF {
			err = fmt.Errorf("the response ended at byte %d of the range up to %d (the object is shorter than it was listed)", r.pos, r.bodyEnd)
			err = &Error{Kind: KindChanged, What: "get " + r.key, Bucket: r.bucket, Endpoint: r.c.opts.Endpoint, Detail: err.Error(), Err: err}
		} else if err != nil {
			err = r.c.Wrap(r.ctx, "get", r.bucket, r.key, err)
		}
		if err != nil {
			r.err = err
			return n, err
		}
		if n > 0 || len(p) == 0 {
			return n, nil
		}
	}
}

// open starts the GET of the next range.
func (r *RangeReader) open() error {
	end := r.first
	if r.pos >= r.first {
		end = min(r.end, r.pos+r.window)
		r.window = min(2*r.window, maxWindow)
	}
	var opts minio.GetObjectOptions
	if err := opts.SetRange(r.pos, end-1); err != nil {
		return err
	}
	if r.etag != "" {
		if err := opts.SetMatchETag(r.etag); err != nil {
			return err
		}
	}
	body, _, _, err := minio.Core{Client: r.c.mc}.GetObject(r.ctx, r.bucket, r.key, opts)
	if err != nil {
		return r.c.Wrap(r.ctx, "get", r.bucket, r.key, err)
	}
	r.body, r.bodyEnd = body, end
	return nil
}

// Close ends the current GET. The reader reads nothing afterwards.
func (r *RangeReader) Close() error {
	if r.body != nil {
		r.body.Close()
		r.body = nil
	}
	if r.err == nil {
		r.err = errors.New("objstore: read after Close")
	}
	return nil
}
