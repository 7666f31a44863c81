package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"shoal/client"
	"shoal/internal/miniotest"
	"shoal/internal/poll"
	"shoal/objstore"
)

// Inputs and outputs on S3 (issue 11), against a real MinIO. The test
// process has no AWS variables: the driver has the endpoint and the
// credentials from Options.S3 alone, and the workers only from the
// driver (compute.LocalOptions.WorkerEnv), so every object a worker
// reads or writes proves that hand-over.

const inBucket, outBucket = "shoal-in", "shoal-out"

// startS3 starts MinIO with the two buckets and a context configured for
// it through Options.S3.
func startS3(t *testing.T, opts client.Options) (*miniotest.Server, *client.Context, string) {
	t.Helper()
	for _, v := range []string{"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} {
		t.Setenv(v, "")
	}
	srv := miniotest.Start(t, inBucket, outBucket)
	opts.S3.Endpoint, opts.S3.AccessKey, opts.S3.SecretKey = srv.Endpoint(), miniotest.AccessKey, miniotest.SecretKey
	c, events := startCluster(t, opts)
	return srv, c, events
}

// putObjects writes files (key → content; a key ending in '/' is an
// empty directory marker) into bucket.
func putObjects(t *testing.T, srv *miniotest.Server, bucket string, files map[string]string) {
	t.Helper()
	mc, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	for key, content := range files {
		if _, err := mc.PutObject(context.Background(), bucket, key, strings.NewReader(content), int64(len(content)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// listObjects returns the keys under prefix, sorted.
func listObjects(t *testing.T, srv *miniotest.Server, bucket, prefix string) []string {
	t.Helper()
	mc, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for o := range mc.ListObjects(context.Background(), bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys
}

func getObject(t *testing.T, srv *miniotest.Server, bucket, key string) string {
	t.Helper()
	mc, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	obj, err := mc.GetObject(context.Background(), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return string(b)
}

// firstDiff describes where got first differs from want.
func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("%d lines, want %d; line %d is %.80q, want %.80q", len(got), len(want), i, got[i], want[i])
		}
	}
	return fmt.Sprintf("%d lines, want %d", len(got), len(want))
}

// gensortRecords is n gensort records whose keys start with tag.
func gensortRecords(tag string, n int) string {
	var b strings.Builder
	for i := range n {
		rec := fmt.Sprintf("%s%09d", tag, (i*7919)%n)[:10] + strings.Repeat(string(rune('a'+i%26)), 88) + "\r\n"
		b.WriteString(rec)
	}
	return b.String()
}

// TextFile, CSVFile and GensortFile over s3:// give the records of the
// same bytes on local disk, in the same order, for every split size:
// several objects, splits crossing line boundaries, a line longer than a
// split and than the first window read past it, objects with and
// without a final newline, empty objects, skipped names and directory
// markers.
func TestS3InputsMatchLocal(t *testing.T) {
	srv, c, _ := startS3(t, client.Options{Nodes: 1, WorkersPerNode: 2})
	ctx := context.Background()
	var a strings.Builder
	for i := range 400 {
		fmt.Fprintf(&a, "line %d%s\n", i, strings.Repeat(" x", i%7))
	}
	long := strings.Repeat("L", 300<<10) // past a split, and past the 64 KiB window read after one
	files := map[string]string{
		"in/a.txt":             a.String(),
		"in/b.txt":             "x\ny\nz", // no final newline
		"in/empty.txt":         "",
		"in/sub/c.txt":         "c1\r\nc2\r\n",
		"in/sub/long.txt":      "short\n" + long + "\nafter\n",
		"in/a/z.txt":           "z1\n", // sorts after a.txt
		"in/_SUCCESS":          "skipped\n",
		"in/.a.txt.crc":        "skipped\n",
		"in/_logs/x":           "skipped\n",
		"in/sub/.hidden/y":     "skipped\n",
		"in/dir/":              "", // a directory marker
		"csv/h1.csv":           "name,n\nx,1\n",
		"csv/d/h2.csv":         "name,n\ny,2\n\"bad,3\n",
		"csv/header-only.csv":  "name,n\n",
		"gs/a":                 gensortRecords("A", 37),
		"gs/b":                 "",
		"gs/c/d":               gensortRecords("C", 13),
		"gsbad/x":              gensortRecords("B", 1) + "short",
		"inputs-and-more/file": "one\n",
	}
	putObjects(t, srv, inBucket, files)
	local := t.TempDir()
	writeTree(t, local, files)

	var want []string // the lines of in/, by hand
	for _, key := range []string{"in/a.txt", "in/a/z.txt", "in/b.txt", "in/empty.txt", "in/sub/c.txt", "in/sub/long.txt"} {
		for l := range strings.SplitSeq(strings.TrimSuffix(files[key], "\n"), "\n") {
			if files[key] != "" {
				want = append(want, strings.TrimSuffix(l, "\r"))
			}
		}
	}
	for _, parts := range []int{1, 3, 8, 50} {
		for _, uri := range []string{"s3://" + inBucket + "/in", "s3://" + inBucket + "/in/"} {
			got, err := client.Collect(ctx, client.TextFile(c, uri, parts))
			if err != nil || !slices.Equal(got, want) {
				t.Errorf("TextFile(%s, %d): %v; %s", uri, parts, err, firstDiff(got, want))
			}
		}
		loc, err := client.Collect(ctx, client.TextFile(c, filepath.Join(local, "in"), parts))
		if err != nil || !slices.Equal(loc, want) {
			t.Errorf("TextFile of the local copy, %d parts: %v; %s", parts, err, firstDiff(loc, want))
		}
	}
	if got, err := client.Collect(ctx, client.TextFile(c, "s3://"+inBucket+"/in/b.txt", 2)); err != nil || !slices.Equal(got, []string{"x", "y", "z"}) {
		t.Errorf("TextFile of one object = %q, %v", got, err)
	}
	// A panic on a line names the object and the line.
	_, err := client.Count(ctx, client.Map(client.TextFile(c, "s3://"+inBucket+"/in/b.txt", 1), panicOnY))
	if err == nil || !strings.Contains(err.Error(), "input s3://"+inBucket+"/in/b.txt line 2: bad line y") {
		t.Errorf("a panic on line 2 of an object: %.300v", err)
	}
	// "inputs-and-more" shares the prefix "in" but not the directory.
	if got, err := client.Collect(ctx, client.TextFile(c, "s3://"+inBucket+"/inputs-and-more", 2)); err != nil || !slices.Equal(got, []string{"one"}) {
		t.Errorf("TextFile(inputs-and-more) = %q, %v", got, err)
	}

	for _, parts := range []int{1, 4} {
		s3recs, err1 := client.Collect(ctx, client.CSVFile(c, "s3://"+inBucket+"/csv", parts))
		locrecs, err2 := client.Collect(ctx, client.CSVFile(c, filepath.Join(local, "csv"), parts))
		if err := errors.Join(err1, err2); err != nil || len(s3recs) != 3 || fmt.Sprint(s3recs) != fmt.Sprint(locrecs) {
			t.Errorf("CSVFile, %d parts: s3 %+v, local %+v, %v", parts, s3recs, locrecs, err)
		}
	}
	for _, parts := range []int{1, 5} {
		s3recs, err1 := client.Collect(ctx, client.GensortFile(c, "s3://"+inBucket+"/gs", parts))
		locrecs, err2 := client.Collect(ctx, client.GensortFile(c, filepath.Join(local, "gs"), parts))
		if err := errors.Join(err1, err2); err != nil || len(s3recs) != 50 || !slices.Equal(s3recs, locrecs) {
			t.Errorf("GensortFile, %d parts: %d records from s3, %d local, %v", parts, len(s3recs), len(locrecs), err)
		}
	}
	if _, err := client.Count(ctx, client.GensortFile(c, "s3://"+inBucket+"/gsbad", 2)); err == nil || !strings.Contains(err.Error(), "s3://"+inBucket+"/gsbad/x: size is not a multiple of 100 bytes") {
		t.Errorf("GensortFile of a partial record: %v", err)
	}
}

func panicOnY(s string) string {
	if s == "y" {
		panic("bad line y")
	}
	return s
}

func failOnKey3(kv client.KV[int64, int64]) client.KV[int64, int64] {
	if kv.Key == 3 {
		panic("bad record: key 3")
	}
	return kv
}

func padTo100(x int64) string { return fmt.Sprintf("%0100d", x) }

// SaveAsTextFile and SaveAsRawFile to s3:// write the local output's
// parts, committed with _SUCCESS and nothing else; the output reads back
// as input. An existing output, an object of the output's name and an
// output inside the input are refused; a job that fails in its last stage
// leaves nothing behind; an output that appears while the job runs is
// left alone, and the job's discarded; an output being written is refused
// as an input.
func TestS3Outputs(t *testing.T) {
	srv, c, events := startS3(t, client.Options{Nodes: 1, WorkersPerNode: 2, S3: objstore.Options{PartSize: objstore.MinPartSize}})
	ctx := context.Background()
	out := func(prefix string) string { return "s3://" + outBucket + "/" + prefix }
	sums := client.Map(client.ReduceByKey(client.Map(client.Range(c, 0, 10_000, 4), mod10KV), addInt64, 3), formatKV)

	local := filepath.Join(t.TempDir(), "wc")
	if err := client.SaveAsTextFile(ctx, sums, local); err != nil {
		t.Fatal(err)
	}
	if err := client.SaveAsTextFile(ctx, sums, out("wc")); err != nil {
		t.Fatal(err)
	}
	if got, want := listObjects(t, srv, outBucket, "wc"), []string{"wc/_SUCCESS", "wc/part-00000", "wc/part-00001", "wc/part-00002"}; !slices.Equal(got, want) {
		t.Fatalf("the output holds %q, want %q", got, want)
	}
	for i := range 3 {
		b, err := os.ReadFile(filepath.Join(local, fmt.Sprintf("part-%05d", i)))
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Split(string(b), "\n")
		got := strings.Split(getObject(t, srv, outBucket, fmt.Sprintf("wc/part-%05d", i)), "\n")
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("part %d: %q, the local output's %q", i, got, want)
		}
	}
	back, err := client.Collect(ctx, client.TextFile(c, out("wc"), 2))
	if err != nil || len(back) != 10 {
		t.Errorf("the output read back: %q, %v", back, err)
	}

	// A part larger than PartSize goes up as a streamed multipart upload.
	big := client.Map(client.Range(c, 0, 120_000, 1), padTo100)
	if err := client.SaveAsRawFile(ctx, big, out("big")); err != nil {
		t.Fatal(err)
	}
	if got := getObject(t, srv, outBucket, "big/part-00000"); len(got) != 12_000_000 || got[:100] != padTo100(0) || got[len(got)-100:] != padTo100(119_999) {
		t.Errorf("the big part: %d bytes", len(got))
	}
	// Empty partitions are empty parts.
	if err := client.SaveAsTextFile(ctx, client.Parallelize(c, []int64{}, 2), out("empty")); err != nil {
		t.Fatal(err)
	}
	if got := listObjects(t, srv, outBucket, "empty/"); !slices.Equal(got, []string{"empty/_SUCCESS", "empty/part-00000", "empty/part-00001"}) {
		t.Errorf("an empty RDD's output: %q", got)
	}

	putObjects(t, srv, outBucket, map[string]string{"taken": "an object\n", "in/a.txt": "1\n2\n"})
	for _, tc := range []struct{ name, output, want string }{
		{"existing output", out("wc"), "output s3://" + outBucket + "/wc exists: remove it or pick another"},
		{"existing output, trailing slash", out("wc/"), "exists: remove it or pick another"},
		{"an object of the output's name", out("taken"), "exists (an object of that name)"},
		{"inside the input", out("in/out"), "inside the input"},
		{"the input itself", out("in"), "inside the input"},
		{"missing bucket", "s3://no-such-bucket/out", `bucket "no-such-bucket" does not exist at ` + srv.Endpoint()},
		{"bad URI", "s3://Bad_Bucket/x", "bucket name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := listObjects(t, srv, outBucket, "")
			err := client.SaveAsTextFile(ctx, client.TextFile(c, out("in"), 2), tc.output)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("SaveAsTextFile(%s): %v; want one line containing %q", tc.output, err, tc.want)
			}
			if after := listObjects(t, srv, outBucket, ""); !slices.Equal(before, after) {
				t.Errorf("a refused save changed the bucket: %q, then %q", before, after)
			}
		})
	}

	t.Run("failed job", func(t *testing.T) {
		failing := client.Map(client.Map(client.ReduceByKey(client.Map(client.Range(c, 0, 1000, 4), mod10KV), addInt64, 5), failOnKey3), formatKV)
		before := countTaskEnds(t, events, "succeeded", "result")
		err := client.SaveAsTextFile(ctx, failing, out("failed"))
		if err == nil || !strings.Contains(err.Error(), "bad record: key 3") {
			t.Fatalf("a failing save: %v", err)
		}
		// Its other partitions had written their parts.
		if wrote := countTaskEnds(t, events, "succeeded", "result") - before; wrote == 0 {
			t.Error("no result task of the failed job succeeded: the test shows nothing about the cleanup of written parts")
		}
		if got := listObjects(t, srv, outBucket, "failed"); len(got) != 0 {
			t.Errorf("a failed job left %q", got)
		}
	})

	t.Run("output appears while the job runs", func(t *testing.T) {
		gate := filepath.Join(t.TempDir(), "gate")
		gated := client.Map(client.MapWith[client.KV[int64, int64], client.KV[int64, int64]](
			client.ReduceByKey(client.Map(client.Range(c, 0, 100, 2), mod10KV), addInt64, 2), gatedPass{Gate: gate}), formatKV)
		done := make(chan error, 1)
		go func() { done <- client.SaveAsTextFile(context.Background(), gated, out("race")) }()
		poll.WaitFor(t, 30*time.Second, "the job's temporary prefix", func() bool {
			return len(listObjects(t, srv, outBucket, "race/_temporary/")) > 0
		})
		// An output being written is no input. (Err: the listing fails
		// before any job, which would wait for the gated one.)
		err := client.TextFile(c, out("race"), 1).Err()
		if err == nil || !strings.Contains(err.Error(), "holds an output that is being written, or whose job failed") {
			t.Errorf("reading an output being written: %v", err)
		}
		putObjects(t, srv, outBucket, map[string]string{"race/theirs": "precious\n"})
		open(t, gate)
		if err := <-done; err == nil || !strings.Contains(err.Error(), "s3://"+outBucket+"/race/theirs appeared while the job ran") {
			t.Fatalf("a save whose output appeared meanwhile: %v", err)
		}
		if got := listObjects(t, srv, outBucket, "race"); !slices.Equal(got, []string{"race/theirs"}) {
			t.Errorf("after the discarded save, the output holds %q, want only the object that appeared", got)
		}
	})

	if b, err := os.ReadFile(events); err != nil || bytes.Contains(b, []byte(miniotest.SecretKey)) {
		t.Errorf("the event log holds the secret key (or cannot be read: %v)", err)
	}
}

