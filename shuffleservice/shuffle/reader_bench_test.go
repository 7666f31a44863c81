package shuffle_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"testing"

	"shoal/shuffleservice/internal/nodetest"
	"shoal/shuffleservice/shuffle"
)

// BenchmarkReader reads every block of a shuffle of 100-byte records (4
// maps × 256 reduce partitions, written by the sort writer) with one
// reader, from local files or through the node service over loopback gRPC.
// MB/s counts record bytes.
func BenchmarkReader(b *testing.B) {
	const maps, reduces, perMap, recordBytes = 4, 256, 100_000, 100
	ctx := context.Background()
	c := startNode(b)
	nodetest.Register(b, c, "bench")
	layout, err := c.RegisterWorker(ctx, "bench", "w", os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	var locs []shuffle.MapLocation
	key, value := make([]byte, 10), make([]byte, recordBytes-10)
	for i := range value {
		value[i] = byte('A' + i/4%26)
	}
	for m := range maps {
		w, err := shuffle.NewWriter(shuffle.WriterOptions{Layout: layout, App: "bench", Shuffle: 0, Map: uint32(m), Partitions: reduces, Codec: shuffle.CodecS2})
		if err != nil {
			b.Fatal(err)
		}
		for i := range perMap {
			binary.BigEndian.PutUint64(key, uint64(i)*0x9e3779b97f4a7c15+uint64(m))
			if err := w.Write(i%reduces, key, value); err != nil {
				b.Fatal(err)
			}
		}
		out, err := w.Commit(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		locs = append(locs, shuffle.MapLocation{Node: c.Addr(), Output: out})
	}
	clients := func(string) (shuffle.Fetcher, error) { return c, nil }
	for _, local := range []bool{true, false} {
		source := "remote"
		if local {
			source = "local"
		}
		b.Run(fmt.Sprintf("source=%s,maps=%d,reduces=%d", source, maps, reduces), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(maps * perMap * recordBytes)
			opts := shuffle.ReaderOptions{App: "bench", ReduceStart: 0, ReduceEnd: reduces, Maps: locs, Clients: clients}
			if local {
				opts.LocalNode, opts.LocalLayout = c.Addr(), layout
			}
			for b.Loop() {
				rd, err := shuffle.NewReader(ctx, opts)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for rd.Next() {
					n++
				}
				if err := rd.Err(); err != nil || n != maps*perMap {
					b.Fatalf("read %d records: %v", n, err)
				}
				rd.Close()
			}
		})
	}
}
