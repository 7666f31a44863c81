package client

import (
	"strings"
	"testing"

	"shoal/blockstore"
)

// The levels are constants that carry their kind and a priority; a level
// with a priority keeps its kind, and equal levels are equal values.
func TestStorageLevel(t *testing.T) {
	for _, tc := range []struct {
		level    StorageLevel
		name     string
		node     blockstore.Level
		replicas int
	}{
		{MemoryDeser, "MemoryDeser", blockstore.None, 1},
		{MemorySer, "MemorySer", blockstore.MemorySer, 1},
		{MemoryAndDisk, "MemoryAndDisk", blockstore.MemoryAndDisk, 1},
		{DiskOnly, "DiskOnly", blockstore.DiskOnly, 1},
		{MemorySer2, "MemorySer_2", blockstore.MemorySer, 2},
		{MemoryAndDisk2, "MemoryAndDisk_2", blockstore.MemoryAndDisk, 2},
		{DiskOnly2, "DiskOnly_2", blockstore.DiskOnly, 2},
	} {
		for _, prio := range []int{0, 1, -1, 1000, -1 << 40, maxPriority, minPriority} {
			l := tc.level.WithPriority(prio)
			if l.String() != tc.name || l.nodeLevel() != tc.node || l.replicas() != tc.replicas || l.priority() != prio ||
				l.inHeap() != (tc.node == blockstore.None) || !l.valid() {
				t.Errorf("%s.WithPriority(%d): %q node %v replicas %d priority %d", tc.name, prio, l, l.nodeLevel(), l.replicas(), l.priority())
			}
			if l.WithPriority(0) != tc.level {
				t.Errorf("%s.WithPriority(%d).WithPriority(0) = %d, want the level itself %d", tc.name, prio, l.WithPriority(0), tc.level)
			}
		}
		for _, s := range []string{tc.name, strings.ToLower(tc.name)} {
			if got, err := ParseStorageLevel(s); err != nil || got != tc.level {
				t.Errorf("ParseStorageLevel(%q) = %v, %v; want %v", s, got, err, tc.level)
			}
		}
	}
	if MemorySer.WithPriority(1) == MemorySer || MemorySer.WithPriority(1) == MemoryAndDisk.WithPriority(1) {
		t.Error("levels that differ in priority or kind compare equal")
	}
	if got := MemorySer.WithPriority(1 << 62).priority(); got != maxPriority {
		t.Errorf("a priority of 2^62 is kept as %d, want the largest, %d", got, maxPriority)
	}
	var zero StorageLevel
	if zero.valid() || zero.String() != "" || StorageLevel(99).valid() || StorageLevel(99).String() != "StorageLevel(99)" {
		t.Errorf("the zero level (%q) or level 99 (%q) is taken for a level", zero, StorageLevel(99))
	}
	_, err := ParseStorageLevel("memory")
	if err == nil || !strings.Contains(err.Error(), `"memory"`) || !strings.Contains(err.Error(), "MemoryDeser, MemorySer, MemoryAndDisk, DiskOnly, MemorySer_2, MemoryAndDisk_2, DiskOnly_2") {
		t.Errorf("ParseStorageLevel(\"memory\"): %v", err)
	}
}
