package fnref

import (
	"fmt"
	"reflect"
	"unsafe"
)

// Type references: the code that rebuilds an operator on a worker is a
// method of a zero-size generic type, e.g. client.mapOp[string,int]. A
// generic function instantiated inside generic code is a closure over its
// type dictionary and cannot travel as a function, but the instantiated
// type's descriptor is static data of the binary: a TypeRef is its name
// and its address relative to reference, and NewOf rebuilds a zero value
// of it whose methods (found through an interface) are the instantiated
// code.
//
// A type reference is trusted only between copies of the same binary:
// resolving one reads the descriptor at the computed address. Check
// Canary first: equal canaries mean equal layouts.

// eface is the layout of an interface value holding a value of any type.
type eface struct {
	typ, data unsafe.Pointer
}

// OfType returns a reference to the dynamic type of v, which must have
// size zero (it carries no state: its parameters travel separately).
func OfType(v any) (Ref, error) {
	t := reflect.TypeOf(v)
	if t == nil {
		return Ref{}, fmt.Errorf("fnref: nil has no type to refer to")
	}
	if t.Size() != 0 {
		return Ref{}, fmt.Errorf("fnref: %s has size %d; only zero-size types can travel by reference", t, t.Size())
	}
	e := (*eface)(unsafe.Pointer(&v))
	return Ref{Name: t.String(), Off: int64(uintptr(e.typ)) - int64(referencePC())}, nil
}

// MustOfType is OfType for the framework's own operator types; it panics
// on error.
func MustOfType(v any) Ref {
	r, err := OfType(v)
	if err != nil {
		panic(err)
	}
	return r
}

// NewOf returns a zero value of the type r refers to. The caller must have
// checked that r comes from a copy of this binary (see Canary).
func NewOf(r Ref) (any, error) {
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	// The descriptor is static data of the binary, not a heap object, so
	// writing its address as a word hides nothing from the collector.
	*(*uintptr)(unsafe.Pointer(&e.typ)) = uintptr(int64(referencePC()) + r.Off)
	// The value has size zero: its data word points to no bytes of it
	// (new of a zero-size type allocates nothing).
	e.data = unsafe.Pointer(new(struct{}))
	if got := reflect.TypeOf(v).String(); got != r.Name {
		return nil, &MismatchError{Ref: r, Found: got}
	}
	return v, nil
}

type canary struct{}

// Canary is a type reference computed in this binary. A plan carries the
// driver's; a worker whose own differs runs another binary and must
// refuse the plan before resolving any type reference in it.
func Canary() Ref { return MustOfType(canary{}) }
