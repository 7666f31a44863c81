package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// S3Store is a Store in a bucket of an S3-compatible service, through
// minio-go: the object under key k is PREFIX/k. PutObject is atomic (an
// object larger than Options.PartSize goes up as a multipart upload,
// visible only once complete); minio-go retries transient errors with
// backoff; every error names the endpoint and the bucket.
type S3Store struct {
	client   *minio.Client
	tr       *http.Transport // the client's own: Close releases its connections
	endpoint string          // as configured, with its scheme
	bucket   string
	prefix   string // "" or ending in '/'
	opts     Options
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
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	host, secure, _ := parseEndpoint(opts.Endpoint)
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: S3 transport: %w", err)
	}
	tr.DialContext = (&net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = opts.ResponseTimeout
	tr.MaxIdleConnsPerHost = 64 // parallel partitions × parts
	client, err := minio.New(host, &minio.Options{
		Creds:      credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, ""),
		Secure:     secure,
		Transport:  tr,
		Region:     opts.Region,
		MaxRetries: opts.MaxRetries,
	})
	if err != nil {
		return nil, invalidf("S3 endpoint %s: %v", opts.Endpoint, err)
	}
	s := &S3Store{client: client, tr: tr, endpoint: opts.Endpoint, bucket: bucket, prefix: prefix, opts: opts}
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
		if err := s.client.MakeBucket(octx, s.bucket, minio.MakeBucketOptions{Region: s.opts.Region}); err != nil {
			return s.wrap(ctx, "create bucket", "", err)
		}
		err = s.probe(ctx)
	}
	return err
}

func (s *S3Store) probe(ctx context.Context) error {
	octx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	for obj := range s.client.ListObjects(octx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix, MaxKeys: 1}) {
		if obj.Err != nil {
			return s.wrap(ctx, "open", "", obj.Err)
		}
		break // one answer is enough; cancel ends the listing
	}
	return s.wrap(ctx, "open", "", octx.Err())
}

func (s *S3Store) String() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

// Close releases the store's idle connections to the service. A call
// made afterwards still works (it opens a connection); one that runs
// meanwhile keeps its own. It is not part of Store: the other stores hold
// nothing to release.
func (s *S3Store) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// Endpoint is the service's URL, as configured.
func (s *S3Store) Endpoint() string { return s.endpoint }

// Bucket is the store's bucket.
func (s *S3Store) Bucket() string { return s.bucket }

// Client is the minio-go client, for tests and tools that need more than a
// Store (e.g. reading an object's ETag).
func (s *S3Store) Client() *minio.Client { return s.client }

// ObjectName is the name in the bucket of the object under key.
func (s *S3Store) ObjectName(key string) string { return s.prefix + key }

func (s *S3Store) Put(ctx context.Context, key string, data []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	_, err := s.client.PutObject(octx, s.bucket, s.prefix+key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
		ContentType: "application/octet-stream",
		PartSize:    uint64(s.opts.PartSize),
		NumThreads:  uint(s.opts.PartThreads),
	})
	return s.wrap(ctx, "put", key, err)
}

func (s *S3Store) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	obj, err := s.client.GetObject(octx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
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
	octx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	var out []ObjectInfo
	for obj := range s.client.ListObjects(octx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, s.wrap(ctx, "list", prefix, obj.Err)
		}
		key := strings.TrimPrefix(obj.Key, s.prefix)
		if checkKey(key) != nil { // written by something else; never ours
			continue
		}
		out = append(out, ObjectInfo{Key: key, Size: obj.Size, ModTime: obj.LastModified})
	}
	if err := octx.Err(); err != nil { // the listing ended early
		return nil, s.wrap(ctx, "list", prefix, err)
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
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
	octx, cancel := context.WithTimeout(ctx, s.opts.OpTimeout)
	defer cancel()
	ch := make(chan minio.ObjectInfo, len(keys))
	for _, k := range keys {
		ch <- minio.ObjectInfo{Key: s.prefix + k}
	}
	close(ch)
	var errs []error
	for e := range s.client.RemoveObjects(octx, s.bucket, ch, minio.RemoveObjectsOptions{}) {
		if e.Err != nil {
			errs = append(errs, s.wrap(ctx, "delete", strings.TrimPrefix(e.ObjectName, s.prefix), e.Err))
		}
	}
	if len(errs) == 0 && octx.Err() != nil {
		errs = append(errs, s.wrap(ctx, "delete", keys[0], octx.Err()))
	}
	return errors.Join(errs...)
}

// wrap classifies an error of minio-go once, into this package's
// sentinels, and says what failed where and what to do. ctx is the
// caller's: a deadline of the caller is reported as such, the store's own
// OpTimeout as ErrUnavailable. nil stays nil.
func (s *S3Store) wrap(ctx context.Context, op, key string, err error) error {
	if err == nil {
		return nil
	}
	what := op
	if key != "" {
		what += " " + key
	}
	where := fmt.Sprintf("bucket %q at %s", s.bucket, s.endpoint)
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("checkpoint: %s in %s: %w", what, where, ctx.Err())
	}
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) {
		// No answer from the service: network, refused connection, timeout.
		// The request's URL (long, with an upload ID) says nothing the
		// message does not.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %s in %s: no answer within %v (is the S3 service up and reachable?): %w", ErrUnavailable, what, where, s.opts.OpTimeout, err)
		}
		return fmt.Errorf("%w: %s in %s: %w (is the S3 service running and reachable? check --s3-endpoint or AWS_ENDPOINT_URL)", ErrUnavailable, what, where, err)
	}
	switch resp.Code {
	case "NoSuchKey":
		return fmt.Errorf("%w: %s in %s", ErrNotFound, what, where)
	case "NoSuchBucket":
		return fmt.Errorf("%w: %s: bucket %q does not exist at %s (create it, e.g. with `mc mb`, or open the store with CreateBucket)", ErrNoBucket, what, s.bucket, s.endpoint)
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken", "AllAccessDisabled":
		hint := "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
		if s.opts.AccessKey == "" {
			hint = "no credentials were given: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
		}
		return fmt.Errorf("%w: %s in %s: %s: %s (%s)", ErrAccessDenied, what, where, resp.Code, resp.Message, hint)
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
		return fmt.Errorf("%w: %s in %s: %s (HTTP %d, still failing after %d attempts)", ErrUnavailable, what, where, err, resp.StatusCode, s.opts.MaxRetries)
	}
	return fmt.Errorf("checkpoint: %s in %s: %w", what, where, err)
}
