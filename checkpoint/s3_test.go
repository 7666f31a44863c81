package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"shoal/internal/miniotest"
	"shoal/internal/poll"
)

// TestS3Errors checks that the errors a person meets when the store is
// misconfigured name the endpoint and the bucket and say what is wrong,
// and come back within a bounded time.
func TestS3Errors(t *testing.T) {
	srv := miniotest.Start(t, testBucket)
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() // nothing listens there once closed
	l.Close()

	for _, tc := range []struct {
		name     string
		uri      string
		opts     Options
		want     error
		mentions []string
	}{
		{"missing bucket", "s3://no-such-bucket/x", Options{}, ErrNoBucket, []string{`"no-such-bucket"`, srv.Endpoint(), "does not exist"}},
		{"unknown access key", "s3://ckpt/x", Options{AccessKey: "nobody", SecretKey: "wrong-secret"}, ErrAccessDenied, []string{`"ckpt"`, srv.Endpoint(), "InvalidAccessKeyId", "AWS_ACCESS_KEY_ID"}},
		{"wrong secret", "s3://ckpt/x", Options{AccessKey: miniotest.AccessKey, SecretKey: "wrong-secret"}, ErrAccessDenied, []string{`"ckpt"`, srv.Endpoint(), "SignatureDoesNotMatch", "AWS_SECRET_ACCESS_KEY"}},
		{"unreachable endpoint", "s3://ckpt/x", Options{Endpoint: closed}, ErrUnavailable, []string{`"ckpt"`, closed, "connection refused", "AWS_ENDPOINT_URL"}},
		{"no scheme", "s3://ckpt/x", Options{Endpoint: strings.TrimPrefix(srv.Endpoint(), "http://")}, ErrInvalidArgument, []string{"http://" + srv.Addr(), "no scheme"}},
		{"bad bucket name", "s3://Bad_Bucket/x", Options{}, ErrInvalidArgument, []string{"Bad_Bucket"}},
		{"bad prefix", "s3://ckpt/a/../b", Options{}, ErrInvalidArgument, []string{".."}},
		{"one credential", "s3://ckpt/x", Options{AccessKey: "only"}, ErrInvalidArgument, []string{"AWS_SECRET_ACCESS_KEY"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			if opts.Endpoint == "" {
				opts.Endpoint = srv.Endpoint()
			}
			if opts.AccessKey == "" && opts.SecretKey == "" && tc.name != "one credential" {
				opts.AccessKey, opts.SecretKey = miniotest.AccessKey, miniotest.SecretKey
			}
			opts.OpTimeout = 10 * time.Second
			start := time.Now()
			st, err := Open(ctx, tc.uri, opts)
			took := time.Since(start)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open(%s) = %v, %v; want %v", tc.uri, st, err, tc.want)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if took > 12*time.Second {
				t.Errorf("Open took %v, want at most the 10s OpTimeout", took)
			}
			t.Logf("%v (after %v)", err, took.Round(time.Millisecond))
		})
	}

	t.Run("silent endpoint", func(t *testing.T) {
		// It accepts connections and never answers: OpTimeout ends the wait.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		endpoint := "http://" + l.Addr().String()
		start := time.Now()
		_, err = Open(ctx, "s3://ckpt/x", Options{Endpoint: endpoint, AccessKey: "a", SecretKey: "b", OpTimeout: 2 * time.Second})
		took := time.Since(start)
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), endpoint) || !strings.Contains(err.Error(), "no answer within 2s") {
			t.Fatalf("Open of a silent endpoint: %v; want ErrUnavailable naming %s and the timeout", err, endpoint)
		}
		if took > 4*time.Second {
			t.Errorf("Open of a silent endpoint took %v, want about the 2s OpTimeout", took)
		}
		t.Logf("%v (after %v)", err, took.Round(time.Millisecond))
	})

	t.Run("environment", func(t *testing.T) {
		t.Setenv("AWS_ENDPOINT_URL", srv.Endpoint())
		t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
		st, err := Open(ctx, "s3://ckpt/env", Options{})
		if err != nil {
			t.Fatal(err)
		}
		if st.String() != "s3://ckpt/env" {
			t.Errorf("String() = %q", st)
		}
		t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
		if _, err := Open(ctx, "s3://ckpt/env", Options{}); !errors.Is(err, ErrAccessDenied) {
			t.Errorf("with a wrong secret in the environment: %v, want ErrAccessDenied", err)
		}
		// An explicit option wins over the environment.
		if _, err := Open(ctx, "s3://ckpt/env", Options{AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey}); err != nil {
			t.Errorf("explicit credentials: %v", err)
		}
	})

	t.Run("create bucket", func(t *testing.T) {
		st := openS3Test(t, srv, "s3://created/p", Options{CreateBucket: true})
		if _, err := writeCheckpoint(ctx, st, "c", 1, [][]byte{records(1, 100)}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestS3ServerKilledMidCheckpoint kills MinIO with SIGKILL between two
// partition writes of a checkpoint: the next write fails within a bounded
// time with an error naming the endpoint and bucket, and once MinIO is
// back the checkpoint has no manifest, so it does not exist.
func TestS3ServerKilledMidCheckpoint(t *testing.T) {
	srv := miniotest.Start(t, testBucket)
	ctx := context.Background()
	const opTimeout = 10 * time.Second
	st := openS3Test(t, srv, "s3://ckpt/kill", Options{OpTimeout: opTimeout, MaxRetries: 3})
	if _, err := writeCheckpoint(ctx, st, "ranks-000010", 10, [][]byte{records(1, 50_000)}); err != nil {
		t.Fatal(err)
	}

	m := Manifest{Name: "ranks-000020", Seq: 20, NumPartitions: 4}
	var writeErr error
	var took time.Duration
	for p := range 4 {
		if p == 2 {
			srv.Stop() // SIGKILL, waited for
		}
		start := time.Now()
		info, err := WritePartition(ctx, st, "ranks-000020", p, records(uint64(p), 500_000))
		if err != nil {
			writeErr, took = err, time.Since(start)
			break
		}
		m.Partitions = append(m.Partitions, info)
	}
	if writeErr == nil {
		t.Fatal("every partition was written with the server killed")
	}
	if !errors.Is(writeErr, ErrUnavailable) {
		t.Errorf("write error %v, want ErrUnavailable", writeErr)
	}
	for _, s := range []string{srv.Endpoint(), `"ckpt"`, "ranks-000020"} {
		if !strings.Contains(writeErr.Error(), s) {
			t.Errorf("write error %q does not mention %q", writeErr, s)
		}
	}
	if took > opTimeout+2*time.Second {
		t.Errorf("the failed write took %v, want at most OpTimeout %v", took, opTimeout)
	}
	t.Logf("write failed after %v: %v", took.Round(time.Millisecond), writeErr)
	// The driver does not write a manifest for a failed checkpoint; if it
	// tried anyway, it would fail too.
	if err := WriteManifest(ctx, st, "ranks-000020", m); err == nil {
		t.Fatal("WriteManifest succeeded with the server down")
	}

	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadManifest(ctx, st, "ranks-000020"); !errors.Is(err, ErrIncomplete) {
		t.Errorf("after restart, ReadManifest of the interrupted checkpoint: %v, want ErrIncomplete", err)
	}
	ms, err := List(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(ms); len(got) != 1 || got[0] != "ranks-000010" {
		t.Errorf("after restart, List = %v, want only the complete ranks-000010", got)
	}
	// The complete one survived the crash intact.
	if _, err := ReadPartition(ctx, st, ms[0], 0); err != nil {
		t.Error(err)
	}
}

// TestS3Multipart writes a partition larger than the part size: it goes
// up as a multipart upload (its ETag ends in -PARTS) and reads back equal.
// A small one goes up in one PUT.
func TestS3Multipart(t *testing.T) {
	srv := miniotest.Start(t, testBucket)
	ctx := context.Background()
	const partSize = 8 << 20
	st := openS3Test(t, srv, "s3://ckpt/big", Options{PartSize: partSize})
	big := make([]byte, 40<<20)
	rand.NewChaCha8([32]byte{1}).Read(big) // incompressible: stored raw
	small := records(1, 1<<20)
	m, err := writeCheckpoint(ctx, st, "big", 1, [][]byte{big, small})
	if err != nil {
		t.Fatal(err)
	}
	s3 := st.(*S3Store)
	for p, wantParts := range []int64{(m.Partitions[0].Size + partSize - 1) / partSize, 0} {
		info, err := s3.Client().StatObject(ctx, testBucket, s3.ObjectName(m.Partitions[p].Key), minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, parts, multipart := strings.Cut(info.ETag, "-")
		switch {
		case wantParts == 0 && multipart:
			t.Errorf("partition %d (%d bytes) went up in parts: ETag %q", p, info.Size, info.ETag)
		case wantParts > 0 && parts != fmt.Sprint(wantParts):
			t.Errorf("partition %d (%d bytes): ETag %q, want a multipart upload of %d parts", p, info.Size, info.ETag, wantParts)
		}
	}
	got, err := ReadPartition(ctx, st, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("the multipart partition read back differs")
	}
}

// TestS3ServerKilledMidUpload kills MinIO while a partition is going up as
// a multipart upload: the write fails within a bounded time, and after a
// restart nothing is under the partition's key (a multipart upload becomes
// an object only when completed).
func TestS3ServerKilledMidUpload(t *testing.T) {
	srv := miniotest.Start(t, testBucket)
	ctx := context.Background()
	const opTimeout = 10 * time.Second
	// Small parts, one at a time: the upload lasts long enough to be seen.
	st := openS3Test(t, srv, "s3://ckpt/midupload", Options{PartSize: MinPartSize, PartThreads: 1, OpTimeout: opTimeout, MaxRetries: 3})
	s3 := st.(*S3Store)
	watcher, err := srv.Client()
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 96<<20)
	rand.NewChaCha8([32]byte{2}).Read(big)

	type result struct {
		err  error
		took time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		_, err := WritePartition(ctx, st, "ranks-000040", 0, big)
		done <- result{err, time.Since(start)}
	}()
	// Kill once the upload is under way: two of its parts are in.
	object := s3.ObjectName(PartKey("ranks-000040", 0))
	partsIn := func() int {
		n := 0
		for u := range watcher.ListIncompleteUploads(ctx, testBucket, object, true) {
			if u.Err != nil || u.Key != object {
				continue
			}
			res, err := (minio.Core{Client: watcher}).ListObjectParts(ctx, testBucket, object, u.UploadID, 0, 1000)
			if err == nil {
				n = max(n, len(res.ObjectParts))
			}
		}
		return n
	}
	poll.WaitFor(t, 20*time.Second, "a multipart upload in progress", func() bool {
		if partsIn() >= 2 {
			return true
		}
		select {
		case r := <-done:
			t.Fatalf("the upload finished (%v) before it was seen in progress: a 96 MiB partition in 5 MiB parts should take longer", r.err)
		default:
		}
		return false
	})
	srv.Stop()
	var r result
	select {
	case r = <-done:
	case <-time.After(opTimeout + 5*time.Second):
		t.Fatalf("WritePartition still running %v after the server was killed (OpTimeout %v)", opTimeout+5*time.Second, opTimeout)
	}
	if !errors.Is(r.err, ErrUnavailable) {
		t.Fatalf("WritePartition with the server killed mid-upload: %v, want ErrUnavailable", r.err)
	}
	t.Logf("write failed after %v: %v", r.took.Round(time.Millisecond), r.err)

	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, PartKey("ranks-000040", 0)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after restart, the partition's key: %v, want ErrNotFound (no half-written object)", err)
	}
	if objs, err := st.List(ctx, ""); err != nil || len(objs) != 0 {
		t.Fatalf("after restart the store lists %v, %v; want nothing", objs, err)
	}
}
