package objstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/minio/minio-go/v7"
)

// Sentinel errors, tested with errors.Is. An *Error matches the one of its
// Kind; an error of Options.Validate or of a URI wraps ErrInvalidOptions
// or ErrInvalidURI.
var (
	// ErrInvalidOptions: Options that cannot work (Validate).
	ErrInvalidOptions = errors.New("objstore: invalid S3 options")
	// ErrInvalidURI: a string that is not an s3://bucket/key URI, or
	// names a bucket or key S3 does not accept.
	ErrInvalidURI = errors.New("objstore: invalid s3:// URI")
	// ErrUnavailable: the service could not be reached or kept failing
	// after retries (network, a stopped server, a timeout). Retrying later
	// may succeed.
	ErrUnavailable = errors.New("objstore: service unavailable")
	// ErrAccessDenied: the service refused the credentials or the request.
	ErrAccessDenied = errors.New("objstore: access denied")
	// ErrNoBucket: the bucket does not exist.
	ErrNoBucket = errors.New("objstore: bucket does not exist")
	// ErrNotFound: no object under that key.
	ErrNotFound = errors.New("objstore: no such object")
	// ErrChanged: the object is not the one a read was pinned to (its ETag
	// differs: it was rewritten or deleted since it was listed).
	ErrChanged = errors.New("objstore: object changed")
)

// Kind classifies an *Error.
type Kind int

// The kinds of *Error. KindOther is an answer of the service that none of
// the others describes (a malformed request, an unsupported feature);
// KindCanceled is the caller's ctx ending.
const (
	KindOther Kind = iota
	KindCanceled
	KindUnavailable
	KindAccessDenied
	KindNoBucket
	KindNotFound
	KindChanged
)

// sentinel is the sentinel an *Error of kind k matches, nil for none.
func (k Kind) sentinel() error {
	switch k {
	case KindUnavailable:
		return ErrUnavailable
	case KindAccessDenied:
		return ErrAccessDenied
	case KindNoBucket:
		return ErrNoBucket
	case KindNotFound:
		return ErrNotFound
	case KindChanged:
		return ErrChanged
	}
	return nil
}

// Error is a failed operation on a service, classified once (Client.Wrap):
// what was done to what (What: "get part-00001"), where (Bucket,
// Endpoint), what went wrong (Detail, Err) and what to do (Hint). Its text
// is one line naming all of them; it never holds a credential. errors.Is
// matches it against the sentinel of its Kind, and it unwraps to Err.
type Error struct {
	Kind     Kind
	What     string
	Bucket   string
	Endpoint string
	// Detail says what went wrong, for a person; Err is the cause.
	Detail string
	Err    error
	// Hint says what to do ("" for nothing to say). A caller may replace
	// it with advice of its own (the checkpoint store names CreateBucket).
	Hint string
}

func (e *Error) Error() string {
	var msg string
	if e.Kind == KindNoBucket {
		msg = fmt.Sprintf("%s: bucket %q does not exist at %s", e.What, e.Bucket, e.Endpoint)
	} else {
		msg = fmt.Sprintf("%s in bucket %q at %s: %s", e.What, e.Bucket, e.Endpoint, e.Detail)
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	s := e.Kind.sentinel()
	return s != nil && target == s
}

// Wrap classifies an error of minio-go once, into an *Error saying what
// failed where and what to do; op names the operation and key its object
// (or prefix; "" for the bucket). ctx is the caller's: its end is
// reported as such (KindCanceled), the client's own OpTimeout as
// KindUnavailable. nil stays nil.
func (c *Client) Wrap(ctx context.Context, op, bucket, key string, err error) error {
	if err == nil {
		return nil
	}
	what := op
	if key != "" {
		what += " " + key
	}
	e := &Error{What: what, Bucket: bucket, Endpoint: c.opts.Endpoint, Err: err}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		e.Kind, e.Detail, e.Err = KindCanceled, ctx.Err().Error(), ctx.Err()
		return e
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
		e.Kind, e.Err = KindUnavailable, err
		if errors.Is(err, context.DeadlineExceeded) {
			e.Detail = fmt.Sprintf("no answer within %v: %v", c.opts.OpTimeout, err)
			e.Hint = "is the S3 service up and reachable?"
			return e
		}
		e.Detail = err.Error()
		e.Hint = "is the S3 service running and reachable? check --s3-endpoint or AWS_ENDPOINT_URL"
		return e
	}
	switch resp.Code {
	case "NoSuchKey":
		e.Kind, e.Detail = KindNotFound, "no such object"
		return e
	case "NoSuchBucket":
		e.Kind, e.Hint = KindNoBucket, "create it, e.g. with `mc mb`"
		return e
	case "PreconditionFailed":
		e.Kind, e.Detail = KindChanged, "the object changed since it was listed (its ETag differs)"
		e.Hint = "do not rewrite an input while a job reads it"
		return e
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken", "AllAccessDisabled":
		e.Kind, e.Detail = KindAccessDenied, resp.Code+": "+resp.Message
		e.Hint = "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
		if c.opts.AccessKey == "" {
			e.Hint = "no credentials were given: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
		}
		return e
	}
	if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
		e.Kind = KindUnavailable
		e.Detail = fmt.Sprintf("%v (HTTP %d, still failing after %d attempts)", err, resp.StatusCode, c.opts.MaxRetries)
		return e
	}
	e.Kind, e.Detail = KindOther, err.Error()
	return e
}
