package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shoal/internal/miniotest"
)

// TestS3Command moves files through a real MinIO with `shoal s3`: up and
// back byte for byte, from standard input and to standard output, a job's
// output read whole without its markers, and the errors a person meets.
func TestS3Command(t *testing.T) {
	srv := miniotest.Start(t)
	t.Setenv("AWS_ENDPOINT_URL", srv.Endpoint())
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	ctx := context.Background()
	dir := t.TempDir()
	s3 := func(stdin string, args ...string) (string, error) {
		var out bytes.Buffer
		err := s3Command(ctx, args, strings.NewReader(stdin), &out)
		return out.String(), err
	}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, err := s3(stdin, args...)
		if err != nil {
			t.Fatalf("shoal s3 %q: %v", args, err)
		}
		return out
	}

	// A missing bucket: cp says how to make it; mb makes it, twice is fine.
	src := filepath.Join(dir, "graph.txt")
	data := bytes.Repeat([]byte("1 2\n2 3\n3 1\n"), 1000)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s3("", "cp", src, "s3://jobs/in/graph.txt"); err == nil || !strings.Contains(err.Error(), "shoal s3 mb s3://jobs") {
		t.Fatalf("cp to a missing bucket: %v, want an error saying shoal s3 mb s3://jobs makes it", err)
	}
	if out := must("", "mb", "s3://jobs"); out != "s3://jobs is ready\n" {
		t.Fatalf("mb printed %q", out)
	}
	must("", "mb", "s3://jobs")

	// Up and back, through files and through stdin and stdout.
	must("", "cp", src, "s3://jobs/in/graph.txt")
	must("hello\n", "cp", "-", "s3://jobs/in/hello.txt")
	back := filepath.Join(dir, "back.txt")
	must("", "cp", "s3://jobs/in/graph.txt", back)
	if got, err := os.ReadFile(back); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("cp back: %d bytes, %v; want the %d bytes sent", len(got), err, len(data))
	}
	must("", "cp", "s3://jobs/in/hello.txt", dir) // into a directory: its base name
	if got, _ := os.ReadFile(filepath.Join(dir, "hello.txt")); string(got) != "hello\n" {
		t.Fatalf("cp into a directory wrote %q", got)
	}
	if out := must("", "cp", "s3://jobs/in/hello.txt", "-"); out != "hello\n" {
		t.Fatalf("cp to stdout: %q", out)
	}
	if out := must("", "ls", "s3://jobs/in/"); out != "       12000  s3://jobs/in/graph.txt\n           6  s3://jobs/in/hello.txt\n" {
		t.Fatalf("ls printed:\n%s", out)
	}

	// A job's output: cat reads the parts in order and nothing else.
	for key, body := range map[string]string{
		"out/part-00001":                    "b\t2\n",
		"out/part-00000":                    "a\t1\n",
		"out/_SUCCESS":                      "",
		"out/_temporary/run/part-00000":     "stale\n",
		"out/.hidden":                       "no\n",
		"outer/part-00000":                  "not under out/\n",
		"out/sub/part-00000":                "c\t3\n",
		"out/sub/_temporary/part-00009.tmp": "stale\n",
	} {
		must(body, "cp", "-", "s3://jobs/"+key)
	}
	if out := must("", "cat", "s3://jobs/out"); out != "a\t1\nb\t2\nc\t3\n" {
		t.Fatalf("cat of an output printed %q", out)
	}
	if out := must("", "cat", "s3://jobs/out/part-00001"); out != "b\t2\n" {
		t.Fatalf("cat of one object printed %q", out)
	}

	// Errors: one line, naming what is missing; nothing half-written.
	dst := filepath.Join(dir, "missing.txt")
	if _, err := s3("", "cp", "s3://jobs/in/nope.txt", dst); err == nil || !strings.Contains(err.Error(), "s3://jobs/in/nope.txt") {
		t.Fatalf("cp of a missing object: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 3 { // graph.txt, back.txt, hello.txt
		t.Fatalf("a failed cp left files: %v", ents)
	}
	if _, err := s3("", "cat", "s3://jobs/nothing"); err == nil || !strings.Contains(err.Error(), "s3://jobs/nothing") {
		t.Fatalf("cat of nothing: %v", err)
	}
	for _, args := range [][]string{
		{"cp", src, dst},
		{"cp", "s3://jobs/a", "s3://jobs/b"},
		{"cp", src, "s3://jobs/dir/"},
		{"mb", "s3://jobs/key"},
		{"ls"},
		{"rm", "s3://jobs/x"},
		{"ls", "/not/s3"},
	} {
		var ue *usageError
		if _, err := s3("", args...); !errors.As(err, &ue) {
			t.Errorf("shoal s3 %q: %v, want a usage error", args, err)
		}
	}
	if out, err := s3("", "-h"); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, "shoal s3 mb|ls|cp|cat") {
		t.Errorf("-h: %v, %q", err, out)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	if _, err := s3("", "ls", "s3://jobs"); err == nil || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("ls with a wrong secret key: %v, want an error naming AWS_SECRET_ACCESS_KEY, not its value", err)
	}
}
