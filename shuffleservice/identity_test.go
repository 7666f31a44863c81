package shuffleservice

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"shoal/blockstore"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// TestNodeName: a node's directories are bound to its name. Restarted
// with another name, the node refuses them, naming both; with the same
// name at another address it serves its committed map outputs again,
// byte for byte, and says its new address.
func TestNodeName(t *testing.T) {
	opts := testNodeOptions(t)
	opts.CatalogFS = vfs.NewMem() // shared by the incarnations below
	opts.Name = "node-a"
	s1, c1 := startTestServer(t, opts)
	ctx := context.Background()
	if err := c1.RegisterApp(ctx, "app", 0); err != nil {
		t.Fatal(err)
	}
	const R = 5
	var ranges []*shufflepb.BlockRange
	for m := uint32(0); m < 4; m++ {
		write := writeSortedOutput
		if m == 3 {
			write = writeHashOutput
		}
		out, _ := write(t, s1.Layout(), "app", 0, m, 0, genFixtureBlocks(uint64(m), R))
		mustCommit(t, c1, "app", out)
		ranges = append(ranges, &shufflepb.BlockRange{Map: m, ReduceEnd: R})
	}
	before, err := fetchBlocks(t, c1, "app", 0, DefaultChunkSize, ranges...)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c1.Status(ctx)
	if err != nil || st.GetName() != "node-a" || st.GetAddr() != c1.Addr() {
		t.Fatalf("status %v, %v; want name node-a at %s", st, err, c1.Addr())
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	other := opts
	other.Name = "node-b"
	_, err = Open(other)
	if !errors.Is(err, shuffle.ErrInvalidArgument) || !strings.Contains(err.Error(), `"node-a"`) || !strings.Contains(err.Error(), `"node-b"`) {
		t.Fatalf("Open with another name: %v, want a refusal naming node-a and node-b", err)
	}

	again := opts
	again.Addr = "node-a.example:7077"
	_, c2 := startTestServer(t, again)
	after, err := fetchBlocks(t, c2, "app", 0, DefaultChunkSize, ranges...)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || len(before) != 4*R {
		t.Fatalf("%d blocks after the restart, %d before, want %d", len(after), len(before), 4*R)
	}
	for id, b := range before {
		if !bytes.Equal(after[id], b) {
			t.Fatalf("block %v differs after the restart", id)
		}
	}
	st, err = c2.Status(ctx)
	if err != nil || st.GetName() != "node-a" || st.GetAddr() != "node-a.example:7077" || st.GetMapOutputs() != 4 {
		t.Fatalf("status after the restart %v, %v", st, err)
	}
}

func TestNodeNameDefaultsAndChecks(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no hostname")
	}
	_, c := newTestServer(t)
	st, err := c.Status(context.Background())
	if err != nil || st.GetName() != host {
		t.Fatalf("name %q (%v), want the hostname %q", st.GetName(), err, host)
	}
	for _, bad := range []string{"a/b", "-x", strings.Repeat("n", maxNameLen+1), "has space"} {
		opts := testNodeOptions(t)
		opts.Name = bad
		if _, err := Open(opts); !errors.Is(err, shuffle.ErrInvalidArgument) || !strings.Contains(err.Error(), "--name") {
			t.Errorf("Open with name %q: %v, want a refusal naming --name", bad, err)
		}
	}
}

// TestDirsUsage: Status reports, per local directory, the bytes of the
// committed map outputs and of the cached blocks on disk that it holds,
// as the files on disk say.
func TestDirsUsage(t *testing.T) {
	s, c := newTestServer(t)
	ctx := context.Background()
	if err := c.RegisterApp(ctx, "app", 0); err != nil {
		t.Fatal(err)
	}
	for m := uint32(0); m < 12; m++ {
		out, _ := writeSortedOutput(t, s.Layout(), "app", 1, m, 0, genFixtureBlocks(uint64(m), 3))
		mustCommit(t, c, "app", out)
	}
	for p := 0; p < 6; p++ {
		data := bytes.Repeat([]byte{byte(p)}, 1000+p)
		if _, _, err := c.PutBlock(ctx, blockstore.BlockID{App: "app", RDD: 1, Partition: p}, blockstore.DiskOnly, 0, data); err != nil {
			t.Fatal(err)
		}
	}
	check := func(what string) {
		t.Helper()
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.GetDirsUsage()) != len(s.Layout().Dirs) {
			t.Fatalf("%s: %d dirs_usage entries, want %d", what, len(st.GetDirsUsage()), len(s.Layout().Dirs))
		}
		var outputs, blocks, fileBytes, files uint64
		for _, u := range st.GetDirsUsage() {
			blocks += u.GetBlockBytes()
		}
		for _, d := range s.Layout().Dirs {
			bdir := filepath.Join(d, "app", blockstore.BlocksDirName)
			fileBytes += treeBytes(t, bdir, func(string) bool { return true })
			files += uint64(countFiles(t, bdir))
		}
		// Each block file is its data after a header of a fixed size.
		var header uint64
		if files > 0 {
			header = (fileBytes - blocks) / files
		}
		for i, u := range st.GetDirsUsage() {
			d := s.Layout().Dirs[i]
			if u.GetDir() != d {
				t.Fatalf("%s: dirs_usage[%d] is %s, want %s", what, i, u.GetDir(), d)
			}
			onDisk := treeBytes(t, filepath.Join(d, "app"), func(p string) bool { return strings.Contains(p, "/shuffle-") })
			if u.GetMapOutputBytes() != onDisk {
				t.Errorf("%s: %s: %d bytes of map outputs, the files hold %d", what, d, u.GetMapOutputBytes(), onDisk)
			}
			bdir := filepath.Join(d, "app", blockstore.BlocksDirName)
			if want := treeBytes(t, bdir, func(string) bool { return true }) - uint64(countFiles(t, bdir))*header; u.GetBlockBytes() != want {
				t.Errorf("%s: %s: %d bytes of blocks, its files hold %d", what, d, u.GetBlockBytes(), want)
			}
			outputs += u.GetMapOutputBytes()
		}
		if outputs != st.GetBytesOnDisk() || blocks != st.GetBlocks().GetDiskBytes() {
			t.Fatalf("%s: dirs_usage sums to %d of outputs and %d of blocks; status says %d and %d", what, outputs, blocks, st.GetBytesOnDisk(), st.GetBlocks().GetDiskBytes())
		}
	}
	check("after commits and puts")
	st, _ := c.Status(ctx)
	if st.GetBytesOnDisk() == 0 || st.GetBlocks().GetDiskBytes() != 6*1000+15 {
		t.Fatalf("status %v", st)
	}
	if err := c.RemoveShuffle(ctx, "app", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoveBlocks(ctx, "app", 1); err != nil {
		t.Fatal(err)
	}
	check("after removals")
}

// treeBytes sums the sizes of the files under dir whose path matches.
func treeBytes(t testing.TB, dir string, match func(string) bool) uint64 {
	t.Helper()
	var n uint64
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !match(p) {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			n += uint64(fi.Size())
		}
		return nil
	})
	return n
}

func countFiles(t testing.TB, dir string) int {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	return len(entries)
}
