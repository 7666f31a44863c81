package cli

import (
	"flag"
	"io"
	"slices"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false},
		{"268435456", 256 << 20, false},
		{"512MiB", 512 << 20, false},
		{"512mib", 512 << 20, false},
		{"1GiB", 1 << 30, false},
		{"1.5GiB", 3 << 29, false},
		{"64 KiB", 64 << 10, false},
		{"8M", 8 << 20, false},
		{"2g", 2 << 30, false},
		{"500MB", 500_000_000, false},
		{"1kB", 1000, false},
		{"100B", 100, false},
		{"1TiB", 1 << 40, false},
		{"", 0, true},
		{"MiB", 0, true},
		{"-1", 0, true},
		{"-1MiB", 0, true},
		{"1.5", 0, true},
		{"0.1KiB", 0, true},
		{"1e9", 0, true},
		{"Inf", 0, true},
		{"NaN", 0, true},
		{"0x10", 0, true},
		{"8EiB", 0, true},
		{"9223372036854775808", 0, true},
		{"8192PiB", 0, true},
	} {
		got, err := ParseByteSize(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestDirList(t *testing.T) {
	var dirs DirList
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&dirs, "dir", "")
	if err := fs.Parse([]string{"--dir", "a, b,,", "--dir", " c "}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c"}; !slices.Equal(dirs, want) || dirs.String() != "a,b,c" {
		t.Fatalf("dirs %q (%s), want %q", dirs, dirs.String(), want)
	}
}
