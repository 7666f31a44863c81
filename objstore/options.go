package objstore

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Options configure the access to an S3-compatible service: the
// checkpoint store's (checkpoint.Options is this type) and the s3://
// inputs and outputs of package client (client.Options.S3). Zero fields
// take their defaults (EnsureDefaults), some from the standard AWS
// environment variables.
type Options struct {
	// Endpoint is the URL of the S3-compatible service: http://host:port
	// or https://host; the scheme chooses plain HTTP or TLS. The CLI's
	// --s3-endpoint. Default: $AWS_ENDPOINT_URL.
	Endpoint string
	// AccessKey and SecretKey are the credentials. Default:
	// $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY. Both empty means
	// anonymous requests.
	AccessKey, SecretKey string
	// Region is sent with every request, sparing a lookup of the bucket's
	// region. Default: $AWS_REGION, else us-east-1 (MinIO's default).
	Region string
	// CreateBucket makes checkpoint.Open create the bucket if it does not
	// exist, instead of failing with ErrNoBucket. Inputs and outputs
	// never create a bucket.
	CreateBucket bool
	// PartSize is the multipart threshold and part size: an object larger
	// than PartSize is uploaded in parts of PartSize bytes, PartThreads at
	// a time, and becomes visible only when all parts are in. Default 16
	// MiB; at least 5 MiB (S3's smallest part).
	PartSize int64
	// PartThreads is the number of parts of one object uploaded at once.
	// Default 4.
	PartThreads int
	// MaxRetries is how many times a request is tried on a transient error
	// (network error, 5xx, throttling), with exponential backoff and jitter
	// (200 ms doubling up to 1 s between attempts). Default 4; 1 tries
	// once.
	MaxRetries int
	// DialTimeout bounds connecting to the endpoint. Default 5 s.
	DialTimeout time.Duration
	// ResponseTimeout bounds the wait for a response once a request has
	// been sent. Default 30 s.
	ResponseTimeout time.Duration
	// OpTimeout bounds each operation (a put, a get, a listing, a
	// deletion, a copy; a checkpoint store's check of its bucket),
	// retries included, besides the caller's ctx. A streamed read or
	// write (RangeReader, PutStream) is bounded by its caller's ctx
	// instead: it lasts as long as its reader or writer. Default 5 min.
	OpTimeout time.Duration
}

// Defaults of Options.
const (
	DefaultPartSize        = 16 << 20
	MinPartSize            = 5 << 20
	DefaultPartThreads     = 4
	DefaultMaxRetries      = 4
	DefaultDialTimeout     = 5 * time.Second
	DefaultResponseTimeout = 30 * time.Second
	DefaultOpTimeout       = 5 * time.Minute
)

// EnsureDefaults replaces zero fields by their defaults, reading the AWS
// environment variables for Endpoint, AccessKey, SecretKey and Region.
func (o *Options) EnsureDefaults() {
	env := func(dst *string, name string) {
		if *dst == "" {
			*dst = os.Getenv(name)
		}
	}
	env(&o.Endpoint, "AWS_ENDPOINT_URL")
	if o.AccessKey == "" && o.SecretKey == "" {
		env(&o.AccessKey, "AWS_ACCESS_KEY_ID")
		env(&o.SecretKey, "AWS_SECRET_ACCESS_KEY")
	}
	env(&o.Region, "AWS_REGION")
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.PartThreads == 0 {
		o.PartThreads = DefaultPartThreads
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.ResponseTimeout == 0 {
		o.ResponseTimeout = DefaultResponseTimeout
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = DefaultOpTimeout
	}
}

// Validate reports every problem of o at once, each wrapping
// ErrInvalidOptions. Call it after EnsureDefaults (New does both).
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	if o.Endpoint == "" {
		bad("no S3 endpoint: pass --s3-endpoint or set AWS_ENDPOINT_URL (e.g. http://127.0.0.1:9000 or https://s3.us-east-1.amazonaws.com)")
	} else if _, _, err := ParseEndpoint(o.Endpoint); err != nil {
		bad("%v", err)
	}
	if (o.AccessKey == "") != (o.SecretKey == "") {
		bad("only one of the access key and the secret key is set: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither for anonymous requests")
	}
	if o.PartSize < MinPartSize {
		bad("PartSize %d is below S3's smallest part, %d bytes", o.PartSize, MinPartSize)
	}
	if o.PartThreads < 1 {
		bad("PartThreads %d must be at least 1", o.PartThreads)
	}
	if o.MaxRetries < 1 {
		bad("MaxRetries %d must be at least 1 (1 tries once)", o.MaxRetries)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"DialTimeout", o.DialTimeout}, {"ResponseTimeout", o.ResponseTimeout}, {"OpTimeout", o.OpTimeout}} {
		if d.v < 0 {
			bad("%s %v is negative", d.name, d.v)
		}
	}
	return errors.Join(errs...)
}

// ParseEndpoint splits an endpoint URL into host[:port] and whether it
// uses TLS.
func ParseEndpoint(endpoint string) (host string, secure bool, err error) {
	if !strings.Contains(endpoint, "://") {
		return "", false, fmt.Errorf("S3 endpoint %q has no scheme: write http://%s or https://%s", endpoint, endpoint, endpoint)
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", false, fmt.Errorf("S3 endpoint %q: %v", endpoint, err)
	}
	switch u.Scheme {
	case "http":
	case "https":
		secure = true
	default:
		return "", false, fmt.Errorf("S3 endpoint %q: scheme %q is neither http nor https", endpoint, u.Scheme)
	}
	if u.Host == "" {
		return "", false, fmt.Errorf("S3 endpoint %q has no host", endpoint)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", false, fmt.Errorf("S3 endpoint %q must be only a scheme and a host[:port] (the bucket and prefix go in the s3:// URI)", endpoint)
	}
	return u.Host, secure, nil
}
