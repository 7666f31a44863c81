// Package b writes a variable of package a.
package b

import "shoal/internal/pkgstate/testdata/a"

func Reset() { a.ErrByOther = nil }
