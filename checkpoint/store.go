package checkpoint

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// Store holds objects under keys. Implementations: S3-compatible
// (s3://bucket/prefix, through minio-go), a local directory
// (file:///abs/path or a plain path) and memory (mem://name). All are safe
// for concurrent use, also by several processes on the same root (except
// memory, which lives in one process).
type Store interface {
	// Put stores data under key, replacing any object there. It is atomic:
	// a reader sees the old object, or none, or all of data, never part of
	// it, and a failed Put leaves nothing under key that was not there.
	Put(ctx context.Context, key string, data []byte) error
	// Get returns the object under key; an error wrapping ErrNotFound if
	// there is none.
	Get(ctx context.Context, key string) ([]byte, error)
	// List returns the objects whose keys start with prefix ("" for all),
	// sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes the objects under keys. Absent keys are not an error.
	Delete(ctx context.Context, keys ...string) error
	// String is the store's URI (s3://bucket/prefix, file:///abs/path,
	// mem://name), for messages and the event log.
	String() string
}

// ObjectInfo describes an object in a Store.
type ObjectInfo struct {
	Key  string
	Size int64
	// ModTime is when the object was written, by the store's clock (the S3
	// service's, the local file system's): Prune compares it only with
	// other ModTimes of the same store.
	ModTime time.Time
}

// Open opens the store a URI names:
//
//	s3://bucket/prefix   an S3-compatible service (Options.Endpoint or
//	                     AWS_ENDPOINT_URL; AWS_ACCESS_KEY_ID and
//	                     AWS_SECRET_ACCESS_KEY); the prefix may be empty
//	file:///abs/path     a local directory, created if absent
//	/abs/path, rel/path  the same
//	mem://name           a new, empty store in this process's memory (tests)
//
// For S3 it checks that the endpoint answers, accepts the credentials and
// has the bucket, and reports what to do if not (ErrUnavailable,
// ErrAccessDenied, ErrNoBucket); for a directory, that it can be created.
func Open(ctx context.Context, uri string, opts Options) (Store, error) {
	if uri == "" {
		return nil, invalidf("empty checkpoint store URI (want s3://bucket/prefix, file:///abs/path, a path, or mem://name)")
	}
	scheme, rest, hasScheme := strings.Cut(uri, "://")
	if !hasScheme {
		abs, err := filepath.Abs(uri)
		if err != nil {
			return nil, invalidf("checkpoint store path %q: %v", uri, err)
		}
		return OpenDir(abs)
	}
	switch strings.ToLower(scheme) {
	case "s3":
		bucket, prefix, _ := strings.Cut(rest, "/")
		return openS3(ctx, bucket, prefix, opts)
	case "file":
		u, err := url.Parse(uri)
		if err != nil {
			return nil, invalidf("checkpoint store URI %q: %v", uri, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, invalidf("checkpoint store URI %q names host %q: a file URI takes an absolute path, file:///abs/path", uri, u.Host)
		}
		if u.Path == "" || !filepath.IsAbs(u.Path) {
			return nil, invalidf("checkpoint store URI %q: a file URI takes an absolute path, file:///abs/path", uri)
		}
		return OpenDir(u.Path)
	case "mem":
		return NewMem(rest)
	}
	return nil, invalidf("checkpoint store URI %q: unknown scheme %q (want s3://bucket/prefix, file:///abs/path, a path, or mem://name)", uri, scheme)
}
