package a

import "testing"

func TestHook(t *testing.T) {
	hook = func() int { return 2 }
	clear(cleared)
	_ = uses()
}
