// Package a holds the allowed and forbidden package-level variables of
// the pkgstate checker's test: every declaration says in its comment
// whether the checker must report it (the test reads "want:" comments).
package a

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// Allowed: errors, never written.
var (
	ErrSentinel = errors.New("a: sentinel")
	errWrapped  = fmt.Errorf("a: wrapped: %w", io.EOF)
	errTyped    = &typedError{"a: typed"}
)

type typedError struct{ msg string }

func (e *typedError) Error() string { return e.msg }

// Allowed: a compiled regexp, used.
var idPattern = regexp.MustCompile(`^[a-z]+$`)

// Allowed: interface assertions hold nothing.
var _ io.Reader = (*reader)(nil)
var _ = fmt.Sprint

type reader struct{}

func (*reader) Read(p []byte) (int, error) { return 0, io.EOF }

// Allowed: values without references, only read.
var (
	limit    = 42
	greeting = "hello"
	point    = struct{ X, Y int }{1, 2}
	squares  = [4]int{0, 1, 4, 9}
)

// Allowed: references, but every use yields copies of values without
// references.
var (
	units     = []struct{ suffix string }{{"k"}, {"m"}}
	colours   = map[string]string{"sort": "blue"}
	names     = []string{"x", "y"}
	typeOfInt = reflect.TypeFor[int]()
	convert   = strings.ToUpper // a func variable, only called
)

// Allowed: a table that escapes, marked.
//
//lint:table
var crcTable = crc32.MakeTable(crc32.Castagnoli)

var (
	// marked in a group
	//lint:table a list handed to sort.SearchStrings, never changed
	sortedKeys = []string{"a", "b"}
)

// Forbidden: exported, whatever its use.
var Exported = []int{1} // want: exported variable

// Forbidden: exported value type too.
var ExportedCount int // want: exported variable

// Forbidden: written in many ways.
var (
	counter  int                        // want: incremented or decremented
	assigned string                     // want: assigned
	byField  struct{ n int }            // want: assigned
	byIndex  [3]int                     // want: assigned
	byMap    = map[string]int{}         // want: assigned
	byRange  int                        // want: assigned by a range clause
	addr     int                        // want: addressed (&)
	sliced   [4]byte                    // want: sliced (its address taken)
	method   buffer                     // want: whose receiver is a pointer
	inInit   [2]int                     // want: assigned
	opAssign = 1                        // want: assigned
	errReset = errors.New("x")          // want: assigned
	longest  = regexp.MustCompile(`a+`) // want: changed by Longest
)

// Forbidden: changed by builtins, even marked as tables.
var (
	//lint:table
	deleted = map[string]int{"a": 1} // want: changed by delete
	//lint:table
	cleared = map[string]int{"a": 1} // want: changed by clear in a test
	//lint:table
	copiedInto = []byte("abc") // want: changed by copy
	//lint:table
	appended = make([]int, 1, 4) // want: changed by append
)

// Forbidden: references that escape, unmarked.
var (
	crcUnmarked           = crc32.MakeTable(crc32.IEEE) // want: passed to a function
	passed                = []string{"b", "a"}          // want: passed to a function
	returned              = []int{1}                    // want: returned
	copied                = map[string]int{}            // want: copied into another variable
	ranged                = []*int{new(int)}            // want: ranged over, yielding references
	called                = &buffer{}                   // want: the receiver of grow
	iface       io.Reader = &reader{}                   // want: the receiver of Read
)

// Forbidden: a test hook, written by the package's tests.
var hook = func() int { return 1 } // want: assigned in a test

// Forbidden: written by another package's test.
var ErrByOtherTest = errors.New("b") // want: assigned in a test

// Forbidden: written by another package.
var ErrByOther = errors.New("c") // want: assigned

type buffer struct{ b []byte }

func (b *buffer) grow()      { b.b = append(b.b, 0) }
func (b buffer) size() int   { return len(b.b) }
func keep(v any)             {}
func keepTable(*crc32.Table) {}

func init() {
	inInit[0] = 1
}

func uses() []int {
	_, _, _ = ErrSentinel, errWrapped, errTyped
	_ = idPattern.MatchString("abc")
	_ = limit + len(greeting) + point.X + squares[2]
	for _, u := range units {
		_ = u.suffix
	}
	_ = colours["sort"] + names[0] + convert("x")
	if c, ok := colours["hash"]; ok {
		_ = c
	}
	_ = len(names)
	_ = typeOfInt == reflect.TypeFor[string]()
	_ = crc32.Checksum(nil, crcTable)
	_ = sort.SearchStrings(sortedKeys, "a")
	_ = hook()

	counter++
	assigned = "x"
	byField.n = 1
	byIndex[1] = 2
	byMap["k"] = 1
	for byRange = range 3 {
	}
	p := &addr
	_ = p
	_ = sliced[:]
	method.grow()
	_ = method.size()
	opAssign += 2
	errReset = nil
	longest.Longest()

	delete(deleted, "a")
	copy(copiedInto, "x")
	_ = append(appended, 1)
	_ = cleared

	keepTable(crcUnmarked)
	sort.Strings(passed)
	m := copied
	_ = m
	for _, q := range ranged {
		*q = 1
	}
	called.grow()
	_, _ = iface.Read(nil)
	keep(Exported)
	_ = ExportedCount
	return returned
}
