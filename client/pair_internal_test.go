package client

import (
	"reflect"
	"testing"
)

func TestHoldsReferences(t *testing.T) {
	type flat struct {
		A int64
		B string
		C [2]float64
	}
	type deep struct {
		F flat
		S []int
	}
	for _, tc := range []struct {
		t    reflect.Type
		want bool
	}{
		{reflect.TypeFor[int64](), false},
		{reflect.TypeFor[string](), false},
		{reflect.TypeFor[flat](), false},
		{reflect.TypeFor[[3]flat](), false},
		{reflect.TypeFor[[]int](), true},
		{reflect.TypeFor[map[string]int](), true},
		{reflect.TypeFor[*int](), true},
		{reflect.TypeFor[deep](), true},
		{reflect.TypeFor[[2][]int](), true},
		{reflect.TypeFor[any](), true},
	} {
		if got := holdsReferences(tc.t); got != tc.want {
			t.Errorf("holdsReferences(%v) = %v, want %v", tc.t, got, tc.want)
		}
	}
}
