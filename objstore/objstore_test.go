package objstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"shoal/internal/miniotest"
	"shoal/objstore"
)

const bucket = "data"

func newClient(t *testing.T, endpoint string, opts objstore.Options) *objstore.Client {
	t.Helper()
	opts.Endpoint = endpoint
	if opts.AccessKey == "" {
		opts.AccessKey, opts.SecretKey = miniotest.AccessKey, miniotest.SecretKey
	}
	c, err := objstore.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rangeLog is a proxy in front of the server that records the Range
// header of every GET.
type rangeLog struct {
	mu     sync.Mutex
	ranges []string
}

func (l *rangeLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.ranges
	l.ranges = nil
	return r
}

func startProxy(t *testing.T, target string) (string, *rangeLog) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	log := &rangeLog{}
	proxy := httputil.NewSingleHostReverseProxy(u) // keeps the Host header, which the signature covers
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "" && !r.URL.Query().Has("location") {
			log.mu.Lock()
			log.ranges = append(log.ranges, r.Header.Get("Range"))
			log.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, log
}

// RangeReader reads exactly the bytes asked for, with a first GET of
// [off, first) and then windows that grow from 64 KiB: a reader that
// stops soon after first asks for little more.
func TestRangeReader(t *testing.T) {
	srv := miniotest.Start(t, bucket)
	ctx := context.Background()
	endpoint, log := startProxy(t, srv.Endpoint())
	c := newClient(t, endpoint, objstore.Options{})
	data := make([]byte, 3<<20)
	rand.NewChaCha8([32]byte{1}).Read(data)
	if err := c.Put(ctx, bucket, "obj", data); err != nil {
		t.Fatal(err)
	}
	obj, err := c.Stat(ctx, bucket, "obj")
	if err != nil || obj.Size != int64(len(data)) || obj.ETag == "" {
		t.Fatalf("Stat = %+v, %v", obj, err)
	}
	log.take()
	size := int64(len(data))
	for _, tc := range []struct {
		off, first, end int64
		wantRanges      []string
	}{
		{0, size, size, []string{fmt.Sprintf("bytes=0-%d", size-1)}},
		{100, 200, 200, []string{"bytes=100-199"}},
		// Past first: windows of 64 KiB, 128 KiB, 256 KiB, ... to the end.
		{1000, 2000, 2000 + 64<<10 + 128<<10 + 10, []string{"bytes=1000-1999", fmt.Sprintf("bytes=2000-%d", 2000+64<<10-1),
			fmt.Sprintf("bytes=%d-%d", 2000+64<<10, 2000+192<<10-1), fmt.Sprintf("bytes=%d-%d", 2000+192<<10, 2000+192<<10+9)}},
		{size - 10, size, size, []string{fmt.Sprintf("bytes=%d-%d", size-10, size-1)}},
		{size, size, size, nil}, // nothing to read: no request
	} {
		r := c.NewRangeReader(ctx, bucket, "obj", obj.ETag, tc.off, tc.first, tc.end)
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data[tc.off:tc.end]) {
			t.Errorf("[%d, %d): %d bytes, %v; want %d bytes equal to the object's", tc.off, tc.end, len(got), err, tc.end-tc.off)
		}
		if ranges := log.take(); !slices.Equal(ranges, tc.wantRanges) {
			t.Errorf("[%d, %d) first %d: GETs of %q, want %q", tc.off, tc.end, tc.first, ranges, tc.wantRanges)
		}
	}

	// A reader that stops early asks for no more than its window.
	r := c.NewRangeReader(ctx, bucket, "obj", obj.ETag, 0, 10, size)
	buf := make([]byte, 20)
	if _, err := io.ReadFull(r, buf); err != nil || !bytes.Equal(buf, data[:20]) {
		t.Fatalf("ReadFull: %v", err)
	}
	r.Close()
	if ranges := log.take(); !slices.Equal(ranges, []string{"bytes=0-9", fmt.Sprintf("bytes=10-%d", 10+64<<10-1)}) {
		t.Errorf("a reader of 20 bytes asked for %q", ranges)
	}

	// Pinned to the ETag: a rewritten object fails the read, never mixes.
	r = c.NewRangeReader(ctx, bucket, "obj", obj.ETag, 0, 10, size)
	if _, err := io.ReadFull(r, buf[:10]); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, bucket, "obj", data[:size/2]); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r)
	if !errors.Is(err, objstore.ErrChanged) || !strings.Contains(err.Error(), "obj") {
		t.Errorf("reading a rewritten object: %v, want ErrChanged naming it", err)
	}
	// And a deleted one says so.
	if err := c.Delete(ctx, bucket, "obj"); err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(c.NewRangeReader(ctx, bucket, "obj", "", 0, 10, 20))
	if !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("reading a deleted object: %v, want ErrNotFound", err)
	}
}

