package checkpoint

import (
	"errors"
	"fmt"
)

// Sentinel errors, tested with errors.Is. Every error of this package wraps
// at most one of them, and says in its text which store, endpoint and
// bucket it concerns and what to do.
var (
	// ErrInvalidArgument: a bad URI, option, checkpoint name, key or
	// manifest. Retrying the same call fails the same way.
	ErrInvalidArgument = errors.New("checkpoint: invalid argument")
	// ErrNotFound: no object under that key.
	ErrNotFound = errors.New("checkpoint: not found")
	// ErrIncomplete: the checkpoint has no manifest, so it does not exist
	// (it is being written, or its writer failed).
	ErrIncomplete = errors.New("checkpoint: incomplete (no manifest)")
	// ErrCorrupt: an object fails its checksum, has the wrong size or does
	// not parse. Its bytes are never returned.
	ErrCorrupt = errors.New("checkpoint: corrupt")
	// ErrUnavailable: the store could not be reached or kept failing after
	// retries (network, a stopped server, a timeout). Retrying later may
	// succeed.
	ErrUnavailable = errors.New("checkpoint: store unavailable")
	// ErrAccessDenied: the store refused the credentials or the request.
	ErrAccessDenied = errors.New("checkpoint: access denied")
	// ErrNoBucket: the S3 bucket does not exist.
	ErrNoBucket = errors.New("checkpoint: bucket does not exist")
)

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidArgument}, args...)...)
}

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}
