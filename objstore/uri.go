package objstore

import (
	"fmt"
	"strings"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Scheme is the prefix of the URIs this package reads.
const Scheme = "s3://"

// IsURI reports whether s is meant as an s3:// URI (it starts with
// "s3://"; ParseURI says whether it is a good one).
func IsURI(s string) bool { return strings.HasPrefix(s, Scheme) }

// URI is an object or a prefix of a bucket: s3://Bucket/Key. Key may be
// empty (the whole bucket) and may end in '/' (a prefix).
type URI struct {
	Bucket, Key string
}

// ParseURI parses s3://bucket/key. The bucket must be a valid S3 bucket
// name and the key a valid object name or empty. A URI that holds
// credentials (user:secret@bucket) is refused without repeating it:
// credentials come from the environment or Options, never from a URI,
// which ends up in logs.
func ParseURI(s string) (URI, error) {
	if !IsURI(s) {
		return URI{}, fmt.Errorf("%w: %q does not start with %s (want s3://bucket/key)", ErrInvalidURI, s, Scheme)
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(s, Scheme), "/")
	if strings.ContainsAny(bucket, "@:") {
		return URI{}, fmt.Errorf("%w: an s3:// URI holds no credentials or port (the endpoint comes from --s3-endpoint or AWS_ENDPOINT_URL, the credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)", ErrInvalidURI)
	}
	if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
		return URI{}, fmt.Errorf("%w: bucket name %q in %s: %v", ErrInvalidURI, bucket, s, err)
	}
	if key != "" {
		if err := s3utils.CheckValidObjectName(key); err != nil {
			return URI{}, fmt.Errorf("%w: key %q in %s: %v", ErrInvalidURI, key, s, err)
		}
	}
	return URI{Bucket: bucket, Key: key}, nil
}

func (u URI) String() string { return Scheme + u.Bucket + "/" + u.Key }
