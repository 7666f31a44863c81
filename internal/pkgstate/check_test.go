package main

import (
	"bufio"
	"fmt"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The checker over testdata/a (every kind of allowed and forbidden
// variable) and testdata/b (a package and an external test that write
// a's variables). A declaration that must be reported ends with a
// "// want: TEXT" comment, TEXT being part of the reason; every other
// declaration must not be reported.
func TestCheck(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	pkgs, err := load(fset, wd, []string{"./testdata/a", "./testdata/b"})
	if err != nil {
		t.Fatal(err)
	}
	want := wants(t, filepath.Join("testdata", "a", "a.go"))
	if len(want) < 20 {
		t.Fatalf("%d want comments in testdata/a/a.go: the test data is not what the test expects", len(want))
	}
	got := map[string]violation{}
	for _, v := range run(fset, pkgs, wd) {
		key := fmt.Sprintf("%s:%d", v.pos.Filename, v.pos.Line)
		got[key] = v
		w, ok := want[key]
		switch {
		case !ok:
			t.Errorf("reported, but allowed: %v", v)
		case !strings.Contains(v.why, w):
			t.Errorf("%v\n\tdoes not say %q", v, w)
		}
		if !strings.HasPrefix(v.String(), key+":") {
			t.Errorf("%q does not start with the file:line %s", v, key)
		}
	}
	for key, w := range want {
		if _, ok := got[key]; !ok {
			t.Errorf("%s: not reported, want %q", key, w)
		}
	}
}

// wants reads the "// want: TEXT" comments of a file, by file:line.
func wants(t *testing.T, file string) map[string]string {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		if _, w, ok := strings.Cut(sc.Text(), "// want: "); ok {
			out[fmt.Sprintf("%s:%d", file, line)] = w
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A package that does not exist, or does not compile, is an error, not
// an empty report.
func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"go.mod":     "module bad\n\ngo 1.26\n",
		"bad/bad.go": "package bad\n\nvar x int = \"not an int\"\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for pattern, want := range map[string]string{"./none": "none", "./bad": "bad"} {
		_, err := load(token.NewFileSet(), dir, []string{pattern})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("load %s: %v, want an error naming %q", pattern, err, want)
		}
	}
}
