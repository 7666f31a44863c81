package fnref

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

func double(x int) int { return 2 * x }

type adder struct{ n int }

func (a adder) add(x int) int     { return a.n + x }
func (a *adder) addPtr(x int) int { return a.n + x }

func describe[T any](x T) string { return fmt.Sprintf("%T", x) }

func closureIn[T any]() func(T) string { return func(x T) string { return fmt.Sprint(x) } }

func nested() func() func() int { return func() func() int { return func() int { return 1 } } }

var pkgClosure = func(x int) int { return x }

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		f    any
		call func(r Ref) (any, error) // resolves r and calls it
		want any
	}{
		{"top-level", double, func(r Ref) (any, error) {
			f, err := Resolve[func(int) int](r)
			return callIf(err, func() any { return f(21) })
		}, 42},
		{"method expression", adder.add, func(r Ref) (any, error) {
			f, err := Resolve[func(adder, int) int](r)
			return callIf(err, func() any { return f(adder{40}, 2) })
		}, 42},
		{"pointer method expression", (*adder).addPtr, func(r Ref) (any, error) {
			f, err := Resolve[func(*adder, int) int](r)
			return callIf(err, func() any { return f(&adder{40}, 2) })
		}, 42},
		{"generic int", describe[int], func(r Ref) (any, error) {
			f, err := Resolve[func(int) string](r)
			return callIf(err, func() any { return f(1) })
		}, "int"},
		{"generic string", describe[string], func(r Ref) (any, error) {
			f, err := Resolve[func(string) string](r)
			return callIf(err, func() any { return f("") })
		}, "string"},
		// *int and *string share a GC shape, hence the code; only the
		// instantiation wrapper's dictionary tells them apart.
		{"generic *int", describe[*int], func(r Ref) (any, error) {
			f, err := Resolve[func(*int) string](r)
			return callIf(err, func() any { return f(nil) })
		}, "*int"},
		{"generic *string", describe[*string], func(r Ref) (any, error) {
			f, err := Resolve[func(*string) string](r)
			return callIf(err, func() any { return f(nil) })
		}, "*string"},
		{"other package", strings.ToUpper, func(r Ref) (any, error) {
			f, err := Resolve[func(string) string](r)
			return callIf(err, func() any { return f("up") })
		}, "UP"},
	}
	offs := map[int64]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Of(tt.f)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", r)
			if prev, ok := offs[r.Off]; ok {
				t.Fatalf("%s has the same offset as %s", r, prev)
			}
			offs[r.Off] = tt.name
			got, err := tt.call(r)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("resolved %s returns %v, want %v", r, got, tt.want)
			}
		})
	}
}

func callIf(err error, call func() any) (any, error) {
	if err != nil {
		return nil, err
	}
	return call(), nil
}

func TestOfRejects(t *testing.T) {
	y := 1
	tests := []struct {
		name      string
		f         any
		anonymous bool // want an *AnonymousFuncError
		wantName  string
	}{
		{"closure", func(x int) int { return x }, true, "shoal/internal/fnref.TestOfRejects.func1"},
		{"capturing closure", func(x int) int { return x + y }, true, "shoal/internal/fnref.TestOfRejects.func2"},
		{"nested closure", nested()(), true, ""},
		{"generic closure", closureIn[int](), true, ""},
		{"package-level closure", pkgClosure, true, "shoal/internal/fnref.init.func1"},
		{"method value", adder{1}.add, true, "shoal/internal/fnref.adder.add-fm"},
		{"pointer method value", (&adder{1}).addPtr, true, "shoal/internal/fnref.(*adder).addPtr-fm"},
		{"reflect.MakeFunc", reflect.MakeFunc(reflect.TypeFor[func()](), nil).Interface(), true, "reflect.makeFuncStub"},
		{"reflect method value", reflect.ValueOf(time.Second).MethodByName("String").Interface(), true, "reflect.methodValueCall"},
		{"nil func", (func())(nil), false, ""},
		{"nil", nil, false, ""},
		{"not a func", 42, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Of(tt.f)
			if err == nil {
				t.Fatalf("Of accepted it as %s", r)
			}
			t.Logf("%v", err)
			var anon *AnonymousFuncError
			if got := errors.As(err, &anon); got != tt.anonymous {
				t.Fatalf("errors.As(*AnonymousFuncError) = %v, want %v", got, tt.anonymous)
			}
			if tt.wantName != "" && anon.Name != tt.wantName {
				t.Fatalf("Name = %q, want %q", anon.Name, tt.wantName)
			}
		})
	}
}

