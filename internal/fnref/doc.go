// Package fnref lets a function travel from the driver to a worker by name.
//
// Workers are re-executions of the driver's own binary, so every top-level
// function sits at the same place relative to every other one in each
// process, even when the binary is position-independent and the loader puts
// it at a different base address. A [Ref] records a function's symbol name
// and the distance of its entry point from a reference function in this
// package; [Resolve] adds that distance to the reference function's address
// in the worker's process, checks that the symbol found there has the
// recorded name, and rebuilds a func value of the caller's type.
//
//	ref, err := fnref.Of(wordCount)                // on the driver
//	f, err := fnref.Resolve[func(string) int](ref) // on the worker
//
// # What can travel
//
// Only functions that carry no state: top-level functions, method expressions
// (T.Method, (*T).Method) and instantiations of generic top-level functions
// (gen[int]; Go names all instantiations gen[...], but each has its own entry
// point, so the offset tells them apart). [Of] rejects, with an
// [*AnonymousFuncError], the func values whose state would silently stay
// behind in the driver:
//
//   - closures (func literals), named by Go after their enclosing function:
//     pkg.F.func1, pkg.F.func1.2, pkg.F[...].func1, pkg.init.func1, and with
//     inlining pkg.G.pkg.F.func3;
//   - method values x.M, whose receiver x is bound: pkg.T.M-fm,
//     pkg.(*T).M-fm;
//   - functions made by reflect (reflect.MakeFunc, reflect.Value.Method),
//     whose code is a shared stub (reflect.makeFuncStub,
//     reflect.methodValueCall).
//
// Parameters travel as data instead: a struct whose exported fields carry
// them, serialised beside the Ref.
//
// # Safety
//
// Resolve cannot check the function's signature, only its name: the caller
// must ask for the func type the function was declared with, as the driver
// and worker do by construction when both sides come from the same generic
// code. Resolve never returns a func value for an address that is not the
// entry point of a function with the recorded name.
package fnref
