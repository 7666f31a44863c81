package jobs

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
)

func generate(t *testing.T, kind string, records int64, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Generate(kind, &buf, records, seed); err != nil {
		t.Fatalf("Generate(%s, %d, %d): %v", kind, records, seed, err)
	}
	return buf.Bytes()
}

func lines(b []byte) []string {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestGenDeterministic(t *testing.T) {
	for _, kind := range GenKinds() {
		t.Run(kind, func(t *testing.T) {
			a := generate(t, kind, 3000, 7)
			b := generate(t, kind, 3000, 7)
			c := generate(t, kind, 3000, 8)
			if !bytes.Equal(a, b) {
				t.Errorf("two runs with seed 7 differ")
			}
			if bytes.Equal(a, c) {
				t.Errorf("seeds 7 and 8 give the same bytes")
			}
		})
	}
}

func TestGenZeroRecords(t *testing.T) {
	for kind, want := range map[string]int{"text": 0, "ecommerce": 1, "graph": 3, "sort": 0} {
		if got := len(lines(generate(t, kind, 0, 1))); got != want {
			t.Errorf("%s with 0 records: %d lines, want %d", kind, got, want)
		}
	}
}

func TestGenRejects(t *testing.T) {
	if err := Generate("nope", &bytes.Buffer{}, 1, 1); err == nil {
		t.Error("Generate accepted an unknown kind")
	}
	if err := GenText(&bytes.Buffer{}, -1, 1); err == nil {
		t.Error("GenText accepted -1 records")
	}
}

// failingWriter fails every write: generators must report it, not spin.
type failingWriter struct{}

var errFull = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errFull }

func TestGenWriteError(t *testing.T) {
	for _, kind := range GenKinds() {
		if err := Generate(kind, failingWriter{}, 100_000, 1); !errors.Is(err, errFull) {
			t.Errorf("%s: error %v, want %v", kind, err, errFull)
		}
	}
}

