package checkpoint

import "shoal/objstore"

// Options configure an S3-compatible store (Open of s3://bucket/prefix);
// the other stores take none. It is objstore.Options, the configuration
// shared with the s3:// inputs and outputs of package client: zero fields
// take their defaults (EnsureDefaults), some from the standard AWS
// environment variables, and Validate reports every problem at once.
type Options = objstore.Options

// Defaults of Options (objstore's).
const (
	DefaultPartSize        = objstore.DefaultPartSize
	MinPartSize            = objstore.MinPartSize
	DefaultPartThreads     = objstore.DefaultPartThreads
	DefaultMaxRetries      = objstore.DefaultMaxRetries
	DefaultDialTimeout     = objstore.DefaultDialTimeout
	DefaultResponseTimeout = objstore.DefaultResponseTimeout
	DefaultOpTimeout       = objstore.DefaultOpTimeout
)
