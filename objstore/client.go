package objstore

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Client is a minio-go client of one endpoint with its Options (defaults
// filled in), its own HTTP transport and the classification of its
// errors (Wrap). It is safe for concurrent use.
type Client struct {
	mc   *minio.Client
	tr   *http.Transport // the client's own: Close releases its connections
	opts Options
}

// New makes a client of opts.Endpoint after EnsureDefaults and Validate
// (whose errors it returns, each wrapping ErrInvalidOptions). It sends no
// request.
func New(opts Options) (*Client, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	host, secure, _ := ParseEndpoint(opts.Endpoint)
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("objstore: S3 transport: %w", err)
	}
	tr.DialContext = (&net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = opts.ResponseTimeout
	tr.MaxIdleConnsPerHost = 64 // parallel partitions × parts
	mc, err := minio.New(host, &minio.Options{
		Creds:      credentials.NewStaticV4(opts.AccessKey, opts.SecretKey, ""),
		Secure:     secure,
		Transport:  tr,
		Region:     opts.Region,
		MaxRetries: opts.MaxRetries,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: S3 endpoint %s: %v", ErrInvalidOptions, opts.Endpoint, err)
	}
	return &Client{mc: mc, tr: tr, opts: opts}, nil
}

// Close releases the client's idle connections to the service. A call
// made afterwards still works (it opens a connection); one that runs
// meanwhile keeps its own.
func (c *Client) Close() error {
	c.tr.CloseIdleConnections()
	return nil
}

// Minio is the minio-go client, for what this package does not wrap.
func (c *Client) Minio() *minio.Client { return c.mc }

// Options are the client's options, defaults filled in.
func (c *Client) Options() Options { return c.opts }

// Endpoint is the service's URL, as configured.
func (c *Client) Endpoint() string { return c.opts.Endpoint }

// Environ returns the environment variables that give a process o's
// endpoint, credentials and region (those set), as EnsureDefaults reads
// them: how a driver hands its S3 configuration to the workers it
// starts. The result holds the secret key: it goes into a child's
// environment, never into a log.
func (o Options) Environ() []string {
	var env []string
	for _, kv := range [][2]string{
		{"AWS_ENDPOINT_URL", o.Endpoint},
		{"AWS_ACCESS_KEY_ID", o.AccessKey},
		{"AWS_SECRET_ACCESS_KEY", o.SecretKey},
		{"AWS_REGION", o.Region},
	} {
		if kv[1] != "" {
			env = append(env, kv[0]+"="+kv[1])
		}
	}
	return env
}
