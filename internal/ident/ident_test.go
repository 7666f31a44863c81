package ident

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"app-1", true}, {"A.b_c-9", true}, {"9", true}, {"ranks-000030", true}, {strings.Repeat("a", 128), true},
		{"..", false}, {"../x", false}, {"a/b", false}, {`a\b`, false}, {"", false}, {".hidden", false},
		{"-x", false}, {"_x", false}, {"x\x00", false}, {"a b", false}, {"é", false},
		{string(make([]byte, 129)), false}, {strings.Repeat("a", 129), false},
	} {
		err := Check("application ID", tc.id)
		if (err == nil) != tc.ok || Valid(tc.id) != tc.ok {
			t.Errorf("Check(%q) = %v, Valid = %v; want ok=%v", tc.id, err, Valid(tc.id), tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "application ID") {
			t.Errorf("Check(%q) = %q, does not say what was checked", tc.id, err)
		}
	}
}
