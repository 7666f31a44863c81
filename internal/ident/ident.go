package ident

import (
	"fmt"
	"regexp"
)

// pattern is the syntax of a name; see the package documentation.
var pattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Valid reports whether s is a valid name.
func Valid(s string) bool { return pattern.MatchString(s) }

// Check returns nil if s is a valid name, else an error that names it as
// what ("application ID", "checkpoint name") and says what a name may be.
// The error wraps no sentinel: callers wrap it in their own (a package's
// ErrInvalidArgument).
func Check(what, s string) error {
	if Valid(s) {
		return nil
	}
	return fmt.Errorf("%s %q must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit", what, s)
}
