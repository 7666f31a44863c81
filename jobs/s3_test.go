package jobs_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"shoal/client"
	"shoal/internal/miniotest"
	"shoal/internal/testbin"
	"shoal/jobs"
	"shoal/objstore"
)

// The jobs with s3:// inputs and outputs (issue 11), on a real MinIO.
// The test process has no AWS variables: the workers have the endpoint
// and credentials only from the driver's Options.S3.

const s3Bucket = "jobs"

// s3Env is a MinIO server and a context configured for it.
type s3Env struct {
	srv *miniotest.Server
	mc  *minio.Client
	c   *client.Context
}

func startS3(t *testing.T, nodes, workers int) *s3Env {
	t.Helper()
	for _, v := range []string{"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} {
		t.Setenv(v, "")
	}
	srv := miniotest.Start(t, s3Bucket)
	mc, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.NewContext(context.Background(), client.Options{
		Nodes: nodes, WorkersPerNode: workers, Binary: os.Args[0], NodeBinary: testbin.Shoal(t),
		Dir: t.TempDir(), WorkerStderr: os.Stderr,
		S3: objstore.Options{Endpoint: srv.Endpoint(), AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &s3Env{srv: srv, mc: mc, c: c}
}

func (e *s3Env) put(t *testing.T, key string, data []byte) {
	t.Helper()
	if _, err := e.mc.PutObject(context.Background(), s3Bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
}

// list returns the keys under prefix, sorted.
func (e *s3Env) list(t *testing.T, prefix string) []string {
	t.Helper()
	var keys []string
	for o := range e.mc.ListObjects(context.Background(), s3Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys
}

// download copies the objects under prefix (a committed output: it must
// hold _SUCCESS and no _temporary/) into a new local directory.
func (e *s3Env) download(t *testing.T, prefix string) string {
	t.Helper()
	dir := t.TempDir()
	keys := e.list(t, prefix+"/")
	if !slices.Contains(keys, prefix+"/_SUCCESS") {
		t.Fatalf("the output %s has no _SUCCESS: %q", prefix, keys)
	}
	for _, k := range keys {
		if strings.Contains(k, "/_temporary/") {
			t.Fatalf("the output %s kept its temporary objects: %q", prefix, keys)
		}
		obj, err := e.mc.GetObject(context.Background(), s3Bucket, k, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, path.Base(k)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// uploadLines puts data as n objects under prefix, cut at line
// boundaries.
func (e *s3Env) uploadLines(t *testing.T, prefix string, data []byte, n int) {
	t.Helper()
	for i := range n {
		lo, hi := len(data)*i/n, len(data)*(i+1)/n
		for lo > 0 && lo < len(data) && data[lo-1] != '\n' {
			lo++
		}
		for hi < len(data) && data[hi-1] != '\n' {
			hi++
		}
		e.put(t, prefix+"/part-"+string(rune('a'+i)), data[lo:hi])
	}
}

func TestJobsOnS3(t *testing.T) {
	e := startS3(t, 2, 2)
	ctx := context.Background()
	uri := func(k string) string { return "s3://" + s3Bucket + "/" + k }

	t.Run("wordcount", func(t *testing.T) {
		in, err := os.ReadFile(generate(t, "text", 20_000))
		if err != nil {
			t.Fatal(err)
		}
		e.uploadLines(t, "text", in, 3)
		if err := jobs.WordCount(ctx, e.c, uri("text"), uri("wc"), 6); err != nil {
			t.Fatal(err)
		}
		want, err := jobs.RefWordCount(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		if got := readParts(t, e.download(t, "wc")); !slices.Equal(got, want) {
			t.Fatalf("wordcount: %d lines, reference %d (or different)", len(got), len(want))
		}
	})

	t.Run("ecommerce", func(t *testing.T) {
		in, err := os.ReadFile(generate(t, "ecommerce", 30_000))
		if err != nil {
			t.Fatal(err)
		}
		e.put(t, "events/2019-Oct.csv", in) // one object: the header once
		st, err := jobs.Ecommerce(ctx, e.c, uri("events/"), uri("sessions"), 4, false)
		if err != nil {
			t.Fatal(err)
		}
		want, bad, err := jobs.RefEcommerce(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		if got := readParts(t, e.download(t, "sessions")); !slices.Equal(got, want) || st.BadRows != bad {
			t.Fatalf("ecommerce: %d sessions, reference %d (or different); %d bad rows, reference %d", len(got), len(want), st.BadRows, bad)
		}
		// --strict fails the job: nothing under its output.
		if _, err := jobs.Ecommerce(ctx, e.c, uri("events/"), uri("strict"), 4, true); err == nil || !strings.Contains(err.Error(), "malformed") {
			t.Fatalf("strict run: %v, want a malformed-row error", err)
		}
		if got := e.list(t, "strict"); len(got) != 0 {
			t.Fatalf("a failed job left %q", got)
		}
	})
}

// The edge-input suite's rows on S3: each job over a prefix with
// subdirectories, empty objects, skipped names and directory markers
// gives the reference's answer; an empty prefix, a missing bucket, an
// existing output and an output in a missing bucket are refused with one
// line naming them, and leave the bucket as it was.
func TestEdgeInputsS3(t *testing.T) {
	e := startS3(t, 1, 2)
	ctx := context.Background()
	uri := func(k string) string { return "s3://" + s3Bucket + "/" + k }
	for _, job := range edgeJobs() {
		t.Run(job.name, func(t *testing.T) {
			tc := job.cases[0]
			if !strings.HasPrefix(tc.name, "directory with subdirectories") {
				t.Fatalf("the first edge case is %q", tc.name)
			}
			local := t.TempDir()
			writeFiles(t, local, tc.input)
			for name, content := range tc.input {
				e.put(t, job.name+"/"+name, []byte(content)) // "in/sub/empty/" is a directory marker
			}
			e.put(t, job.name+"/old/part-00000", []byte("x\n"))
			if err := job.run(ctx, e.c, uri(job.name+"/in"), uri(job.name+"/out")); err != nil {
				t.Fatal(err)
			}
			job.check(t, inputBytes(t, filepath.Join(local, "in"), !job.records), e.download(t, job.name+"/out"))

			for _, row := range []struct{ name, in, out, want string }{
				{"empty prefix", uri(job.name + "/nothing/"), uri(job.name + "/o1"), "client: input " + uri(job.name+"/nothing/") + ": no object under it"},
				{"missing bucket", "s3://no-such-bucket/in", uri(job.name + "/o2"), `bucket "no-such-bucket" does not exist at ` + e.srv.Endpoint()},
				{"output exists", uri(job.name + "/in"), uri(job.name + "/old"), "output " + uri(job.name+"/old") + " exists: remove it or pick another"},
				{"output in a missing bucket", uri(job.name + "/in"), "s3://no-such-bucket/out", `bucket "no-such-bucket" does not exist at ` + e.srv.Endpoint()},
			} {
				t.Run(row.name, func(t *testing.T) {
					before := e.list(t, "")
					err := job.run(ctx, e.c, row.in, row.out)
					if err == nil || !strings.Contains(err.Error(), row.want) || strings.Contains(err.Error(), "\n") {
						t.Fatalf("%s: %v; want one line containing %q", job.name, err, row.want)
					}
					if after := e.list(t, ""); !slices.Equal(before, after) {
						t.Errorf("a refused job changed the bucket: %q, then %q", before, after)
					}
				})
			}
		})
	}
}
