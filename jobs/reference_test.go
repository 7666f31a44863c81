package jobs

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRefWordCount(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"empty", "", []string{}},
		{"blank lines", "\n\n \t \n", []string{}},
		{"tabs, runs, case, no final newline", "the cat\tthe  dog\n\n \t \nThe cat\n  cat",
			[]string{"The\t1", "cat\t3", "dog\t1", "the\t2"}},
		{"crlf and unicode", "héllo wörld\r\nhéllo\u00a0wörld\r\n", []string{"héllo\t2", "wörld\t2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RefWordCount(strings.NewReader(tc.in))
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("RefWordCount(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestRefEcommerce(t *testing.T) {
	in := EcommerceHeader + "\n" +
		"2019-10-01 10:00:00 UTC,purchase,1,2,,,10.50,200,S1\n" +
		"2019-10-01 09:00:00 UTC,purchase,1,2,,brand,5,100,S1\n" + // earlier; smaller user
		"2019-10-01 11:00:00 UTC,view,1,2,,,99.99,300,S1\n" + // later, but a view
		"2019-10-02 00:00:00 UTC,purchase,1,2,a.b,,0.01,200,S1\r\n" + // the latest; user 200 again
		"2019-10-01 08:00:00 UTC,purchase,1,2,,,1.1,1000,S0\n" +
		"2019-10-01 08:00:00 UTC,purchase,1,2,,,1.1,99,S0\n" + // 99 < 1000 numerically, not as text
		"2019-10-01 08:00:00 UTC,purchase,1,2,,,abc,5,S2\n" + // bad price
		"2019-10-01 08:00:00 UTC,cart,1,2,,,,5\n" + // 8 fields
		"\n" +
		EcommerceHeader + "\n" + // a second header, as in concatenated files
		"2019-10-01 08:00:00 UTC,view,1,2,,,,,S3\n" + // views only: no output
		"2019-10-03 00:00:00 UTC,purchase,1,2,,,2.00,7,S2" // no final newline
	got, bad, err := RefEcommerce(strings.NewReader(in))
	want := []string{
		"S0\t2019-10-01 08:00:00\t99,1000\t2\t2.20",
		"S1\t2019-10-02 00:00:00\t100,200\t3\t15.51",
		"S2\t2019-10-03 00:00:00\t7\t1\t2.00",
	}
	if err != nil || bad != 2 || !slices.Equal(got, want) {
		t.Errorf("RefEcommerce = %q, %d bad, %v\nwant %q, 2 bad", got, bad, err, want)
	}
}

func TestRefEcommerceExactSums(t *testing.T) {
	// In float64, 0.1+0.2 is not 0.3, and a thousand 0.01s are not 10.00.
	var b strings.Builder
	for range 1000 {
		b.WriteString("2019-10-01 00:00:00 UTC,purchase,1,2,,,0.01,1,s\n")
	}
	b.WriteString("2019-10-01 00:00:00 UTC,purchase,1,2,,,0.1,1,t\n2019-10-01 00:00:00 UTC,purchase,1,2,,,0.2,1,t\n")
	got, _, err := RefEcommerce(strings.NewReader(b.String()))
	want := []string{"s\t2019-10-01 00:00:00\t1\t1000\t10.00", "t\t2019-10-01 00:00:00\t1\t2\t0.30"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("RefEcommerce = %q, %v; want %q", got, err, want)
	}
}

// The 3-page graph A->B, A->C, B->C with C dangling.
const threePages = "# a comment\n  # an indented comment\nA B\nA\tC\n\nB  C\n"

func TestRefPageRankOneStep(t *testing.T) {
	// Ranks start at 1/3; C's 1/3 is dangling mass spread as 1/9 each.
	// A gets no links, B gets A/2 = 1/6, C gets A/2 + B = 1/2.
	const d = 0.85
	want := map[string]float64{
		"A": (1-d)/3 + d*(1.0/9),
		"B": (1-d)/3 + d*(1.0/9+1.0/6),
		"C": (1-d)/3 + d*(1.0/9+1.0/2),
	}
	checkRanks(t, threePages, 1, want, 1e-15)
	checkRanks(t, threePages, 0, map[string]float64{"A": 1.0 / 3, "B": 1.0 / 3, "C": 1.0 / 3}, 0)
}

func TestRefPageRankFixedPoint(t *testing.T) {
	// At the fixed point, with a+b+c = 1 and d = 0.85:
	//   a = 0.15/3 + 0.85*c/3       (c is dangling)
	//   b = a + 0.85*a/2            = 1.425 a
	//   c = a + 0.85*(a/2 + b)      = 2.63625 a
	// so a = 1/(1 + 1.425 + 2.63625) = 1/5.06125 (and indeed
	// 0.05 + 0.85*2.63625a/3 = a). 200 steps shrink the error by 0.85^200.
	a := 1 / 5.06125
	want := map[string]float64{"A": a, "B": 1.425 * a, "C": 2.63625 * a}
	checkRanks(t, threePages, 200, want, 1e-12)
}

func TestRefPageRankMultiEdgesAndSelfLinks(t *testing.T) {
	// 1->2 twice and 1->3 once: 2 gets two thirds of 1's rank. 3->3 is a
	// self-link, so 3 is not dangling. 4 is dangling.
	const in = "1 2\n1 2\n1 3\n3 3\n2 4\n"
	const d = 0.85
	q := 0.25
	base := (1-d)/4 + d*q/4 // 4's rank is the dangling mass
	want := map[string]float64{
		"1": base,
		"2": base + d*(2*q/3),
		"3": base + d*(q/3+q),
		"4": base + d*q,
	}
	checkRanks(t, in, 1, want, 1e-15)
}

func TestRefPageRankBadLine(t *testing.T) {
	if _, err := RefPageRank(strings.NewReader("1 2\n1 2 3\n"), 1); err == nil {
		t.Error("a line of three fields was accepted")
	}
}

func checkRanks(t *testing.T, in string, iterations int, want map[string]float64, tol float64) {
	t.Helper()
	got, err := RefPageRank(strings.NewReader(in), iterations)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d pages %v, want %d", len(got), got, len(want))
	}
	sum := 0.0
	for p, w := range want {
		if math.Abs(got[p]-w) > tol {
			t.Errorf("after %d steps rank(%s) = %.17g, want %.17g", iterations, p, got[p], w)
		}
		sum += got[p]
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Errorf("ranks sum to %.17g, want 1", sum)
	}
}

func TestRefPageRankGenerated(t *testing.T) {
	var buf bytes.Buffer
	if err := GenGraph(&buf, 50_000, 2); err != nil {
		t.Fatal(err)
	}
	ranks, err := RefPageRank(&buf, 20)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, r := range ranks {
		sum += r
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("ranks of %d pages sum to %.17g, want 1", len(ranks), sum)
	}
}

// record returns a gensort record with the given key prefix.
func record(key string) []byte {
	rec := make([]byte, SortRecordSize)
	copy(rec, key)
	return rec
}

func writeParts(t *testing.T, parts ...[][]byte) []string {
	t.Helper()
	dir := t.TempDir()
	var names []string
	for i, recs := range parts {
		name := filepath.Join(dir, "part-"+string(rune('0'+i)))
		if err := os.WriteFile(name, bytes.Join(recs, nil), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}

func TestCheckSorted(t *testing.T) {
	r := record
	for _, tc := range []struct {
		name    string
		parts   [][][]byte
		records int64
		ok      bool
	}{
		{"sorted across parts", [][][]byte{{r("a"), r("b")}, {}, {r("b"), r("c\xff")}}, 4, true},
		{"no parts", nil, 0, true},
		{"unsorted within a part", [][][]byte{{r("b"), r("a")}}, 1, false},
		{"unsorted across parts", [][][]byte{{r("a"), r("c")}, {}, {r("b")}}, 2, false},
		{"key is 10 bytes only", [][][]byte{{r("0123456789z"), r("0123456789a")}}, 2, true},
		{"partial record", [][][]byte{{r("a"), []byte("short")}}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := CheckSorted(writeParts(t, tc.parts...))
			if n != tc.records || (err == nil) != tc.ok {
				t.Errorf("CheckSorted = %d, %v; want %d records, ok=%v", n, err, tc.records, tc.ok)
			}
		})
	}
}

func TestCheckSortedGenerated(t *testing.T) {
	var buf bytes.Buffer
	if err := GenSort(&buf, 1000, 1); err != nil {
		t.Fatal(err)
	}
	recs := make([][]byte, 0, 1000)
	for rec := range slices.Chunk(buf.Bytes(), SortRecordSize) {
		recs = append(recs, rec)
	}
	if _, err := CheckSorted(writeParts(t, recs)); err == nil {
		t.Error("random records passed as sorted")
	}
	sorted := slices.Clone(recs)
	slices.SortFunc(sorted, func(a, b []byte) int { return bytes.Compare(a[:SortKeySize], b[:SortKeySize]) })
	n, err := CheckSorted(writeParts(t, sorted[:300], sorted[300:301], sorted[301:]))
	if n != 1000 || err != nil {
		t.Errorf("CheckSorted(sorted) = %d, %v", n, err)
	}
	n1, sum1, err1 := RecordsDigest(bytes.NewReader(buf.Bytes()))
	n2, sum2, err2 := RecordsDigest(bytes.NewReader(bytes.Join(sorted, nil)))
	if n1 != 1000 || n1 != n2 || sum1 != sum2 || err1 != nil || err2 != nil {
		t.Errorf("digests of the same records in two orders: %d %x %v, %d %x %v", n1, sum1, err1, n2, sum2, err2)
	}
	sorted[5] = slices.Clone(sorted[5])
	sorted[5][50] ^= 1
	if _, sum3, _ := RecordsDigest(bytes.NewReader(bytes.Join(sorted, nil))); sum3 == sum1 {
		t.Error("a changed record leaves the digest equal")
	}
	if _, _, err := RecordsDigest(bytes.NewReader(buf.Bytes()[:150])); err == nil {
		t.Error("RecordsDigest accepted a partial record")
	}
}
