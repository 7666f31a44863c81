package launcher

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// cacheFiles lists the names in the launcher's binary cache directory.
func cacheFiles(t testing.TB, l *Launcher) []string {
	t.Helper()
	entries, err := os.ReadDir(l.bins.dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

func TestPutBinary(t *testing.T) {
	fw := fakeWorker(t)
	l, _ := newLauncher(t)
	b, err := os.ReadFile(fw)
	if err != nil {
		t.Fatal(err)
	}
	d := digestOf(b)
	if ok, err := l.HasBinary(d); ok || err != nil {
		t.Fatalf("HasBinary before the upload = %v, %v", ok, err)
	}
	if err := l.PutBinary(context.Background(), d, uint64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if ok, err := l.HasBinary(d); !ok || err != nil {
		t.Fatalf("HasBinary after the upload = %v, %v", ok, err)
	}
	fi, err := os.Stat(filepath.Join(l.bins.dir, d))
	if err != nil || fi.Size() != int64(len(b)) || fi.Mode().Perm() != 0o755 {
		t.Fatalf("cached file: %v, %v; want %d bytes, mode 0755", fi, err, len(b))
	}
	if got := cacheFiles(t, l); !slices.Equal(got, []string{d}) {
		t.Fatalf("cache holds %q, want only the binary", got)
	}
	// Again: held already, the data is not read.
	if err := l.PutBinary(context.Background(), d, uint64(len(b)), iotestErrReader{}); err != nil {
		t.Fatalf("PutBinary of a cached binary: %v", err)
	}
	if err := l.PutBinary(context.Background(), d, uint64(len(b))+1, iotestErrReader{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("PutBinary of a cached binary with another size: %v, want ErrInvalidArgument", err)
	}
}

// iotestErrReader fails every read: the data must not be read.
type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) {
	return 0, errors.New("read the data of a cached binary")
}

func TestPutBinaryRefused(t *testing.T) {
	fw := fakeWorker(t)
	good, err := os.ReadFile(fw)
	if err != nil {
		t.Fatal(err)
	}
	dynamic, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Skip("no /bin/true to try a dynamically linked binary with")
	}
	// The same binary, its ELF header's machine (e_machine, at byte 18,
	// little-endian here) changed to another architecture's.
	foreignBytes := bytes.Clone(good)
	other := elf.EM_AARCH64
	if runtime.GOARCH == "arm64" {
		other = elf.EM_X86_64
	}
	binary.LittleEndian.PutUint16(foreignBytes[18:], uint16(other))
	script := []byte("#!/bin/sh\necho hello\n")
	l, _ := newLauncher(t, func(o *Options) { o.MaxBinaryBytes = int64(len(good)) + 100 })

	for _, tc := range []struct {
		name   string
		digest string
		size   uint64
		data   []byte
		is     error
		says   []string
	}{
		{"bad digest", "ABC", uint64(len(good)), good, ErrInvalidArgument, []string{"64 lower-case hex"}},
		{"upper-case digest", strings.ToUpper(digestOf(good)), uint64(len(good)), good, ErrInvalidArgument, []string{"hex"}},
		{"digest mismatch", digestOf([]byte("other")), uint64(len(good)), good, ErrInvalidArgument, []string{"digest mismatch: got " + digestOf(good)}},
		{"short stream", digestOf(good), uint64(len(good)), good[:len(good)-1], ErrInvalidArgument, []string{"ended after"}},
		{"long stream", digestOf(good[:len(good)-1]), uint64(len(good) - 1), good, ErrInvalidArgument, []string{"more than"}},
		{"size 0", digestOf(nil), 0, nil, ErrInvalidArgument, []string{"size 0"}},
		{"too large", digestOf(good), uint64(len(good)) + 101, good, ErrTooLarge, []string{"--max-binary-bytes"}},
		{"dynamically linked", digestOf(dynamic), uint64(len(dynamic)), dynamic, ErrCannotRun, []string{"dynamically linked (it needs /", "CGO_ENABLED=0 GOOS=linux GOARCH=" + runtime.GOARCH}},
		{"not ELF", digestOf(script), uint64(len(script)), script, ErrCannotRun, []string{"not an ELF executable", "CGO_ENABLED=0"}},
		{"shorter than ELF's headers", digestOf([]byte("abc")), 3, []byte("abc"), ErrCannotRun, []string{"not an ELF executable (too short", "CGO_ENABLED=0"}},
		{"another architecture", digestOf(foreignBytes), uint64(len(foreignBytes)), foreignBytes, ErrCannotRun, []string{"another architecture", "GOARCH=" + runtime.GOARCH}},
	} {
		if uint64(len(tc.data)) > uint64(len(good))+100 {
			continue // /bin/true larger than the limit: not this case's point
		}
		err := l.PutBinary(context.Background(), tc.digest, tc.size, bytes.NewReader(tc.data))
		if !errors.Is(err, tc.is) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.is)
			continue
		}
		for _, s := range tc.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q does not say %q", tc.name, err, s)
			}
		}
		if tc.name == "digest mismatch" && strings.Contains(err.Error(), string(good[:16])) {
			t.Errorf("%s: the error quotes the data", tc.name)
		}
		if got := cacheFiles(t, l); len(got) != 0 {
			t.Errorf("%s: the cache holds %q after a refused upload", tc.name, got)
		}
	}
}

