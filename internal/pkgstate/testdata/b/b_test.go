package b_test

import (
	"testing"

	pkga "shoal/internal/pkgstate/testdata/a"
)

func TestReset(t *testing.T) {
	pkga.ErrByOtherTest = nil
}