func TestClosureName(t *testing.T) {
	tests := []struct {
		name    string
		closure bool
	}{
		{"main.main.func1", true},
		{"pkg.F.func2.1", true},
		{"pkg.init.func1", true},
		{"pkg.init.0.func1", true},
		{"glob..func1", true},
		{"pkg.F[...].func1", true},
		{"main.main.main.nested.func3.func4", true}, // inlined
		{"main.main", false},
		{"pkg.func1", false}, // a top-level function named func1
		{"pkg.T.Method", false},
		{"pkg.(*T).Method", false},
		{"pkg.F[...]", false},
		{"pkg.funcs", false},
		{"pkg.F.function1", false},
	}
	for _, tt := range tests {
		if got := closureName.MatchString(tt.name); got != tt.closure {
			t.Errorf("closureName.MatchString(%q) = %v, want %v", tt.name, got, tt.closure)
		}
	}
}

func TestResolveRejects(t *testing.T) {
	good := MustOf(double)
	tests := []struct {
		name string
		ref  Ref
	}{
		{"wrong name", Ref{Name: "shoal/internal/fnref.triple", Off: good.Off}},
		{"mid-function", Ref{Name: good.Name, Off: good.Off + 1}},
		{"other function", Ref{Name: good.Name, Off: MustOf(describe[int]).Off}},
		{"far forward", Ref{Name: good.Name, Off: 1 << 40}},
		{"far back", Ref{Name: good.Name, Off: -1 << 40}},
		{"max", Ref{Name: good.Name, Off: math.MaxInt64}},
		{"min", Ref{Name: good.Name, Off: math.MinInt64}},
		{"zero", Ref{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Resolve[func(int) int](tt.ref)
			if err == nil || f != nil {
				t.Fatalf("Resolve(%s) = (non-nil: %t, %v); want nil and an error", tt.ref, f != nil, err)
			}
			var mm *MismatchError
			if !errors.As(err, &mm) {
				t.Fatalf("error %v is not a *MismatchError", err)
			}
			t.Logf("%v", err)
		})
	}
	t.Run("not a func type", func(t *testing.T) {
		if _, err := Resolve[int](good); err == nil {
			t.Fatal("Resolve[int] succeeded")
		}
	})
}

func TestMustOfPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("MustOf of a closure did not panic")
		}
	}()
	MustOf(func() {})
}

func TestJSON(t *testing.T) {
	r := MustOf(describe[string])
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Ref
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != r {
		t.Fatalf("%s came back from %s as %s", r, b, back)
	}
	f, err := Resolve[func(string) string](back)
	if err != nil {
		t.Fatal(err)
	}
	if got := f("x"); got != "string" {
		t.Fatalf("got %q", got)
	}
}

// childEnv carries the Refs, as JSON, to a re-executed test binary.
const childEnv = "FNREF_TEST_CHILD_REFS"

func TestMain(m *testing.M) {
	if refs := os.Getenv(childEnv); refs != "" {
		os.Exit(child(refs))
	}
	os.Exit(m.Run())
}

// child resolves and calls the Refs it was given and prints the results.
func child(refsJSON string) int {
	var refs struct{ Double, Describe Ref }
	if err := json.Unmarshal([]byte(refsJSON), &refs); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	d, err := Resolve[func(int) int](refs.Double)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := Resolve[func(*string) string](refs.Describe)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("reference=%#x double(21)=%d describe=%s\n", referencePC(), d(21), s(nil))
	return 0
}

func TestAcrossProcesses(t *testing.T) {
	refs, err := json.Marshal(struct{ Double, Describe Ref }{MustOf(double), MustOf(describe[*string])})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+string(refs))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var childRef uintptr
	var doubled int
	var described string
	if _, err := fmt.Sscanf(string(out), "reference=%v double(21)=%d describe=%s", &childRef, &doubled, &described); err != nil {
		t.Fatalf("child printed %q: %v", out, err)
	}
	if doubled != 42 || described != "*string" {
		t.Fatalf("child printed %q, want double(21)=42 describe=*string", out)
	}
	// Under -buildmode=pie with ASLR the two differ, and the Refs still work.
	t.Logf("reference at %#x here, %#x in the child", referencePC(), childRef)
}