func TestGenText(t *testing.T) {
	const records = 20_000
	ls := lines(generate(t, "text", records, 1))
	if len(ls) != records {
		t.Fatalf("%d lines, want %d", len(ls), records)
	}
	var blank, spaceOnly, tabs, runs, words int
	for _, l := range ls {
		f := strings.Fields(l)
		switch {
		case l == "":
			blank++
		case len(f) == 0:
			spaceOnly++
		case len(f) > textMaxWords:
			t.Fatalf("line %q has %d words, want at most %d", l, len(f), textMaxWords)
		}
		if strings.Contains(l, "\t") {
			tabs++
		}
		if strings.Contains(l, "  ") {
			runs++
		}
		words += len(f)
	}
	if blank < records/100 || spaceOnly < records/500 || tabs < records/10 || runs < records/50 {
		t.Errorf("%d blank lines, %d of white space only, %d with tabs, %d with runs of spaces: want some of each", blank, spaceOnly, tabs, runs)
	}
	if mean := float64(words) / records; mean < 8 || mean > 12 {
		t.Errorf("%.1f words per line, want about 10", mean)
	}
	counts, err := RefWordCount(strings.NewReader(strings.Join(ls, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) < 1000 || len(counts) > textVocabulary {
		t.Errorf("%d distinct words, want 1000 to %d", len(counts), textVocabulary)
	}
}

func TestGenEcommerce(t *testing.T) {
	const records = 200_000
	data := generate(t, "ecommerce", records, 1)
	ls := lines(data)
	if len(ls) != records+1 || ls[0] != EcommerceHeader {
		t.Fatalf("%d lines starting with %q, want %d and the header", len(ls), ls[0], records+1)
	}
	var purchases, emptyBrand, emptyCategory, quoted, backwards int
	var last int64
	for _, l := range ls[1:] {
		ev, err := ParseEcommerceLine(l)
		if err != nil {
			continue
		}
		if ev.Type == EventPurchase {
			purchases++
		}
		if ev.Time < last {
			backwards++
		}
		last = ev.Time
		if ev.EventTime < "2019-10-01 00:00:00" || ev.EventTime > "2019-10-31 23:59:59" {
			t.Fatalf("event_time %s is not in October 2019", ev.EventTime)
		}
		f := strings.Split(l, ",")
		if strings.Contains(l, `"`) {
			quoted++
			continue
		}
		if f[colBrand] == "" {
			emptyBrand++
		}
		if f[colCategoryCode] == "" {
			emptyCategory++
		}
	}
	if p := float64(purchases) / records; p < 0.10 || p > 0.20 {
		t.Errorf("%.1f%% purchases, want 10-20%%", 100*p)
	}
	if emptyBrand < records/20 || emptyCategory < records/10 || quoted == 0 {
		t.Errorf("%d empty brands, %d empty category codes, %d quoted rows: want some of each", emptyBrand, emptyCategory, quoted)
	}
	if b := float64(backwards) / records; b < 0.01 || b > 0.2 {
		t.Errorf("%.1f%% of rows earlier than the one before, want a few percent", 100*b)
	}

	out, bad, err := RefEcommerce(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if r := float64(bad) / records; r < 0.0005 || r > 0.002 {
		t.Errorf("%d malformed rows (%.3f%%), want about 0.1%%", bad, 100*r)
	}
	var shared, multi int
	for _, l := range out {
		f := strings.Split(l, "\t")
		if strings.Contains(f[2], ",") {
			shared++
		}
		if n, _ := strconv.Atoi(f[3]); n > 1 {
			multi++
		}
	}
	if shared == 0 || multi < len(out)/20 {
		t.Errorf("of %d sessions, %d shared by users and %d with several purchases: want some of each", len(out), shared, multi)
	}
}

func TestGenGraph(t *testing.T) {
	const records = 100_000
	ls := lines(generate(t, "graph", records, 1))
	var declared, edges int
	out := map[uint64]int{}
	in := map[uint64]int{}
	for _, l := range ls {
		if strings.HasPrefix(l, "#") {
			if _, err := fmt.Sscanf(l, "# Nodes: %d Edges:", &declared); err == nil && declared == 0 {
				t.Fatalf("header %q", l)
			}
			continue
		}
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("edge line %q", l)
		}
		src, err1 := strconv.ParseUint(f[0], 10, 64)
		dst, err2 := strconv.ParseUint(f[1], 10, 64)
		if err1 != nil || err2 != nil || src == dst {
			t.Fatalf("edge line %q: not two distinct page numbers", l)
		}
		out[src]++
		in[dst]++
		in[src] += 0
		edges++
	}
	if edges != records {
		t.Fatalf("%d edges, want %d", edges, records)
	}
	if len(in) != declared {
		t.Errorf("%d pages appear, header says %d", len(in), declared)
	}
	dangling, maxOut := 0, 0
	for p := range in {
		if out[p] == 0 {
			dangling++
			if in[p] == 0 {
				t.Errorf("dangling page %d has no in-links", p)
			}
		}
		maxOut = max(maxOut, out[p])
	}
	if d := float64(dangling) / float64(len(in)); d < 0.07 || d > 0.13 {
		t.Errorf("%.1f%% of pages are dangling, want about 10%%", 100*d)
	}
	if mean := float64(edges) / float64(len(out)); float64(maxOut) < 20*mean {
		t.Errorf("largest out-degree %d, mean %.1f: not a power law", maxOut, mean)
	}
}

func TestGenSort(t *testing.T) {
	const records = 10_000
	data := generate(t, "sort", records, 1)
	if len(data) != records*SortRecordSize {
		t.Fatalf("%d bytes, want %d", len(data), records*SortRecordSize)
	}
	keys := map[string]bool{}
	for i := range records {
		rec := data[i*SortRecordSize : (i+1)*SortRecordSize]
		num := fmt.Sprintf("%032X", i)
		if !bytes.Equal(rec[10:12], []byte{0x00, 0x11}) || string(rec[12:44]) != num ||
			!bytes.Equal(rec[44:48], []byte{0x88, 0x99, 0xAA, 0xBB}) || !bytes.Equal(rec[96:], []byte{0xCC, 0xDD, 0xEE, 0xFF}) {
			t.Fatalf("record %d is not in gensort's layout: %q", i, rec)
		}
		for _, c := range rec[48:96] {
			if c < 'A' || c > 'Z' {
				t.Fatalf("record %d: filler %q is not letters", i, rec[48:96])
			}
		}
		keys[string(rec[:SortKeySize])] = true
	}
	if len(keys) != records {
		t.Errorf("%d distinct keys in %d records", len(keys), records)
	}
	n, _, err := RecordsDigest(bytes.NewReader(data))
	if err != nil || n != records {
		t.Errorf("RecordsDigest: %d records, %v", n, err)
	}
}

func TestAliasTable(t *testing.T) {
	weights := []float64{1, 2, 3, 4, 0, 10}
	tab := newAliasTable(weights)
	rng := newRand(1, 1)
	const n = 400_000
	counts := make([]float64, len(weights))
	for range n {
		counts[tab.sample(rng)]++
	}
	for k, w := range weights {
		want := w / 20 * n
		if math.Abs(counts[k]-want) > 5*math.Sqrt(want)+1 {
			t.Errorf("value %d drawn %v times, want about %v", k, counts[k], want)
		}
	}
}

// TestGenBoundedMemory checks that a generator's allocations do not grow
// with the number of records.
func TestGenBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	for _, kind := range GenKinds() {
		small := testing.AllocsPerRun(1, func() { Generate(kind, discard{}, 1000, 1) })
		large := testing.AllocsPerRun(1, func() { Generate(kind, discard{}, 200_000, 1) })
		if large > small+100 {
			t.Errorf("%s: %v allocations for 1000 records, %v for 200000", kind, small, large)
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
