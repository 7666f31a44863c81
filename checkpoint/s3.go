package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"shoal/objstore"
)

// S3Store is a Store in a bucket of an S3-compatible service, through
// minio-go: the object under key k is PREFIX/k. PutObject is atomic (an
// object larger than Options.PartSize goes up as a multipart upload,
// visible only once complete); minio-go retries transient errors with
// backoff; every error names the endpoint and the bucket.
type S3Store struct {
	c      *objstore.Client
	bucket string
	prefix string // "" or ending in '/'
	opts   Options
}

func openS3(ctx context.Context, bucket, prefix string, opts Options) (*S3Store, error) {
	opts.EnsureDefaults()
	var errs []error
	if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
		errs = append(errs, invalidf("bucket name %q in s3://%s/%s: %v", bucket, bucket, prefix, err))
	}
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		if err := checkKey(prefix); err != nil {
			errs = append(errs, fmt.Errorf("%w (the prefix of s3://%s/%s)", err, bucket, prefix))
		}
		prefix += "/"
	}
	if err := opts.Validate(); err != nil {
		errs = append(errs, invalidf("%w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c, err := objstore.New(opts)
	if err != nil {
		return nil, invalidf("%w", err)
	}
	s := &S3Store{c: c, bucket: bucket, prefix: prefix, opts: opts}
	if err := s.checkBucket(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// checkBucket lists at most one key of the prefix: it proves the endpoint
// answers, the credentials are accepted, the bucket exists and may be
// listed, which Prune and List need. With CreateBucket it creates a missing
// bucket.
func (s *S3Store) checkBucket(ctx context.Context) error {
	err := s.probe(ctx)
	if errors.Is(err, ErrNoBucket) && s.opts.CreateBucket {
		octx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
		defer cancel()
		if err := s.c.Minio().MakeBucket(octx, s.bucket, minio.MakeBucketOptions{Region: s.opts.Region}); err != nil {
			return s.wrap(ctx, "create bucket", "", err)
		}
		err = s.probe(ctx)
	}
	return err
}

func (s *S3Store) probe(ctx context.Context) error {
	_, err := s.c.Any(ctx, s.bucket, s.prefix)
	return s.classify("open", err)
}

func (s *S3Store) String() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

// Close releases the store's idle connections to the service. A call
// made afterwards still works (it opens a connection); one that runs
// meanwhile keeps its own. It is not part of Store: the other stores hold
// nothing to release.
func (s *S3Store) Close() error { return s.c.Close() }

// Endpoint is the service's URL, as configured.
func (s *S3Store) Endpoint() string { return s.c.Endpoint() }

// Bucket is the store's bucket.
func (s *S3Store) Bucket() string { return s.bucket }

// Client is the minio-go client, for tests and tools that need more than a
// Store (e.g. reading an object's ETag).
func (s *S3Store) Client() *minio.Client { return s.c.Minio() }

// ObjectName is the name in the bucket of the object under key.
func (s *S3Store) ObjectName(key string) string { return s.prefix + key }

func (s *S3Store) Put(ctx context.Context, key string, data []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	return s.classify("put", s.c.Put(ctx, s.bucket, s.prefix+key, data))
}

func (s *S3Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	obj, err := s.c.Minio().GetObject(octx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap(ctx, "get", key, err)
	}
	defer obj.Close()
	info, err := obj.Stat()
	if err != nil {
		return nil, s.wrap(ctx, "get", key, err)
	}
	buf := make([]byte, info.Size)
	if _, err := io.ReadFull(obj, buf); err != nil {
		return nil, s.wrap(ctx, "get", key, fmt.Errorf("reading %d bytes: %w", info.Size, err))
	}
	return buf, nil
}

func (s *S3Store) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	objs, err := s.c.List(ctx, s.bucket, s.prefix+prefix, 0)
	if err != nil {
		return nil, s.classify("list", err)
	}
	var out []ObjectInfo
	for _, obj := range objs {
		key := strings.TrimPrefix(obj.Key, s.prefix)
		if checkKey(key) != nil { // written by something else; never ours
			continue
		}
		out = append(out, ObjectInfo{Key: key, Size: obj.Size, ModTime: obj.ModTime})
	}
	return out, nil
}

func (s *S3Store) Delete(ctx context.Context, keys ...string) error {
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
	}
	if len(keys) == 0 {
		return nil
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = s.prefix + k
	}
	return s.classify("delete", s.c.Delete(ctx, s.bucket, names...))
}

// wrap classifies an error of minio-go (objstore.Client.Wrap, the one
// place) and gives it this package's sentinel (classify). ctx is the
// caller's: a deadline of the caller is reported as such, the store's own
// OpTimeout as ErrUnavailable. nil stays nil.
func (s *S3Store) wrap(ctx context.Context, op, key string, err error) error {
	return s.classify(op, s.c.Wrap(ctx, op, s.bucket, key, err))
}

// classify gives an error of objstore this package's sentinel of its
// kind: what failed where and what to do are objstore's text. Keys in
// the text are the bucket's object names. nil stays nil.
func (s *S3Store) classify(op string, err error) error {
	var e *objstore.Error
	switch {
	case err == nil:
		return nil
	case !errors.As(err, &e):
		return fmt.Errorf("checkpoint: %s in bucket %q at %s: %w", op, s.bucket, s.c.Endpoint(), err)
	}
	switch e.Kind {
	case objstore.KindUnavailable:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case objstore.KindAccessDenied:
		return fmt.Errorf("%w: %w", ErrAccessDenied, err)
	case objstore.KindNoBucket:
		e.Hint = "create it, e.g. with `mc mb`, or open the store with CreateBucket"
		return fmt.Errorf("%w: %w", ErrNoBucket, err)
	case objstore.KindNotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return fmt.Errorf("checkpoint: %w", err)
}
