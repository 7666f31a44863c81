package jobs

import (
	"bytes"
	"encoding/csv"
	"errors"
	"strings"
	"testing"
)

const goodRow = "2019-10-01 00:00:00 UTC,purchase,44600062,2103807459595387724,,shiseido,35.79,541312140,72d76fde-8bb3-4e00-8c23-a032dfed738c"

func TestParseEcommerceLine(t *testing.T) {
	replace := func(col int, v string) string {
		f := strings.Split(goodRow, ",")
		f[col] = v
		return strings.Join(f, ",")
	}
	view := replace(colEventType, "view")
	viewWith := func(col int, v string) string {
		f := strings.Split(view, ",")
		f[col] = v
		return strings.Join(f, ",")
	}
	for _, tc := range []struct {
		name, line string
		want       string // "ok", "skip" or "bad"
	}{
		{"purchase", goodRow, "ok"},
		{"crlf", goodRow + "\r", "ok"},
		{"view", view, "ok"},
		{"empty line", "", "skip"},
		{"cr only", "\r", "skip"},
		{"header", EcommerceHeader, "skip"},
		{"header crlf", EcommerceHeader + "\r", "skip"},
		{"quoted fields", `"2019-10-01 00:00:00 UTC",purchase,1,2,"a,b","x""y",35.79,541312140,s`, "ok"},
		{"8 fields", goodRow[:strings.LastIndexByte(goodRow, ',')], "bad"},
		{"10 fields", goodRow + ",", "bad"},
		{"10 fields quoted", goodRow + `,"x"`, "bad"},
		{"one field", "   ", "bad"},
		{"bare quote", replace(colBrand, `shi"seido`), "bad"},
		{"unterminated quote", replace(colBrand, `"shiseido`), "bad"},
		{"day 32", replace(colEventTime, "2019-10-32 00:00:00 UTC"), "bad"},
		{"no UTC", replace(colEventTime, "2019-10-01 00:00:00"), "bad"},
		{"ISO", replace(colEventTime, "2019-10-01T00:00:00Z"), "bad"},
		{"one-digit hour", replace(colEventTime, "2019-10-01 0:00:00 UTC"), "bad"},
		{"bad time on a view", viewWith(colEventTime, "yesterday"), "bad"},
		{"price N/A", replace(colPrice, "N/A"), "bad"},
		{"price 3 decimals", replace(colPrice, "35.799"), "bad"},
		{"price negative", replace(colPrice, "-1.00"), "bad"},
		{"price empty", replace(colPrice, ""), "bad"},
		{"price on a view is not checked", viewWith(colPrice, "N/A"), "ok"},
		{"user_id text", replace(colUserID, "user42"), "bad"},
		{"user_id float", replace(colUserID, "5.4e8"), "bad"},
		{"user_id on a view is not checked", viewWith(colUserID, ""), "ok"},
		{"other type", replace(colEventType, "Purchase"), "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseEcommerceLine(tc.line)
			got := "ok"
			switch {
			case errors.Is(err, ErrNotEvent):
				got = "skip"
			case errors.Is(err, ErrMalformedRow):
				got = "bad"
			case err != nil:
				t.Fatalf("error %v wraps neither ErrNotEvent nor ErrMalformedRow", err)
			}
			if got != tc.want {
				t.Errorf("ParseEcommerceLine(%q): %s (%v), want %s", tc.line, got, err, tc.want)
			}
		})
	}

	ev, err := ParseEcommerceLine(goodRow)
	want := EcommerceEvent{Time: 1569888000, EventTime: "2019-10-01 00:00:00", Type: "purchase",
		UserID: 541312140, PriceCents: 3579, Session: "72d76fde-8bb3-4e00-8c23-a032dfed738c"}
	if err != nil || ev != want {
		t.Errorf("ParseEcommerceLine(goodRow) = %+v, %v; want %+v", ev, err, want)
	}
}

func TestParsePriceCents(t *testing.T) {
	for _, tc := range []struct {
		in    string
		cents int64
		ok    bool
	}{
		{"35.79", 3579, true}, {"7.5", 750, true}, {"12", 1200, true}, {"0.00", 0, true},
		{"0.05", 5, true}, {"007.10", 710, true}, {"999999999999.99", 99999999999999, true},
		{"1000000000000", 0, false}, {"", 0, false}, {".5", 0, false}, {"5.", 0, false},
		{"35.799", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"1e3", 0, false},
		{" 1", 0, false}, {"1.2.3", 0, false}, {"1,5", 0, false}, {"1.x", 0, false},
	} {
		cents, ok := ParsePriceCents(tc.in)
		if cents != tc.cents || ok != tc.ok {
			t.Errorf("ParsePriceCents(%q) = %d, %v; want %d, %v", tc.in, cents, ok, tc.cents, tc.ok)
		}
	}
}

func TestAppendCents(t *testing.T) {
	for cents, want := range map[int64]string{0: "0.00", 5: "0.05", 50: "0.50", 3579: "35.79", 123456: "1234.56", -5: "-0.05", -12345: "-123.45"} {
		if got := string(AppendCents(nil, cents)); got != want {
			t.Errorf("AppendCents(%d) = %q, want %q", cents, got, want)
		}
	}
}

// TestParseEcommerceLineMatchesCSV checks that the comma-splitting fast
// path agrees with encoding/csv on the generator's rows and edge cases.
func TestParseEcommerceLineMatchesCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := GenEcommerce(&buf, 50_000, 3); err != nil {
		t.Fatal(err)
	}
	ls := append(lines(buf.Bytes()), ",,,,,,,,", ",,,,,,,,,", "a", goodRow+",", ","+goodRow)
	for _, l := range ls {
		got, gotErr := ParseEcommerceLine(l)
		if errors.Is(gotErr, ErrNotEvent) {
			continue
		}
		r := csv.NewReader(strings.NewReader(l))
		r.FieldsPerRecord = -1
		var want EcommerceEvent
		fields, wantErr := r.Read()
		if wantErr == nil {
			want, wantErr = ParseEcommerceRow(fields)
		}
		if got != want || (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("line %q: fast path %+v, %v; encoding/csv %+v, %v", l, got, gotErr, want, wantErr)
		}
	}
}

func BenchmarkParseEcommerceLine(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(goodRow)))
	for b.Loop() {
		if _, err := ParseEcommerceLine(goodRow); err != nil {
			b.Fatal(err)
		}
	}
}
