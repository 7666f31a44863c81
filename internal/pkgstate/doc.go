// Command pkgstate fails on mutable package-level state: STYLE.md's "no
// mutable package-level variables". `make lint` runs it over the module:
//
//	go run ./internal/pkgstate ./...
//
// It prints file:line, the variable's name and why, one line per
// violation, and exits 1 if there is any (2 if the packages could not be
// loaded).
//
// # The rule
//
// A package-level var declared in a non-test, non-generated file is
// allowed only if it is
//
//   - blank (var _ I = (*T)(nil), an interface assertion: it holds
//     nothing);
//   - an error (its type implements error: errors.New, fmt.Errorf, an
//     error type's value), or a compiled regexp (*regexp.Regexp), and
//     never written;
//   - unexported, never written, and a value nothing can write through:
//     either its type holds no references (no pointer, slice, map, chan,
//     func or interface in it: numbers, strings, arrays and structs of
//     them), or every use of it yields only such values (an element or
//     field read, range over it, len, cap, a comparison, a call of a
//     func variable), or its declaration says //lint:table (below).
//
// An exported variable of another kind is a violation whatever its use:
// any importer may assign it. Make it a constant, a function that returns
// a fresh value, or unexport it.
//
// # Writes
//
// A variable is written where it, or a part of it (a field, an element,
// what it points to), is
//
//   - assigned (=, op=, a range clause's key or value), incremented or
//     decremented;
//   - addressed (&v, &v.f, slicing an array v[:]);
//   - the first argument of append, clear, copy or delete;
//   - the receiver of a method with a pointer receiver (v.M() with v
//     addressable takes &v), or of (*regexp.Regexp).Longest, the one
//     method that changes a regexp.
//
// Writes are looked for in every package of the module given to it,
// with types, and in their test files (in-package and external tests)
// syntactically: an unresolved identifier or a package-qualified one as
// the target of one of the statements above. A test that assigns a
// package variable is the mark of a test hook, which is package state
// too. (Pointer-receiver calls in test files are not seen: the test
// files are not type-checked.)
//
// # Uses that let a value escape, and //lint:table
//
// A variable whose type holds references (castagnoli, a *crc32.Table;
// a slice of structs with func fields) may be changed through a copy of
// the reference: passed to a function, assigned elsewhere, returned, the
// receiver of a method through a pointer or interface. That cannot be
// checked without following the value through every callee, so such a
// use is a violation unless the declaration carries the comment
//
//	//lint:table
//
// (in its doc comment, its line comment, or the doc of its var group),
// the author's word that the value is a table nothing writes. The
// checker still looks for writes to it, as above.
//
// # How it loads the packages
//
// `go list -export -deps -json` gives every package and the compiler's
// export data of its dependencies; each of the module's packages is
// type-checked from source with go/types against that export data
// (go/importer), so the checker needs nothing outside the standard
// library and the go command.
package main