func TestBinaryCacheLRU(t *testing.T) {
	fw := fakeWorker(t)
	dir := t.TempDir()
	l, _ := newLauncher(t, func(o *Options) { o.MaxBinaries = 2; o.Dir = dir })
	a := putFile(t, l, fw, "a")
	b := putFile(t, l, fw, "b")
	if ok, _ := l.HasBinary(a); !ok { // a is now more recently used than b
		t.Fatal("a is missing")
	}
	c := putFile(t, l, fw, "c")
	if got, want := cacheFiles(t, l), sorted(a, c); !slices.Equal(got, want) {
		t.Fatalf("after a third binary the cache holds %q, want a and c (b, the least recently used, removed)", got)
	}
	// c and a in use: nothing can go.
	_, releaseC, err := l.bins.acquire(c)
	if err != nil {
		t.Fatal(err)
	}
	_, releaseA, err := l.bins.acquire(a)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := os.ReadFile(fw)
	if err != nil {
		t.Fatal(err)
	}
	b2 = append(b2, 'd')
	if err := l.PutBinary(context.Background(), digestOf(b2), uint64(len(b2)), bytes.NewReader(b2)); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a binary into a full cache whose binaries are in use: %v, want ErrTooLarge", err)
	}
	// a released, used less recently than c but c is in use: a goes.
	releaseA()
	d := putFile(t, l, fw, "d")
	if got, want := cacheFiles(t, l), sorted(c, d); !slices.Equal(got, want) {
		t.Fatalf("the cache holds %q, want c (in use) and d", got)
	}
	releaseC()
	if _, _, err := l.bins.acquire(b); !errors.Is(err, ErrUnknownBinary) {
		t.Fatalf("acquire of a removed binary: %v, want ErrUnknownBinary", err)
	}

	// A restart: a temporary file of a crash and a stray file are
	// deleted, the binaries kept.
	l.Close()
	for _, name := range []string{tempPrefix + "123", "stray"} {
		if err := os.WriteFile(filepath.Join(l.bins.dir, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l2, _ := newLauncher(t, func(o *Options) { o.MaxBinaries = 2; o.Dir = dir })
	if got, want := cacheFiles(t, l2), sorted(c, d); !slices.Equal(got, want) {
		t.Fatalf("after a restart the cache holds %q, want c and d only", got)
	}
	if ok, _ := l2.HasBinary(d); !ok {
		t.Fatal("d is not served after a restart")
	}
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

func TestConcurrentUploadsOfOneBinary(t *testing.T) {
	fw := fakeWorker(t)
	l, _ := newLauncher(t)
	b, err := os.ReadFile(fw)
	if err != nil {
		t.Fatal(err)
	}
	d := digestOf(b)
	errs := make(chan error, 4)
	for range cap(errs) {
		// Each reader hands out a few bytes at a time, so the uploads
		// overlap.
		go func() {
			errs <- l.PutBinary(context.Background(), d, uint64(len(b)), io.LimitReader(&slowReader{b: b}, int64(len(b))))
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := cacheFiles(t, l); !slices.Equal(got, []string{d}) {
		t.Fatalf("cache holds %q, want only the binary", got)
	}
	got, err := os.ReadFile(filepath.Join(l.bins.dir, d))
	if err != nil || !bytes.Equal(got, b) {
		t.Fatalf("cached binary differs from the uploaded one (%v)", err)
	}
}

type slowReader struct{ b []byte }

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 64<<10)], r.b)
	r.b = r.b[n:]
	return n, nil
}
