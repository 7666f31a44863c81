package jobs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"shoal/client"
)

// EcommerceStats is what the ecommerce job reports besides its output.
type EcommerceStats struct {
	BadRows   int64 // rows that did not parse (ParseEcommerceLine), skipped
	Purchases int64 // purchases counted (EcommerceCached only)
}

// Ecommerce keeps the purchases of the CSV at input, groups them by
// user_session and writes, per session, "session<TAB>max event_time<TAB>
// distinct user_ids ascending, comma-separated<TAB>count<TAB>sum of
// price" (RefEcommerce is the same computation in one process). Rows that
// do not parse are counted and skipped; with strict, the first one fails
// the job.
func Ecommerce(ctx context.Context, c *client.Context, input, output string, parts int, strict bool) (EcommerceStats, error) {
	return ecommerce(ctx, c, input, output, parts, strict, nil)
}

// EcommerceCached is the block store's experiment: the purchases are
// persisted at level, counted (one job, which computes and stores them),
// then grouped by session as Ecommerce does (a second job, which reads
// them from the cache), and unpersisted.
func EcommerceCached(ctx context.Context, c *client.Context, input, output string, parts int, strict bool, level client.StorageLevel) (EcommerceStats, error) {
	return ecommerce(ctx, c, input, output, parts, strict, func(r *client.RDD[client.KV[string, SessionAgg]]) func() {
		r.Persist(level)
		return func() { r.Unpersist(context.WithoutCancel(ctx)) }
	})
}

// EcommerceCheckpointed is EcommerceCached with the purchases
// checkpointed (the context needs a CheckpointDir) instead of persisted:
// the count writes them, the group-by reads them from the store.
func EcommerceCheckpointed(ctx context.Context, c *client.Context, input, output string, parts int, strict bool) (EcommerceStats, error) {
	return ecommerce(ctx, c, input, output, parts, strict, func(r *client.RDD[client.KV[string, SessionAgg]]) func() {
		r.Checkpoint()
		return func() {}
	})
}

// ecommerce runs the job; with keep, the purchases are marked by it
// (persisted or checkpointed) and counted first, and what it returns is
// called at the end.
func ecommerce(ctx context.Context, c *client.Context, input, output string, parts int, strict bool, keep func(*client.RDD[client.KV[string, SessionAgg]]) func()) (EcommerceStats, error) {
	var st EcommerceStats
	bad := c.NewAccumulator("bad rows")
	purchases := Purchases(c, input, parts, bad, strict)
	if keep != nil {
		defer keep(purchases)()
		n, err := client.Count(ctx, purchases)
		if err != nil {
			return st, err
		}
		// Counted now: the count computed every partition once. A
		// partition computed again later (a block lost) counts again.
		st.Purchases, st.BadRows = n, c.Value(bad)
	}
	sessions := client.ReduceByKey(purchases, mergeSessions, parts).SetName("sessions")
	err := client.SaveAsTextFile(ctx, client.Map(sessions, formatSession), output)
	if keep == nil {
		st.BadRows = c.Value(bad)
	}
	return st, err
}

// Purchases is the ecommerce job's first step: the purchase rows of the
// CSV at input, keyed by session. Malformed rows are counted in bad, or
// with strict fail the task.
func Purchases(c *client.Context, input string, parts int, bad client.Accumulator, strict bool) *client.RDD[client.KV[string, SessionAgg]] {
	lines := client.TextFile(c, input, parts)
	return client.FlatMapWith[string, client.KV[string, SessionAgg]](lines, parsePurchases{Bad: bad, Strict: strict}).SetName("purchases")
}

// parsePurchases parses a line and emits it keyed by session if it is a
// purchase; malformed rows are counted in Bad (or fail the task if Strict).
type parsePurchases struct {
	Bad    client.Accumulator
	Strict bool
}

func (p parsePurchases) FlatMap(line string, emit func(client.KV[string, SessionAgg])) {
	ev, err := ParseEcommerceLine(line)
	switch {
	case errors.Is(err, ErrNotEvent):
		return
	case err != nil:
		if p.Strict {
			panic(fmt.Errorf("--strict: %w in row %s", err, quoteShort(line)))
		}
		p.Bad.Add(1)
		return
	case ev.Type != EventPurchase:
		return
	}
	emit(client.KV[string, SessionAgg]{Key: ev.Session, Value: SessionAgg{
		MaxTime: ev.Time, MaxText: ev.EventTime, Users: []int64{ev.UserID}, Count: 1, Cents: ev.PriceCents,
	}})
}

// SessionAgg is the running aggregate of a session's purchases. It brings
// its own codec (AppendRecord, DecodeRecord) so that the shuffle does not
// fall back to gob.
type SessionAgg struct {
	MaxTime int64
	MaxText string
	Users   []int64 // ascending, distinct
	Count   int64
	Cents   int64
}

func mergeSessions(a, b SessionAgg) SessionAgg {
	if b.MaxTime > a.MaxTime {
		a.MaxTime, a.MaxText = b.MaxTime, b.MaxText
	}
	users := make([]int64, 0, len(a.Users)+len(b.Users))
	users = append(append(users, a.Users...), b.Users...)
	slices.Sort(users)
	a.Users = slices.Compact(users)
	a.Count += b.Count
	a.Cents += b.Cents
	return a
}

func formatSession(kv client.KV[string, SessionAgg]) string {
	s := kv.Value
	b := make([]byte, 0, 96)
	b = append(b, kv.Key...)
	b = append(b, '\t')
	b = append(b, s.MaxText...)
	b = append(b, '\t')
	for i, u := range s.Users {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, u, 10)
	}
	b = append(b, '\t')
	b = strconv.AppendInt(b, s.Count, 10)
	b = append(b, '\t')
	b = AppendCents(b, s.Cents)
	return string(b)
}

// AppendRecord encodes s: varints of MaxTime, len(MaxText), MaxText,
// len(Users), Users..., Count, Cents.
func (s SessionAgg) AppendRecord(b []byte) []byte {
	b = binary.AppendVarint(b, s.MaxTime)
	b = binary.AppendUvarint(b, uint64(len(s.MaxText)))
	b = append(b, s.MaxText...)
	b = binary.AppendUvarint(b, uint64(len(s.Users)))
	for _, u := range s.Users {
		b = binary.AppendVarint(b, u)
	}
	b = binary.AppendVarint(b, s.Count)
	return binary.AppendVarint(b, s.Cents)
}

// DecodeRecord decodes what AppendRecord wrote.
func (s *SessionAgg) DecodeRecord(b []byte) error {
	r := recordReader{b: b}
	s.MaxTime = r.varint()
	s.MaxText = string(r.bytes())
	s.Users = make([]int64, min(r.uvarint(), uint64(len(r.b))))
	for i := range s.Users {
		s.Users[i] = r.varint()
	}
	s.Count = r.varint()
	s.Cents = r.varint()
	if r.err == nil && len(r.b) != 0 {
		r.err = errBadRecord
	}
	return r.err
}

var errBadRecord = errors.New("jobs: malformed SessionAgg record")

// recordReader reads varints and length-prefixed bytes, remembering the
// first error.
type recordReader struct {
	b   []byte
	err error
}

func (r *recordReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = errBadRecord, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errBadRecord, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err, r.b = errBadRecord, nil
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}
