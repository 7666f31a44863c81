package shuffle

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// benchRecords makes n gensort-like records: a 10-byte random key and a
// 90-byte value of which 32 bytes are random hex and the rest a run of
// letters, partially compressible (s2 takes it to about 45%).
func benchRecords(n, r int) []testRecord {
	rng := rand.New(rand.NewPCG(42, 42))
	const hex = "0123456789ABCDEF"
	buf := make([]byte, n*100)
	recs := make([]testRecord, n)
	for i := range recs {
		b := buf[i*100 : (i+1)*100 : (i+1)*100]
		for j := range 10 {
			b[j] = byte(rng.Uint32())
		}
		for j := 10; j < 42; j++ {
			b[j] = hex[rng.IntN(16)]
		}
		c := byte('A' + rng.IntN(26))
		for j := 42; j < 100; j++ {
			b[j] = c
		}
		recs[i] = testRecord{p: int(xxhash.Sum64(b[:10]) % uint64(r)), key: b[:10], value: b[10:]}
	}
	return recs
}

// BenchmarkWriter writes 32 MiB of 100-byte records per op and commits.
//
//	go test ./shuffleservice -run '^$' -bench Writer -count 5
func BenchmarkWriter(b *testing.B) {
	const n = 32 << 20 / 100
	cases := []struct {
		mode    Mode
		reduces int
		codec   Codec
		memory  int
		combine bool
	}{
		{ModeSort, 256, CodecS2, 0, false},
		{ModeSort, 256, CodecNone, 0, false},
		{ModeSort, 256, CodecZstd, 0, false},
		{ModeSort, 1, CodecS2, 0, false},
		{ModeSort, 4096, CodecS2, 0, false},
		{ModeSort, 256, CodecS2, 4 << 20, false},
		{ModeBypass, 256, CodecS2, 0, false},
		{ModeHash, 256, CodecS2, 0, false},
	}
	recs := map[int][]testRecord{}
	for _, c := range cases {
		name := fmt.Sprintf("mode=%v,reduces=%d,codec=%v", c.mode, c.reduces, c.codec)
		if c.memory != 0 {
			name += fmt.Sprintf(",memory=%dMiB", c.memory>>20)
		}
		b.Run(name, func(b *testing.B) {
			if recs[c.reduces] == nil {
				recs[c.reduces] = benchRecords(n, c.reduces)
			}
			rs := recs[c.reduces]
			dir := b.TempDir()
			cm := &memCommitter{}
			b.ReportAllocs()
			b.SetBytes(int64(n * 100))
			var m uint32
			for b.Loop() {
				opts := testOptions(dir, c.mode, c.codec, c.reduces)
				opts.Map = m
				opts.MemoryLimit = c.memory
				m++
				w, err := NewWriter(opts)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range rs {
					if err := w.Write(r.p, r.key, r.value); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := w.Commit(context.Background(), cm); err != nil {
					b.Fatal(err)
				}
				for _, d := range opts.Layout.Dirs {
					os.RemoveAll(d)
				}
			}
		})
	}
}
