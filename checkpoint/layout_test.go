package checkpoint

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenURI(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tc := range []struct {
		uri    string
		want   string // the store's String(), or "" for an error
		errHas string
	}{
		{uri: "file://" + dir + "/a", want: "file://" + dir + "/a"},
		{uri: "file://localhost" + dir + "/b", want: "file://" + dir + "/b"},
		{uri: dir + "/c/", want: "file://" + dir + "/c"},
		{uri: "rel/d", want: "file://" + dir + "/rel/d"},
		{uri: "mem://tests", want: "mem://tests"},
		{uri: "", errHas: "empty"},
		{uri: "file://host/x", errHas: `names host "host"`},
		{uri: "file://", errHas: "absolute path"},
		{uri: "ftp://x/y", errHas: `unknown scheme "ftp"`},
		{uri: "mem://", errHas: "mem://name"},
		{uri: "mem://a/b", errHas: "mem://name"},
		{uri: "s3:///prefix", errHas: "bucket name"},
	} {
		st, err := Open(context.Background(), tc.uri, Options{Endpoint: "http://127.0.0.1:1"})
		switch {
		case tc.want != "" && err != nil:
			t.Errorf("Open(%q): %v", tc.uri, err)
		case tc.want != "" && st.String() != tc.want:
			t.Errorf("Open(%q) = %s, want %s", tc.uri, st, tc.want)
		case tc.want == "" && (!errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tc.errHas)):
			t.Errorf("Open(%q) = %v, %v; want ErrInvalidArgument mentioning %q", tc.uri, st, err, tc.errHas)
		}
	}
	// A file where the directory should be.
	f := filepath.Join(dir, "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), f, Options{}); err == nil {
		t.Errorf("Open of a file as a directory succeeded")
	}
}

func TestOptionsValidate(t *testing.T) {
	o := Options{Endpoint: "h:1", AccessKey: "a", PartSize: 1 << 20, PartThreads: -1, MaxRetries: -2, OpTimeout: -1}
	err := o.Validate()
	for _, s := range []string{"no scheme", "only one of", "PartSize", "PartThreads", "MaxRetries", "OpTimeout"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("Validate() = %v; want every problem reported, including %q", err, s)
		}
	}
	t.Setenv("AWS_ENDPOINT_URL", "")
	o = Options{}
	o.EnsureDefaults()
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--s3-endpoint") {
		t.Errorf("without an endpoint: %v", err)
	}
}

func TestCheckKey(t *testing.T) {
	for key, ok := range map[string]bool{
		"a": true, "a/b": true, "ranks-000030/part-00001": true, "a/.b": true, "a b/c": true,
		"": false, "/a": false, "a/": false, "a//b": false, ".": false, "..": false, "a/../b": false,
		"a/./b": false, `a\b`: false, "a\x00": false, ".tmp-x": false, "a/.tmp-x": false, strings.Repeat("k", 513): false,
	} {
		if err := checkKey(key); (err == nil) != ok {
			t.Errorf("checkKey(%q) = %v, want ok=%v", key, err, ok)
		}
	}
}

func FuzzDecodePartition(f *testing.F) {
	for _, raw := range [][]byte{nil, []byte("x"), records(1, 5000), make([]byte, 4096)} {
		f.Add(encodePartition(raw))
	}
	f.Fuzz(func(t *testing.T, obj []byte) {
		// The manifest agrees with the header, so decoding is reached
		// (for raw lengths up to 1 MiB, to keep allocations small).
		info := PartInfo{Size: int64(len(obj))}
		if len(obj) >= partHeaderSize {
			if n := leUint32(obj[8:]); n <= 1<<20 && leUint32(obj[12:]) == 0 {
				info.RawSize = int64(n)
			}
			info.CRC32C = leUint32(obj[20:])
		}
		raw, err := decodePartition(obj, info)
		if err == nil && int64(len(raw)) != info.RawSize {
			t.Fatalf("decoded %d bytes, header says %d", len(raw), info.RawSize)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
	})
}

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
