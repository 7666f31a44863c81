// Package objstore is shoal's access to S3-compatible object stores
// (MinIO, AWS S3, ...) through minio-go, shared by the checkpoint store
// (package checkpoint, whose Options is this package's) and the s3://
// inputs and outputs of package client.
//
// # Configuration
//
// Options name the endpoint (Options.Endpoint, the CLI's --s3-endpoint,
// else $AWS_ENDPOINT_URL; its scheme chooses http or https), the
// credentials ($AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY, or both
// empty for anonymous requests), the region ($AWS_REGION, else
// us-east-1), the multipart part size, retries and timeouts.
// EnsureDefaults fills zero fields, Validate reports every problem at
// once (ErrInvalidOptions), New does both and makes a Client: a
// minio-go client with its own HTTP transport, whose dials, response
// headers and operations are bounded (DialTimeout, ResponseTimeout,
// OpTimeout), so that a dead endpoint gives an error, not a hang.
// Options.Environ gives the AWS variables that hand a configuration to a
// child process (a driver's workers). Credentials never appear in an
// error or a URI: ParseURI refuses s3://user:secret@bucket without
// repeating it.
//
// # Errors
//
// Client.Wrap classifies minio-go's errors in one place into an *Error:
// its Kind (KindUnavailable: no answer, 5xx or throttling after retries;
// KindAccessDenied; KindNoBucket; KindNotFound; KindChanged: a read
// pinned to an ETag found another; KindCanceled: the caller's ctx;
// KindOther) and one line naming the operation, the key, the bucket and
// the endpoint, with what to do. errors.Is matches an *Error against the
// sentinel of its kind (ErrUnavailable, ...). The checkpoint store gives
// the same errors its own sentinels.
//
// # Operations
//
//   - List, Any and Stat: a listing, sorted by key and bounded in objects
//     (ErrTooMany); whether a prefix holds anything; one object's size and
//     ETag.
//   - RangeReader reads bytes [off, end) of an object with ranged GETs:
//     the first up to a given offset (a split's end), the next ones in
//     windows of 64 KiB doubling up to 8 MiB, so a reader that stops soon
//     after the first range (a split finishing its last line) asks for
//     little more than it reads. Each GET carries If-Match with the ETag
//     the object was listed with: an object rewritten meanwhile fails the
//     read (ErrChanged) rather than mix two versions.
//   - Put writes a small object in one request; PutStream writes a stream
//     of unknown size as a multipart upload of PartSize parts, one in
//     memory at a time, visible only once complete, aborted if its reader
//     fails.
//   - Copy copies an object on the server (CopyObject; above 5 GiB a
//     multipart copy), Delete removes objects in batches.
package objstore