// errReader gives n bytes, then fails.
type errReader struct {
	n   int
	err error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

// PutStream uploads an object of unknown size in parts; one whose reader
// fails leaves nothing under its key.
func TestPutStream(t *testing.T) {
	srv := miniotest.Start(t, bucket)
	ctx := context.Background()
	c := newClient(t, srv.Endpoint(), objstore.Options{PartSize: objstore.MinPartSize})
	data := make([]byte, 12<<20) // three parts
	rand.NewChaCha8([32]byte{2}).Read(data)
	for _, tc := range []struct {
		name string
		data []byte
	}{{"empty", nil}, {"small", data[:1000]}, {"three parts", data}} {
		n, err := c.PutStream(ctx, bucket, tc.name, bytes.NewReader(tc.data))
		if err != nil || n != int64(len(tc.data)) {
			t.Fatalf("%s: PutStream = %d, %v", tc.name, n, err)
		}
		obj, err := c.Stat(ctx, bucket, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c.NewRangeReader(ctx, bucket, tc.name, obj.ETag, 0, obj.Size, obj.Size))
		if err != nil || !bytes.Equal(got, tc.data) {
			t.Errorf("%s: read back %d bytes, %v; want %d", tc.name, len(got), err, len(tc.data))
		}
	}
	boom := errors.New("the writer failed")
	for _, n := range []int{0, 1000, 7 << 20} { // before, within, after the first part
		key := fmt.Sprintf("failed-%d", n)
		if _, err := c.PutStream(ctx, bucket, key, &errReader{n: n, err: boom}); !errors.Is(err, boom) {
			t.Errorf("PutStream of a failing reader (%d bytes): %v, want its error", n, err)
		}
		if _, err := c.Stat(ctx, bucket, key); !errors.Is(err, objstore.ErrNotFound) {
			t.Errorf("after a failed PutStream (%d bytes), Stat: %v, want ErrNotFound", n, err)
		}
	}
	objs, err := c.List(ctx, bucket, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	if want := []string{"empty", "small", "three parts"}; !slices.Equal(keys, want) {
		t.Errorf("List = %q, want %q", keys, want)
	}
	if _, err := c.List(ctx, bucket, "", 2); !errors.Is(err, objstore.ErrTooMany) {
		t.Errorf("List beyond its limit: %v, want ErrTooMany", err)
	}
	if err := c.Copy(ctx, bucket, "small", "copy/small", 1000); err != nil {
		t.Fatal(err)
	}
	if obj, err := c.Stat(ctx, bucket, "copy/small"); err != nil || obj.Size != 1000 {
		t.Errorf("the copy: %+v, %v", obj, err)
	}
	if found, err := c.Any(ctx, bucket, "copy/"); err != nil || !found {
		t.Errorf("Any(copy/) = %v, %v", found, err)
	}
	if found, err := c.Any(ctx, bucket, "nothing/"); err != nil || found {
		t.Errorf("Any(nothing/) = %v, %v", found, err)
	}
}

// Every error a person meets names the endpoint and the bucket (and the
// key), says what is wrong, and comes back within a bounded time; none
// holds the secret key.
func TestErrors(t *testing.T) {
	srv := miniotest.Start(t, bucket)
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	const secret = "wrong-secret-value"
	for _, tc := range []struct {
		name     string
		endpoint string
		opts     objstore.Options
		bucket   string
		want     error
		mentions []string
	}{
		{"missing bucket", srv.Endpoint(), objstore.Options{}, "no-such-bucket", objstore.ErrNoBucket, []string{`"no-such-bucket"`, srv.Endpoint(), "does not exist", "mc mb"}},
		{"missing key", srv.Endpoint(), objstore.Options{}, bucket, objstore.ErrNotFound, []string{`"data"`, srv.Endpoint(), "stat missing/key", "no such object"}},
		{"bad credentials", srv.Endpoint(), objstore.Options{AccessKey: miniotest.AccessKey, SecretKey: secret}, bucket, objstore.ErrAccessDenied, []string{`"data"`, srv.Endpoint(), "SignatureDoesNotMatch", "AWS_SECRET_ACCESS_KEY"}},
		{"unreachable endpoint", closed, objstore.Options{MaxRetries: 1}, bucket, objstore.ErrUnavailable, []string{`"data"`, closed, "connection refused", "AWS_ENDPOINT_URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.endpoint, tc.opts)
			start := time.Now()
			_, err := c.Stat(ctx, tc.bucket, "missing/key")
			if !errors.Is(err, tc.want) {
				t.Fatalf("Stat: %v, want %v", err, tc.want)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q holds the secret or is not one line", err)
			}
			if took := time.Since(start); took > 15*time.Second {
				t.Errorf("took %v", took)
			}
			t.Logf("%v", err)
		})
	}
	t.Run("caller's deadline", func(t *testing.T) {
		c := newClient(t, srv.Endpoint(), objstore.Options{})
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := c.List(cctx, bucket, "", 0)
		var e *objstore.Error
		if !errors.As(err, &e) || e.Kind != objstore.KindCanceled || !errors.Is(err, context.Canceled) {
			t.Errorf("List with a cancelled ctx: %v, want KindCanceled wrapping context.Canceled", err)
		}
	})
}

func TestParseURI(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   objstore.URI
		str    string // want.String()
		errHas string
	}{
		{in: "s3://bucket/a/b.txt", want: objstore.URI{Bucket: "bucket", Key: "a/b.txt"}, str: "s3://bucket/a/b.txt"},
		{in: "s3://bucket/prefix/", want: objstore.URI{Bucket: "bucket", Key: "prefix/"}, str: "s3://bucket/prefix/"},
		{in: "s3://bucket", want: objstore.URI{Bucket: "bucket"}, str: "s3://bucket/"},
		{in: "s3://bucket/", want: objstore.URI{Bucket: "bucket"}, str: "s3://bucket/"},
		{in: "/local/path", errHas: "does not start with s3://"},
		{in: "s3://b/k", errHas: "bucket name"}, // too short
		{in: "s3://Bad_Bucket/x", errHas: "bucket name"},
		{in: "s3://user:topsecret@bucket/x", errHas: "holds no credentials"},
		{in: "s3://bucket/\xff", errHas: "key"},
	} {
		got, err := objstore.ParseURI(tc.in)
		if tc.errHas != "" {
			if !errors.Is(err, objstore.ErrInvalidURI) || !strings.Contains(err.Error(), tc.errHas) || strings.Contains(fmt.Sprint(err), "topsecret") {
				t.Errorf("ParseURI(%q) = %v, %v; want ErrInvalidURI mentioning %q (and no secret)", tc.in, got, err, tc.errHas)
			}
			continue
		}
		if err != nil || got != tc.want || got.String() != tc.str {
			t.Errorf("ParseURI(%q) = %+v (%s), %v; want %+v (%s)", tc.in, got, got, err, tc.want, tc.str)
		}
	}
}
