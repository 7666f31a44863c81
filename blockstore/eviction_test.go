package blockstore

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// blockData is the content of a test block: a function of its ID and size,
// so that any Get can check what it got.
func blockData(id BlockID, size int) []byte {
	h := fnv.New32a()
	fmt.Fprint(h, id)
	seed := h.Sum32()
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(seed + uint32(i)*31)
	}
	return b
}

var testLevels = map[string]Level{"mem": MemorySer, "mem+disk": MemoryAndDisk, "disk": DiskOnly}

// describe prints the store: memory blocks least recently used first,
// then disk blocks in ID order, then the totals.
func (s *Store) describe() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	b.WriteString("memory (least recently used first):\n")
	for el := s.lru.Back(); el != nil; el = el.Prev() {
		e := el.Value.(*entry)
		fmt.Fprintf(&b, "  %s %s size=%d prio=%d\n", e.id, e.level, e.size, e.prio)
	}
	b.WriteString("disk:\n")
	var disk []*entry
	for _, e := range s.blocks {
		if e.state != inMemory {
			disk = append(disk, e)
		}
	}
	slices.SortFunc(disk, func(a, b *entry) int { return strings.Compare(a.id.String(), b.id.String()) })
	for _, e := range disk {
		fmt.Fprintf(&b, "  %s size=%d\n", e.id, e.size)
	}
	c := s.counts
	fmt.Fprintf(&b, "memory bytes %d/%d, disk bytes %d\n", s.mem, s.opts.MemoryBytes, s.disk)
	fmt.Fprintf(&b, "hits %d misses %d evictions %d (to disk %d) not-stored %d spilled-puts %d corrupt %d\n",
		c.hits, c.misses, c.evictions, c.evictedToDisk, c.notStored, c.spilledPuts, c.corrupt)
	return b.String()
}

func TestEviction(t *testing.T) {
	datadriven.Walk(t, "testdata/eviction", func(t *testing.T, path string) {
		var s *Store
		var opts Options
		t.Cleanup(func() {
			if s != nil {
				s.Close()
			}
		})
		ctx := context.Background()
		blockID := func(d *datadriven.TestData) BlockID {
			var id BlockID
			d.ScanArgs(t, "app", &id.App)
			d.ScanArgs(t, "rdd", &id.RDD)
			d.ScanArgs(t, "part", &id.Partition)
			return id
		}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "open":
				if s != nil {
					s.Close()
				}
				var mem int64
				d.ScanArgs(t, "memory", &mem)
				ndirs := 1
				d.MaybeScanArgs(t, "dirs", &ndirs)
				opts = Options{MemoryBytes: mem}
				root := t.TempDir()
				for i := range ndirs {
					opts.Dirs = append(opts.Dirs, filepath.Join(root, fmt.Sprintf("d%d", i)))
				}
				var err error
				if s, err = Open(opts); err != nil {
					return "error: " + err.Error()
				}
				return "ok"
			case "reopen":
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				var err error
				if s, err = Open(opts); err != nil {
					return "error: " + err.Error()
				}
				return s.describe()
			case "put":
				id := blockID(d)
				var lvl string
				var size, prio int
				d.ScanArgs(t, "level", &lvl)
				d.ScanArgs(t, "size", &size)
				d.MaybeScanArgs(t, "prio", &prio)
				level, ok := testLevels[lvl]
				if !ok {
					t.Fatalf("unknown level %q", lvl)
				}
				stored, evicted, err := s.Put(ctx, id, level, prio, blockData(id, size))
				var b strings.Builder
				fmt.Fprintf(&b, "stored %s\n", stored)
				for _, e := range evicted {
					to := "dropped"
					if e.ToDisk {
						to = "to disk"
					}
					fmt.Fprintf(&b, "evicted %s %s %s\n", e.ID, e.Level, to)
				}
				if err != nil {
					fmt.Fprintf(&b, "error: %v\n", err)
				}
				checkMemoryBound(t, s)
				return b.String()
			case "get":
				id := blockID(d)
				data, level, found, err := s.Get(ctx, id)
				switch {
				case err != nil:
					return "error: " + strings.ReplaceAll(err.Error(), filepath.Dir(opts.Dirs[0]), "ROOT")
				case !found:
					return "miss"
				}
				if !bytes.Equal(data, blockData(id, len(data))) {
					t.Fatalf("%s: wrong bytes", id)
				}
				return fmt.Sprintf("hit %s size=%d", level, len(data))
			case "remove":
				removed, err := s.Remove(blockID(d))
				if err != nil {
					return "error: " + err.Error()
				}
				return fmt.Sprintf("removed %v", removed)
			case "remove-rdd":
				var app string
				var rdd int
				d.ScanArgs(t, "app", &app)
				d.ScanArgs(t, "rdd", &rdd)
				n, err := s.RemoveRDD(app, rdd)
				if err != nil {
					return "error: " + err.Error()
				}
				return fmt.Sprintf("removed %d", n)
			case "remove-app":
				var app string
				d.ScanArgs(t, "app", &app)
				n, err := s.RemoveApp(app)
				if err != nil {
					return "error: " + err.Error()
				}
				return fmt.Sprintf("removed %d", n)
			case "corrupt":
				id := blockID(d)
				s.mu.Lock()
				e := s.blocks[id]
				s.mu.Unlock()
				if e == nil || e.state != onDisk {
					t.Fatalf("%s is not on disk", id)
				}
				p := s.path(id, e.rec)
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				b[len(b)-1] ^= 0xff
				if err := os.WriteFile(p, b, 0o644); err != nil {
					t.Fatal(err)
				}
				return "ok"
			case "files":
				// The block files under every directory, by name.
				var names []string
				for _, dir := range opts.Dirs {
					filepath.WalkDir(dir, func(p string, de os.DirEntry, err error) error {
						if err == nil && !de.IsDir() && strings.Contains(p, string(filepath.Separator)+BlocksDirName+string(filepath.Separator)) {
							rel, _ := filepath.Rel(filepath.Dir(dir), p)
							names = append(names, rel)
						}
						return nil
					})
				}
				slices.Sort(names)
				if len(names) == 0 {
					return "(none)"
				}
				return strings.Join(names, "\n") + "\n"
			case "state":
				return s.describe()
			}
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		})
	})
}

func checkMemoryBound(t *testing.T, s *Store) {
	t.Helper()
	if m := s.Metrics(); m.MemoryBytes > s.opts.MemoryBytes || m.MemoryBytes < 0 {
		t.Fatalf("memory bytes %d outside [0, %d]", m.MemoryBytes, s.opts.MemoryBytes)
	}
}
