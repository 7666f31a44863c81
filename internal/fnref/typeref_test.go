package fnref

import "testing"

type opA[T any] struct{}

func (opA[T]) describe() string { var t T; return typeName(t) }

func typeName(v any) string {
	switch v.(type) {
	case int:
		return "int"
	case string:
		return "string"
	}
	return "other"
}

type describer interface{ describe() string }

func instantiate[T any]() any { return opA[T]{} }

func TestTypeRefRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{{instantiate[int](), "int"}, {instantiate[string](), "string"}} {
		r, err := OfType(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		v, err := NewOf(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.(describer).describe(); got != tc.want {
			t.Fatalf("%s describes %s, want %s", r.Name, got, tc.want)
		}
	}
	if _, err := OfType(struct{ X int }{1}); err == nil {
		t.Fatal("a type with state was accepted")
	}
	if _, err := OfType(nil); err == nil {
		t.Fatal("nil was accepted")
	}
	r := MustOfType(instantiate[int]())
	r.Name = "fnref.opA[string]"
	if _, err := NewOf(r); err == nil {
		t.Fatal("a reference with the wrong name resolved")
	}
	if Canary() != Canary() {
		t.Fatal("canary not stable")
	}
}
