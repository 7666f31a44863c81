package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"shoal/internal/testbin"
	"shoal/shuffleservice/shuffle"
)

// TestRunShuffle runs the benchmark through real node processes in every
// mode, for 1 to 10,000 reduce partitions, with and without spills forced
// by a tiny arena, and checks that every record arrived exactly once and
// that the files on disk are what each mode promises.
func TestRunShuffle(t *testing.T) {
	bin := testbin.Shoal(t)
	type tc struct {
		mode          shuffle.Mode
		maps, reduces int
		records       int64
		nodes         int
		memoryLimit   int
		remoteOnly    bool
		wantSpills    bool
		codec         shuffle.Codec
	}
	var cases []tc
	for _, mode := range []shuffle.Mode{shuffle.ModeSort, shuffle.ModeBypass, shuffle.ModeHash} {
		for _, r := range []int{1, 7, 256, 10_000} {
			maps := 4
			if mode == shuffle.ModeHash && r == 10_000 {
				maps = 2 // 20,000 files are enough to make the point
			}
			cases = append(cases, tc{mode: mode, maps: maps, reduces: r, records: 40_000, nodes: 2, codec: shuffle.CodecS2})
		}
	}
	cases = append(cases,
		tc{mode: shuffle.ModeSort, maps: 3, reduces: 50, records: 60_000, nodes: 1, memoryLimit: 64 << 10, wantSpills: true, codec: shuffle.CodecZstd},
		tc{mode: shuffle.ModeSort, maps: 3, reduces: 10_000, records: 60_000, nodes: 2, memoryLimit: 256 << 10, wantSpills: true, codec: shuffle.CodecNone},
		tc{mode: shuffle.ModeBypass, maps: 3, reduces: 300, records: 30_000, nodes: 3, memoryLimit: 32 << 10, remoteOnly: true, codec: shuffle.CodecZstd},
	)
	for _, c := range cases {
		name := fmt.Sprintf("mode=%s/maps=%d/reduces=%d/nodes=%d/memory=%d/codec=%s", c.mode, c.maps, c.reduces, c.nodes, c.memoryLimit, c.codec)
		t.Run(name, func(t *testing.T) {
			res, err := RunShuffle(context.Background(), ShuffleConfig{
				Mode: c.mode, Codec: c.codec, Maps: c.maps, Reduces: c.reduces, Records: c.records,
				RecordBytes: 100, Nodes: c.nodes, MemoryLimit: c.memoryLimit, RemoteOnly: c.remoteOnly,
				Binary: bin, Dir: t.TempDir(), Seed: 7, NodeStderr: t.Output(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.RecordsWritten != c.records || res.RecordsRead != c.records {
				t.Fatalf("wrote %d, read %d records, want %d", res.RecordsWritten, res.RecordsRead, c.records)
			}
			if res.DigestRead != res.DigestWritten {
				t.Fatalf("digest read %s != written %s", res.DigestRead, res.DigestWritten)
			}
			wantFiles := 2 * c.maps
			if c.mode == shuffle.ModeHash {
				wantFiles = c.maps * c.reduces
			}
			if res.FilesCreated != wantFiles {
				t.Fatalf("files created %d, want %d", res.FilesCreated, wantFiles)
			}
			if c.wantSpills != (res.Spills > 0) {
				t.Fatalf("%d spills (spills expected: %v)", res.Spills, c.wantSpills)
			}
			if c.nodes > 1 && res.RemoteBytes == 0 || !c.remoteOnly && res.LocalBytes == 0 || c.remoteOnly && res.LocalBytes != 0 {
				t.Fatalf("local bytes %d, remote bytes %d", res.LocalBytes, res.RemoteBytes)
			}
			if res.BytesWritten <= 0 || res.PeakRSSBytes <= 0 || res.NodePeakRSSBytes <= 0 {
				t.Fatalf("bytes on disk %d, peak RSS %d, node peak RSS %d", res.BytesWritten, res.PeakRSSBytes, res.NodePeakRSSBytes)
			}
			if res.DiskBytes < res.BytesWritten/2 || res.WritePeakRSSBytes <= 0 ||
				res.PeakOpenFiles <= 0 || res.NodePeakOpenFiles <= 0 || res.OpenFilesSamples < c.maps || res.Phase != "" || res.Error != "" {
				t.Fatalf("disk bytes %d (written %d), writers' peak RSS %d (all %d), peak open files %d (node %d) in %d samples, phase %q, error %q",
					res.DiskBytes, res.BytesWritten, res.WritePeakRSSBytes, res.PeakRSSBytes, res.PeakOpenFiles, res.NodePeakOpenFiles, res.OpenFilesSamples, res.Phase, res.Error)
			}
			if c.nodes > 1 && (res.NodeFetchRequests <= 0 || res.BlocksServed <= 0) {
				t.Fatalf("node fetch requests %d, blocks served %d", res.NodeFetchRequests, res.BlocksServed)
			}
		})
	}
}

// The digest tells a lost or duplicated record apart from the right set.
func TestDigestDetectsLossAndDuplication(t *testing.T) {
	g := newRecordGen(1, 1, 0, 100)
	var all, lost, dup Digest
	for i := range 1000 {
		k, v := g.next()
		all.Add(k, v)
		if i != 500 {
			lost.Add(k, v)
		}
		dup.Add(k, v)
		if i == 500 {
			dup.Add(k, v)
		}
	}
	if all.String() == lost.String() || all.String() == dup.String() {
		t.Fatalf("digests equal: all %s, lost %s, dup %s", &all, &lost, &dup)
	}
	// Order does not matter.
	var a, b Digest
	a.Add([]byte("k1"), []byte("v1"))
	a.Add([]byte("k2"), []byte("v2"))
	b.Add([]byte("k2"), []byte("v2"))
	b.Add([]byte("k1"), []byte("v1"))
	if a.String() != b.String() {
		t.Fatalf("order changed the digest: %s vs %s", &a, &b)
	}
	// A record hashes the same whether its value follows its key in memory
	// or not, and the split between key and value counts.
	rec := []byte("key-1value-1")
	var joined, apart, split Digest
	joined.Add(rec[:5], rec[5:])
	apart.Add([]byte("key-1"), []byte("value-1"))
	split.Add(rec[:4], rec[4:])
	if joined.String() != apart.String() || joined.String() == split.String() {
		t.Fatalf("joined %s, apart %s, split differently %s", &joined, &apart, &split)
	}
}

func TestShuffleConfigValidation(t *testing.T) {
	_, err := RunShuffle(context.Background(), ShuffleConfig{Maps: 0, Reduces: 0, RecordBytes: 5, Records: -1, Binary: "/nonexistent"})
	if err == nil {
		t.Fatal("no error for a config with every field wrong")
	}
	for _, want := range []string{"maps", "reduces", "records", "record bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