// countTaskEnds counts the task_end events of kind with status.
func countTaskEnds(t *testing.T, events, status, kind string) int {
	t.Helper()
	n := 0
	for _, ev := range allEvents(t, events) {
		if ev["event"] == "task_end" && ev["status"] == status && ev["kind"] == kind {
			n++
		}
	}
	return n
}

// An input that cannot be read fails with one line naming it: nothing at
// the URI, a missing bucket, wrong credentials, an unreachable endpoint.
// InputIdentity changes when an object is rewritten with the same size.
func TestS3InputErrors(t *testing.T) {
	srv, c, _ := startS3(t, client.Options{Nodes: 1, WorkersPerNode: 1})
	ctx := context.Background()
	putObjects(t, srv, inBucket, map[string]string{"in/a": "hello\n", "in/b": "world\n", "_SUCCESS-only/_SUCCESS": ""})
	for _, tc := range []struct{ uri, want string }{
		{"s3://" + inBucket + "/nothing/", "client: input s3://" + inBucket + "/nothing/: no object under it (an empty listing at " + srv.Endpoint()},
		{"s3://" + inBucket + "/nothing", "no such object, and no object under s3://" + inBucket + "/nothing/"},
		{"s3://" + inBucket + "/_SUCCESS-only", "no object under s3://" + inBucket + "/_SUCCESS-only/"},
		{"s3://no-such-bucket/in", `bucket "no-such-bucket" does not exist at ` + srv.Endpoint()},
		{"s3://user:pw@bucket/in", "holds no credentials"},
	} {
		_, err := client.Count(ctx, client.TextFile(c, tc.uri, 2))
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("TextFile(%s): %v; want one line containing %q", tc.uri, err, tc.want)
		}
	}

	id1, err := c.InputIdentity(ctx, "s3://"+inBucket+"/in")
	if err != nil || !strings.Contains(id1, "2 objects, 12 bytes") {
		t.Fatalf("InputIdentity = %q, %v", id1, err)
	}
	putObjects(t, srv, inBucket, map[string]string{"in/b": "WORLD\n"}) // same size
	if id2, err := c.InputIdentity(ctx, "s3://"+inBucket+"/in"); err != nil || id2 == id1 {
		t.Errorf("InputIdentity after an object was rewritten: %q, %v (was %q)", id2, err, id1)
	}

	// The package's InputIdentity takes the AWS variables.
	t.Setenv("AWS_ENDPOINT_URL", srv.Endpoint())
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
	_, err = client.InputIdentity("s3://" + inBucket + "/in")
	if !errors.Is(err, objstore.ErrAccessDenied) || !strings.Contains(err.Error(), srv.Endpoint()) || strings.Contains(err.Error(), "not-the-secret") {
		t.Errorf("with wrong credentials: %v, want ErrAccessDenied naming the endpoint and not the secret", err)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	if id3, err := client.InputIdentity("s3://" + inBucket + "/in"); err != nil || !strings.Contains(id3, "2 objects") {
		t.Errorf("InputIdentity from the environment: %q, %v", id3, err)
	}
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	if _, err := client.InputIdentity("s3://" + inBucket + "/in"); !errors.Is(err, objstore.ErrUnavailable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("with an unreachable endpoint: %v, want ErrUnavailable naming it", err)
	}
}
