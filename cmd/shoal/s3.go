package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7"

	"shoal/checkpoint"
)

// s3Usage is the help of `shoal s3`.
const s3Usage = `usage: shoal s3 mb|ls|cp|cat [--s3-endpoint URL] ARGS

Moves a job's input into an S3-compatible service and reads its output back
(the Compose session of docs/cluster.md has no other S3 client):

  mb  s3://BUCKET              make the bucket, unless it exists
  ls  s3://BUCKET[/PREFIX]     list the objects under PREFIX: size and key
  cp  SRC DST                  copy a file to an object or back: one of SRC
                               and DST is s3://BUCKET/KEY, the other a local
                               path or - (standard input or output)
  cat s3://BUCKET/KEY|PREFIX   write an object, or every object under PREFIX/
                               in key order but those whose name starts with
                               '.' or '_' (a job's output: its part files)

The endpoint is --s3-endpoint, else $AWS_ENDPOINT_URL; the credentials are
$AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY.
`

// s3PartSize is the part size of an upload: the most it buffers.
const s3PartSize = 16 << 20

// runS3 is `shoal s3 SUBCOMMAND ...`.
func runS3(ctx context.Context, args []string) error {
	return s3Command(ctx, args, os.Stdin, os.Stdout)
}

// s3Command runs `shoal s3` with its standard input and output given.
func s3Command(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") || args[0] == "help" {
		fmt.Fprint(stdout, s3Usage)
		return flag.ErrHelp
	}
	sub, args := args[0], args[1:]
	want := map[string]int{"mb": 1, "ls": 1, "cp": 2, "cat": 1}[sub]
	if want == 0 {
		return usageErrorf("shoal s3", "unknown subcommand %q (want mb, ls, cp or cat)", sub)
	}
	fs := flag.NewFlagSet("shoal s3 "+sub, flag.ContinueOnError)
	var endpoint string
	fs.StringVar(&endpoint, "s3-endpoint", "", "`URL` of the S3-compatible service, e.g. http://minio:9000 (default $AWS_ENDPOINT_URL)")
	fs.Usage = func() { fmt.Fprint(fs.Output(), s3Usage+"\nflags:\n"); fs.PrintDefaults() }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != want {
		return usageErrorf("shoal s3 "+sub, "shoal s3 %s takes %d argument(s), got %d: %q", sub, want, fs.NArg(), fs.Args())
	}
	opts := checkpoint.Options{Endpoint: endpoint}
	a := fs.Args()
	switch sub {
	case "mb":
		bucket, key, err := parseS3URI(a[0])
		if err != nil {
			return err
		}
		if key != "" {
			return usageErrorf("shoal s3 mb", "%s names a key: give only s3://BUCKET", a[0])
		}
		opts.CreateBucket = true
		st, err := openBucket(ctx, bucket, opts)
		if err != nil {
			return err
		}
		st.Close()
		fmt.Fprintf(stdout, "s3://%s is ready\n", bucket)
		return nil
	case "ls":
		return s3List(ctx, a[0], opts, stdout)
	case "cat":
		return s3Cat(ctx, a[0], opts, stdout)
	}
	src, dst := a[0], a[1]
	switch srcS3, dstS3 := strings.HasPrefix(src, "s3://"), strings.HasPrefix(dst, "s3://"); {
	case srcS3 == dstS3:
		return usageErrorf("shoal s3 cp", "cp copies between S3 and a local file: exactly one of %q and %q must be s3://BUCKET/KEY", src, dst)
	case dstS3:
		return s3Upload(ctx, src, dst, opts, stdin)
	default:
		return s3Download(ctx, src, dst, opts, stdout)
	}
}

// parseS3URI splits s3://BUCKET[/KEY] into the bucket and the key
// (without its leading '/').
func parseS3URI(uri string) (bucket, key string, err error) {
	rest, ok := strings.CutPrefix(uri, "s3://")
	if !ok {
		return "", "", usageErrorf("shoal s3", "%q is not an s3://BUCKET/KEY URI", uri)
	}
	bucket, key, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", usageErrorf("shoal s3", "%q names no bucket", uri)
	}
	return bucket, key, nil
}

// openBucket checks that the endpoint answers, takes the credentials and
// has the bucket (making it with opts.CreateBucket), with the checkpoint
// store's configuration and errors.
func openBucket(ctx context.Context, bucket string, opts checkpoint.Options) (*checkpoint.S3Store, error) {
	st, err := checkpoint.Open(ctx, "s3://"+bucket, opts)
	if err != nil {
		if errors.Is(err, checkpoint.ErrNoBucket) {
			return nil, fmt.Errorf("%w (shoal s3 mb s3://%s makes it)", err, bucket)
		}
		return nil, err
	}
	return st.(*checkpoint.S3Store), nil
}

// s3Objects lists the objects under prefix (all of the bucket when
// empty), in key order.
func s3Objects(ctx context.Context, st *checkpoint.S3Store, prefix string) ([]minio.ObjectInfo, error) {
	var out []minio.ObjectInfo
	for obj := range st.Client().ListObjects(ctx, st.Bucket(), minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list s3://%s/%s at %s: %w", st.Bucket(), prefix, st.Endpoint(), obj.Err)
		}
		out = append(out, obj)
	}
	return out, ctx.Err()
}

