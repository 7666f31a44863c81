package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"shoal/internal/miniotest"
	"shoal/internal/testbin"
	"shoal/jobs"
)

// `shoal run JOB --input s3://... --output s3://...`, credentials from the
// AWS variables as a person sets them: the answer is the reference's,
// the output is committed with _SUCCESS, and a refused or failed run says
// so in one line that does not hold the secret.
func TestRunS3(t *testing.T) {
	bin := testbin.Shoal(t)
	srv := miniotest.Start(t, "data")
	mc, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var text bytes.Buffer
	if err := jobs.Generate("text", &text, 5000, 7); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.PutObject(ctx, "data", "text/a.txt", bytes.NewReader(text.Bytes()), int64(text.Len()), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	run := func(secret string, args ...string) (int, string) {
		cmd := exec.Command(bin, append([]string{"run", "wordcount", "--s3-endpoint", srv.Endpoint(), "--ui-addr", "off", "--partitions", "3"}, args...)...)
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+miniotest.AccessKey, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_ENDPOINT_URL=")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), stderr.String()
	}

	status, stderr := run(miniotest.SecretKey, "--input", "s3://data/text", "--output", "s3://data/counts")
	if status != 0 {
		t.Fatalf("status %d; stderr:\n%s", status, stderr)
	}
	var keys, got []string
	for o := range mc.ListObjects(ctx, "data", minio.ListObjectsOptions{Prefix: "counts/", Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		keys = append(keys, o.Key)
		obj, err := mc.GetObject(ctx, "data", o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.SplitSeq(string(b), "\n") {
			if l != "" {
				got = append(got, l)
			}
		}
	}
	if want := []string{"counts/_SUCCESS", "counts/part-00000", "counts/part-00001", "counts/part-00002"}; !slices.Equal(keys, want) {
		t.Fatalf("the output holds %q, want %q", keys, want)
	}
	want, err := jobs.RefWordCount(bytes.NewReader(text.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("wordcount wrote %d lines, reference %d (or different)", len(got), len(want))
	}

	for _, tc := range []struct {
		name, secret, input, output, want string
	}{
		{"existing output", miniotest.SecretKey, "s3://data/text", "s3://data/counts", "shoal run: wordcount: client: output s3://data/counts exists: remove it or pick another"},
		{"empty prefix", miniotest.SecretKey, "s3://data/none/", "s3://data/out", "shoal run: wordcount: client: input s3://data/none/: no object under it"},
		{"wrong secret", "not-the-secret", "s3://data/text", "s3://data/out", "SignatureDoesNotMatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, stderr := run(tc.secret, "--input", tc.input, "--output", tc.output)
			var lines []string
			for l := range strings.SplitSeq(stderr, "\n") {
				if strings.HasPrefix(l, "shoal ") {
					lines = append(lines, l)
				}
			}
			if status != 1 || len(lines) != 1 || !strings.Contains(lines[0], tc.want) || !strings.Contains(lines[0], "s3://data/") {
				t.Fatalf("status %d, error lines %q; want status 1 and one line containing %q; stderr:\n%s", status, lines, tc.want, stderr)
			}
			if strings.Contains(stderr, "not-the-secret") || strings.Contains(stderr, miniotest.SecretKey) {
				t.Errorf("stderr holds the secret key:\n%s", stderr)
			}
		})
	}
}
