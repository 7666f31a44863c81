package fnref

import (
	"fmt"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"unsafe"
)

// Ref names a top-level function in a way that holds in every process
// running the same binary.
type Ref struct {
	Name string `json:"name"` // the symbol, as runtime.FuncForPC reports it
	Off  int64  `json:"off"`  // entry PC minus the entry PC of reference
}

func (r Ref) String() string { return fmt.Sprintf("%s@%+d", r.Name, r.Off) }

// AnonymousFuncError is returned by Of for a func value that carries state
// which cannot travel to a worker: a closure, a method value or a function
// made by reflect.
type AnonymousFuncError struct {
	Name string // the symbol Go gave the function
	kind funcKind
}

type funcKind int

const (
	closure funcKind = iota
	methodValue
	reflectFunc
)

func (e *AnonymousFuncError) Error() string {
	var what, why string
	switch e.kind {
	case closure:
		what, why = "an anonymous function (closure)", "closures cannot travel to workers because their captured variables stay behind"
	case methodValue:
		what, why = "a method value (a method bound to its receiver)", "method values cannot travel to workers because their receiver stays behind"
	default:
		what, why = "a function made by reflect", "such functions cannot travel to workers because their implementation stays behind"
	}
	return fmt.Sprintf("fnref: %s is %s; %s. Pass a top-level function (func name(x T) U { ... }) "+
		"or a struct value whose exported fields carry its parameters (see client.MapWith)", e.Name, what, why)
}

// MismatchError is returned by Resolve when the function a Ref names is not
// where the Ref says: the worker runs a different binary from the driver.
type MismatchError struct {
	Ref   Ref
	Found string // the function found at the address, or "" for none
}

func (e *MismatchError) Error() string {
	found := "no function there"
	if e.Found != "" {
		found = "found " + e.Found
	}
	return fmt.Sprintf("fnref: %s is not at the expected address in this binary (%s); "+
		"the worker must run the same binary as the driver", e.Ref.Name, found)
}

// reference is the fixed point every offset is measured from.
func reference() {}

func referencePC() uintptr { return reflect.ValueOf(reference).Pointer() }

// closureName matches the last element of the names Go gives func literals:
// F.func1, F.func1.2, F[...].func3, init.0.func1, F.pkg.G.func4 (inlined).
// The ".funcN" must follow at least one other dot, so that a top-level
// function named func1 (pkg.func1) is not taken for a closure; a method
// named func1 (pkg.T.func1) still is, and must be renamed to travel.
var closureName = regexp.MustCompile(`^[^.]*\..*\.func\d+(\.\d+)*$`)

// Of returns the Ref of f, which must be a non-nil func value with no state:
// a top-level function, a method expression or a generic instantiation.
func Of(f any) (Ref, error) {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Func {
		return Ref{}, fmt.Errorf("fnref: %T is not a function", f)
	}
	if v.IsNil() {
		return Ref{}, fmt.Errorf("fnref: nil %T", f)
	}
	pc := v.Pointer()
	fn := runtime.FuncForPC(pc)
	if fn == nil {
		return Ref{}, fmt.Errorf("fnref: no symbol for %T at %#x", f, pc)
	}
	name := fn.Name()
	last := name[strings.LastIndexByte(name, '/')+1:]
	switch {
	case strings.HasSuffix(name, "-fm"):
		return Ref{}, &AnonymousFuncError{Name: name, kind: methodValue}
	case closureName.MatchString(last):
		return Ref{}, &AnonymousFuncError{Name: name, kind: closure}
	case name == "reflect.makeFuncStub" || name == "reflect.methodValueCall":
		return Ref{}, &AnonymousFuncError{Name: name, kind: reflectFunc}
	}
	return Ref{Name: name, Off: int64(pc - referencePC())}, nil
}

// MustOf is Of for package-level framework functions, whose Ref cannot fail;
// it panics on error.
func MustOf(f any) Ref {
	r, err := Of(f)
	if err != nil {
		panic(err)
	}
	return r
}

// Resolve returns the function r names as a value of func type F. It fails,
// without panicking, when F is not a func type or when the function at r's
// offset is not the one r names.
func Resolve[F any](r Ref) (F, error) {
	var f F
	if t := reflect.TypeFor[F](); t.Kind() != reflect.Func {
		return f, fmt.Errorf("fnref: cannot resolve %s as %v, which is not a func type", r.Name, t)
	}
	pc := referencePC() + uintptr(r.Off)
	fn := runtime.FuncForPC(pc)
	switch {
	case fn == nil:
		return f, &MismatchError{Ref: r}
	case fn.Name() != r.Name || fn.Entry() != pc:
		return f, &MismatchError{Ref: r, Found: fmt.Sprintf("%s%+d", fn.Name(), pc-fn.Entry())}
	}
	// A func value points to a word holding the code pointer, followed by
	// any captured variables; a stateless function captures none.
	fv := new(uintptr)
	*fv = pc
	return *(*F)(unsafe.Pointer(&fv)), nil
}
