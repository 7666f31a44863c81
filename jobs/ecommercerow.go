package jobs

import (
	"encoding/csv"
	"errors"
	"strconv"
	"strings"
	"time"
)

// EcommerceHeader is the first line of an ecommerce input file.
const EcommerceHeader = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session"

// EcommerceTimeLayout is the layout of event_time, in time.Parse terms.
const EcommerceTimeLayout = "2006-01-02 15:04:05 UTC"

// ecommerceFields is the number of columns of a row.
const ecommerceFields = 9

// Column indexes of a row.
const (
	colEventTime = iota
	colEventType
	colProductID
	colCategoryID
	colCategoryCode
	colBrand
	colPrice
	colUserID
	colUserSession
)

// EventPurchase is the event_type the ecommerce job keeps.
const EventPurchase = "purchase"

// ErrNotEvent is returned by ParseEcommerceLine for a line that is neither
// an event nor malformed: an empty line or the header. Such lines are
// skipped and not counted as bad.
var ErrNotEvent = errors.New("jobs: not an event row")

// ErrMalformedRow is wrapped by every *MalformedRowError.
var ErrMalformedRow = errors.New("jobs: malformed ecommerce row")

// MalformedRowError says why a row is malformed. It wraps ErrMalformedRow.
type MalformedRowError struct {
	Reason string
}

func (e *MalformedRowError) Error() string { return "jobs: malformed ecommerce row: " + e.Reason }
func (e *MalformedRowError) Unwrap() error { return ErrMalformedRow }

func malformed(reason string) error { return &MalformedRowError{Reason: reason} }

// EcommerceEvent is one parsed row. Strings alias the parsed line.
type EcommerceEvent struct {
	// Time is event_time in Unix seconds.
	Time int64
	// EventTime is event_time as in the input without the " UTC" suffix,
	// e.g. "2019-10-01 00:00:00". The rules make it canonical, so for
	// years 0000-9999 its byte order is its time order.
	EventTime string
	Type      string
	// UserID and PriceCents are parsed for purchases only (zero otherwise).
	UserID     int64
	PriceCents int64
	Session    string
}

// ParseEcommerceLine parses one line of an ecommerce file: the text between
// two "\n", without them; one trailing "\r" is removed. It returns
// ErrNotEvent for an empty line and for the header line (a line equal to
// EcommerceHeader), which are skipped wherever they occur. Otherwise the
// line is one CSV record, parsed as encoding/csv does with the default
// settings (',' separator, LazyQuotes false, no comment character) and
// FieldsPerRecord = -1, and handed to ParseEcommerceRow. A line that
// encoding/csv rejects (a bare or unterminated quote) is malformed.
// Quoted fields cannot span lines.
func ParseEcommerceLine(line string) (EcommerceEvent, error) {
	line = strings.TrimSuffix(line, "\r")
	if line == "" || line == EcommerceHeader {
		return EcommerceEvent{}, ErrNotEvent
	}
	if strings.IndexByte(line, '"') < 0 {
		// Without quotes encoding/csv splits on every comma and nothing
		// else: do that without allocating.
		if n := strings.Count(line, ",") + 1; n != ecommerceFields {
			return EcommerceEvent{}, malformed(fieldCountReason(n))
		}
		var fields [ecommerceFields]string
		rest := line
		for i := range ecommerceFields - 1 {
			fields[i], rest, _ = strings.Cut(rest, ",")
		}
		fields[ecommerceFields-1] = rest
		return ParseEcommerceRow(fields[:])
	}
	r := csv.NewReader(strings.NewReader(line))
	r.FieldsPerRecord = -1
	fields, err := r.Read()
	if err != nil {
		return EcommerceEvent{}, malformed("csv: " + err.Error())
	}
	return ParseEcommerceRow(fields)
}

func fieldCountReason(n int) string {
	return "has " + strconv.Itoa(n) + " fields, want 9"
}

// ParseEcommerceRow applies the ecommerce job's rules to the fields of one
// CSV record. A row is malformed (the error wraps ErrMalformedRow) when
//
//   - it does not have exactly 9 fields; or
//   - event_time does not parse with time.Parse(EcommerceTimeLayout, s), or
//     is not in canonical form (t.Format(EcommerceTimeLayout) != s: two
//     digits for every field but the four-digit year, nothing around it);
//
// and, for purchases (event_type exactly "purchase") only, when
//
//   - price is not a decimal of 1 to 12 digits, optionally followed by a
//     '.' and 1 or 2 digits (no sign, exponent or white space): "35.79",
//     "7.5", "12" and "0.00" are prices, "-1", "1e3", ".5", "5." and
//     "35.799" are not; or
//   - user_id does not parse with strconv.ParseInt(s, 10, 64).
//
// Other fields are not checked. Prices are exact integer cents ("7.5" is
// 750), so sums do not depend on the order of addition.
func ParseEcommerceRow(fields []string) (EcommerceEvent, error) {
	if len(fields) != ecommerceFields {
		return EcommerceEvent{}, malformed(fieldCountReason(len(fields)))
	}
	ev := EcommerceEvent{Type: fields[colEventType], Session: fields[colUserSession]}
	ts := fields[colEventTime]
	t, err := time.Parse(EcommerceTimeLayout, ts)
	if err != nil {
		return EcommerceEvent{}, malformed("event_time " + strconv.Quote(ts) + " is not " + EcommerceTimeLayout)
	}
	var canon [len(EcommerceTimeLayout) + 8]byte
	if string(t.AppendFormat(canon[:0], EcommerceTimeLayout)) != ts {
		return EcommerceEvent{}, malformed("event_time " + strconv.Quote(ts) + " is not in canonical form")
	}
	ev.Time = t.Unix()
	ev.EventTime = ts[:len(ts)-len(" UTC")]
	if ev.Type != EventPurchase {
		return ev, nil
	}
	cents, ok := ParsePriceCents(fields[colPrice])
	if !ok {
		return EcommerceEvent{}, malformed("price " + strconv.Quote(fields[colPrice]) + " is not a price")
	}
	user, err := strconv.ParseInt(fields[colUserID], 10, 64)
	if err != nil {
		return EcommerceEvent{}, malformed("user_id " + strconv.Quote(fields[colUserID]) + " is not an integer")
	}
	ev.PriceCents, ev.UserID = cents, user
	return ev, nil
}

// ParsePriceCents parses a price as ParseEcommerceRow defines it and
// returns it in cents.
func ParsePriceCents(s string) (int64, bool) {
	whole, frac, dot := strings.Cut(s, ".")
	if len(whole) < 1 || len(whole) > 12 || dot && (len(frac) < 1 || len(frac) > 2) {
		return 0, false
	}
	var cents int64
	for i := 0; i < len(whole); i++ {
		c := whole[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		cents = cents*10 + int64(c-'0')
	}
	for i := range 2 {
		cents *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			cents += int64(c - '0')
		}
	}
	return cents, true
}

// AppendCents appends cents as a decimal with exactly two decimals:
// 3579 is "35.79", 5 is "0.05", -5 is "-0.05".
func AppendCents(b []byte, cents int64) []byte {
	u := uint64(cents)
	if cents < 0 {
		b = append(b, '-')
		u = -u
	}
	b = strconv.AppendUint(b, u/100, 10)
	return append(b, '.', byte('0'+u%100/10), byte('0'+u%10))
}