func s3List(ctx context.Context, uri string, opts checkpoint.Options, stdout io.Writer) error {
	bucket, prefix, err := parseS3URI(uri)
	if err != nil {
		return err
	}
	st, err := openBucket(ctx, bucket, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	objs, err := s3Objects(ctx, st, prefix)
	if err != nil {
		return err
	}
	for _, o := range objs {
		fmt.Fprintf(stdout, "%12d  s3://%s/%s\n", o.Size, bucket, o.Key)
	}
	return nil
}

// s3Cat writes the object uri names or, if there is none, the objects
// under uri/ a reader of a job's output would read (names not starting
// with '.' or '_'), in key order.
func s3Cat(ctx context.Context, uri string, opts checkpoint.Options, stdout io.Writer) error {
	bucket, key, err := parseS3URI(uri)
	if err != nil {
		return err
	}
	st, err := openBucket(ctx, bucket, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	keys := []string{key}
	if key == "" || !s3Exists(ctx, st, key) {
		prefix := key
		if prefix != "" && !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		objs, err := s3Objects(ctx, st, prefix)
		if err != nil {
			return err
		}
		keys = keys[:0]
		for _, o := range objs {
			rel := strings.TrimPrefix(o.Key, prefix)
			if hiddenPath(rel) {
				continue
			}
			keys = append(keys, o.Key)
		}
		if len(keys) == 0 {
			return fmt.Errorf("no object s3://%s/%s, nor any under it, at %s", bucket, key, st.Endpoint())
		}
	}
	for _, k := range keys {
		if err := s3Get(ctx, st, k, stdout); err != nil {
			return err
		}
	}
	return nil
}

// hiddenPath reports whether a relative key has an element starting with
// '.' or '_' (a marker such as _SUCCESS, a temporary under _temporary/).
func hiddenPath(rel string) bool {
	for _, e := range strings.Split(rel, "/") {
		if strings.HasPrefix(e, ".") || strings.HasPrefix(e, "_") {
			return true
		}
	}
	return false
}

func s3Exists(ctx context.Context, st *checkpoint.S3Store, key string) bool {
	_, err := st.Client().StatObject(ctx, st.Bucket(), key, minio.StatObjectOptions{})
	return err == nil
}

// s3Get copies an object to w, streaming.
func s3Get(ctx context.Context, st *checkpoint.S3Store, key string, w io.Writer) error {
	uri := "s3://" + st.Bucket() + "/" + key
	obj, err := st.Client().GetObject(ctx, st.Bucket(), key, minio.GetObjectOptions{})
	if err != nil {
		return fmt.Errorf("get %s at %s: %w", uri, st.Endpoint(), err)
	}
	defer obj.Close()
	if _, err := io.Copy(w, obj); err != nil {
		return fmt.Errorf("get %s at %s: %w", uri, st.Endpoint(), err)
	}
	return nil
}

// s3Download copies the object src to the local file dst (written under a
// temporary name beside it, renamed once complete) or to stdout (-).
func s3Download(ctx context.Context, src, dst string, opts checkpoint.Options, stdout io.Writer) (err error) {
	bucket, key, err := parseS3URI(src)
	if err != nil {
		return err
	}
	if key == "" || strings.HasSuffix(key, "/") {
		return usageErrorf("shoal s3 cp", "%s names no object (shoal s3 cat reads every object under a prefix)", src)
	}
	st, err := openBucket(ctx, bucket, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	if dst == "-" {
		return s3Get(ctx, st, key, stdout)
	}
	if fi, err := os.Stat(dst); err == nil && fi.IsDir() {
		dst = filepath.Join(dst, path.Base(key))
	}
	dir, base := filepath.Split(dst)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot create a file beside %s: %w", dst, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := s3Get(ctx, st, key, f); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return os.Rename(f.Name(), dst)
}

// s3Upload copies the local file src, or stdin (-), to the object dst,
// streaming in parts of s3PartSize; the object appears only once whole.
func s3Upload(ctx context.Context, src, dst string, opts checkpoint.Options, stdin io.Reader) error {
	bucket, key, err := parseS3URI(dst)
	if err != nil {
		return err
	}
	if key == "" || strings.HasSuffix(key, "/") {
		return usageErrorf("shoal s3 cp", "%s names no object: give s3://BUCKET/KEY", dst)
	}
	r, size := stdin, int64(-1)
	if src != "-" {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return usageErrorf("shoal s3 cp", "%s is a directory: cp copies one file", src)
		}
		r, size = f, fi.Size()
	}
	st, err := openBucket(ctx, bucket, opts)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Client().PutObject(ctx, bucket, key, r, size, minio.PutObjectOptions{PartSize: s3PartSize}); err != nil {
		return fmt.Errorf("put %s at %s: %w", dst, st.Endpoint(), err)
	}
	return nil
}
