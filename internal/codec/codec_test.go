package codec

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

type (
	userID int64
	name   string
	blob   []byte
)

// kv is the kind of pair the engine shuffles.
type kv struct {
	Key   string
	Value int64
}

func splitKV(p kv) (string, int64) { return p.Key, p.Value }
func joinKV(k string, v int64) kv  { return kv{k, v} }

func kvCodec() Codec[kv] {
	return Tuple2(must(For[string]()), must(For[int64]()), splitKV, joinKV)
}

// point brings its own codec.
type point struct{ X, Y int32 }

func (p point) AppendRecord(dst []byte) []byte {
	return append(dst, byte(p.X), byte(p.Y))
}

func (p *point) DecodeRecord(src []byte) error {
	if len(src) != 2 {
		return fmt.Errorf("point is 2 bytes, not %d", len(src))
	}
	p.X, p.Y = int32(src[0]), int32(src[1])
	return nil
}

// gobbed has no codec of its own and no built-in.
type gobbed struct {
	Name string
	Tags map[string]int
	Next *gobbed
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// roundTrip checks that each value decodes back to itself, and that the
// result does not alias the buffer it was decoded from.
func roundTrip[T any](c Codec[T], equal func(a, b T) bool, vals ...T) func(*testing.T) {
	return func(t *testing.T) {
		for _, v := range vals {
			enc := c.Append([]byte("prefix"), v)[len("prefix"):]
			got, err := c.Decode(enc)
			if err != nil {
				t.Fatalf("Decode(Append(%v)) = %v", v, err)
			}
			for i := range enc {
				enc[i] = 0xA5 // the caller reuses the buffer
			}
			if !equal(got, v) {
				t.Fatalf("%v came back as %v", v, got)
			}
		}
	}
}

func deepEqual[T any](a, b T) bool { return reflect.DeepEqual(a, b) }

func TestRoundTrip(t *testing.T) {
	long := strings.Repeat("long string ", 2000) // longer than ownAlloc
	sameBits := func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }
	tests := []struct {
		name string
		run  func(*testing.T)
	}{
		{"string", roundTrip(must(For[string]()), deepEqual, "", "a", "héllo, 世界", long, strings.Repeat("x", 200))},
		{"[]byte", roundTrip(must(For[[]byte]()), deepEqual, nil, []byte{0}, []byte("abc"), []byte(long))},
		{"bool", roundTrip(must(For[bool]()), deepEqual, false, true)},
		{"int", roundTrip(must(For[int]()), deepEqual, 0, -1, 1, math.MinInt, math.MaxInt)},
		{"int32", roundTrip(must(For[int32]()), deepEqual, 0, -1, 1, math.MinInt32, math.MaxInt32)},
		{"int64", roundTrip(must(For[int64]()), deepEqual, 0, -1, 1, math.MinInt64, math.MaxInt64)},
		{"uint32", roundTrip(must(For[uint32]()), deepEqual, 0, 1, math.MaxUint32)},
		{"uint64", roundTrip(must(For[uint64]()), deepEqual, 0, 1, math.MaxUint64)},
		{"float64", roundTrip(must(For[float64]()), sameBits, 0, math.Copysign(0, -1), 1.5, -1.5,
			math.Inf(1), math.Inf(-1), math.NaN(), -math.NaN(), math.SmallestNonzeroFloat64, math.MaxFloat64)},
		{"named int64", roundTrip(must(For[userID]()), deepEqual, -7, 7)},
		{"named string", roundTrip(must(For[name]()), deepEqual, "", "ada")},
		{"named []byte", roundTrip(must(For[blob]()), deepEqual, nil, blob("x"))},
		{"tuple", roundTrip(kvCodec(), deepEqual, kv{}, kv{"a", -1}, kv{strings.Repeat("k", 127), 1},
			kv{strings.Repeat("k", 128), 2}, kv{long, math.MaxInt64})},
		{"slice", roundTrip(SliceOf(must(For[string]())), deepEqual, nil, []string{""}, []string{"a", long, ""})},
		{"slice of tuples", roundTrip(SliceOf(kvCodec()), deepEqual, []kv{{"a", 1}, {"b", 2}})},
		{"[]string", roundTrip(must(For[[]string]()), deepEqual, nil, []string{""}, []string{"a", long, ""})},
		{"[]int64", roundTrip(must(For[[]int64]()), deepEqual, nil, []int64{0, -1, math.MinInt64, math.MaxInt64})},
		{"[]float64", roundTrip(must(For[[]float64]()), deepEqual, nil, []float64{0.5, -2, math.Inf(1)})},
		{"[]bool", roundTrip(must(For[[]bool]()), deepEqual, nil, []bool{true, false})},
		{"[]int, []int32, []uint32, []uint64", func(t *testing.T) {
			roundTrip(must(For[[]int]()), deepEqual, []int{math.MinInt, 3})(t)
			roundTrip(must(For[[]int32]()), deepEqual, []int32{math.MinInt32, 3})(t)
			roundTrip(must(For[[]uint32]()), deepEqual, []uint32{math.MaxUint32, 3})(t)
			roundTrip(must(For[[]uint64]()), deepEqual, []uint64{math.MaxUint64, 3})(t)
		}},
		{"named slice of named strings", roundTrip(must(For[names]()), deepEqual, nil, names{"ada", ""})},
		{"slice of records", roundTrip(must(For[[]point]()), deepEqual, []point{{1, 2}})},
		{"slice type with its own codec", roundTrip(must(For[points]()), deepEqual, points{{1, 2}, {3, 4}})},
		{"record", roundTrip(must(For[point]()), deepEqual, point{}, point{1, 2})},
		{"gob", roundTrip(must(For[gobbed]()), deepEqual, gobbed{Name: "a", Tags: map[string]int{"x": 1}, Next: &gobbed{Name: "b"}})},
		{"gob pointer", roundTrip(must(For[*gobbed]()), deepEqual, &gobbed{Name: "a"})},
		{"gob int8", roundTrip(must(For[int8]()), deepEqual, -128, 0, 127)},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// names is a named slice of named strings; points a slice type with its
// own codec (a count, then each point).
type names []name

type points []point

func (ps points) AppendRecord(dst []byte) []byte {
	dst = append(dst, byte(len(ps)))
	for _, p := range ps {
		dst = p.AppendRecord(dst)
	}
	return dst
}

func (ps *points) DecodeRecord(src []byte) error {
	if len(src) == 0 {
		return errors.New("empty")
	}
	*ps = nil
	for n, rest := int(src[0]), src[1:]; n > 0; n-- {
		if len(rest) < 2 {
			return errors.New("short")
		}
		var p point
		if err := p.DecodeRecord(rest[:2]); err != nil {
			return err
		}
		*ps, rest = append(*ps, p), rest[2:]
	}
	return nil
}

// TestFor checks which codec For picks.
func TestFor(t *testing.T) {
	tests := []struct {
		got  any
		want string
	}{
		{must(For[string]()), "codec.stringCodec"},
		{must(For[int64]()), "codec.int64Codec"},
		{must(For[userID]()), "codec.retyped[shoal/internal/codec.userID,int64]"},
		{must(For[point]()), "*codec.recordCodec[shoal/internal/codec.point]"},
		{must(For[gobbed]()), "codec.gobCodec[shoal/internal/codec.gobbed]"},
		{must(For[[]string]()), "codec.sliceCodec[string]"},
		{must(For[names]()), "codec.retyped[shoal/internal/codec.names,[]string]"},
		// Slices of elements with a codec of their own, or of other
		// kinds, stay with gob; so does a slice type with its own codec.
		{must(For[[]point]()), "codec.gobCodec[[]shoal/internal/codec.point]"},
		{must(For[[]int8]()), "codec.gobCodec[[]int8]"},
		{must(For[[][]string]()), "codec.gobCodec[[][]string]"},
		{must(For[points]()), "*codec.recordCodec[shoal/internal/codec.points]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprintf("%T", tt.got); got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
	}
}

func TestForRejects(t *testing.T) {
	type hidden struct{ x int }
	tests := []struct {
		name string
		err  error
	}{
		{"func", errOf(For[func()]())},
		{"chan", errOf(For[chan int]())},
		{"interface", errOf(For[any]())},
		{"no exported fields", errOf(For[hidden]())},
	}
	for _, tt := range tests {
		if tt.err == nil {
			t.Errorf("%s: For succeeded", tt.name)
			continue
		}
		t.Logf("%s: %v", tt.name, tt.err)
	}
}

func errOf[T any](_ T, err error) error { return err }

// checkOrder checks that encodings sort as their values do.
func checkOrder[T cmp.Ordered](c Codec[T], gen func(r *rand.Rand) T) func(*testing.T) {
	return func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for range 10000 {
			a, b := gen(r), gen(r)
			want := cmp.Compare(a, b)
			if want == 0 {
				continue // includes -0 == +0, which encode differently
			}
			if got := bytes.Compare(c.Append(nil, a), c.Append(nil, b)); got != want {
				t.Fatalf("encodings of %v and %v compare %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestOrder(t *testing.T) {
	specials := []float64{math.Inf(-1), -math.MaxFloat64, -1, -math.SmallestNonzeroFloat64, 0,
		math.SmallestNonzeroFloat64, 1, math.MaxFloat64, math.Inf(1)}
	tests := []struct {
		name string
		run  func(*testing.T)
	}{
		{"int64", checkOrder(must(For[int64]()), func(r *rand.Rand) int64 { return int64(r.Uint64()) })},
		{"small int64", checkOrder(must(For[int64]()), func(r *rand.Rand) int64 { return r.Int64N(7) - 3 })},
		{"int", checkOrder(must(For[int]()), func(r *rand.Rand) int { return int(r.Uint64()) })},
		{"int32", checkOrder(must(For[int32]()), func(r *rand.Rand) int32 { return int32(r.Uint32()) })},
		{"uint32", checkOrder(must(For[uint32]()), func(r *rand.Rand) uint32 { return r.Uint32() })},
		{"uint64", checkOrder(must(For[uint64]()), func(r *rand.Rand) uint64 { return r.Uint64() })},
		{"float64 bits", checkOrder(must(For[float64]()), func(r *rand.Rand) float64 {
			f := math.Float64frombits(r.Uint64())
			if math.IsNaN(f) {
				return 0
			}
			return f
		})},
		{"float64 normal", checkOrder(must(For[float64]()), func(r *rand.Rand) float64 { return r.NormFloat64() })},
		{"float64 specials", checkOrder(must(For[float64]()), func(r *rand.Rand) float64 { return specials[r.IntN(len(specials))] })},
		{"string", checkOrder(must(For[string]()), func(r *rand.Rand) string {
			b := make([]byte, r.IntN(4))
			for i := range b {
				b[i] = "a\x00\xffé"[r.IntN(5)]
			}
			return string(b)
		})},
		{"named", checkOrder(must(For[userID]()), func(r *rand.Rand) userID { return userID(r.Uint64()) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func TestTupleOrderWithFixedWidthFirst(t *testing.T) {
	type pair struct{ A, B int64 }
	i64 := must(For[int64]())
	c := Tuple2(i64, i64, func(p pair) (int64, int64) { return p.A, p.B }, func(a, b int64) pair { return pair{a, b} })
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		a := pair{r.Int64N(5) - 2, int64(r.Uint64())}
		b := pair{r.Int64N(5) - 2, int64(r.Uint64())}
		want := cmp.Or(cmp.Compare(a.A, b.A), cmp.Compare(a.B, b.B))
		if got := bytes.Compare(c.Append(nil, a), c.Append(nil, b)); got != want {
			t.Fatalf("encodings of %v and %v compare %d, want %d", a, b, got, want)
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	decode := func(c interface{ Decode([]byte) error }, src string) error { return c.Decode([]byte(src)) }
	tests := []struct {
		name string
		c    interface{ Decode([]byte) error }
		src  string
	}{
		{"int64 short", erase(must(For[int64]())), "1234567"},
		{"int64 long", erase(must(For[int64]())), "123456789"},
		{"int64 empty", erase(must(For[int64]())), ""},
		{"int32 short", erase(must(For[int32]())), "123"},
		{"uint32 long", erase(must(For[uint32]())), "12345"},
		{"float64 short", erase(must(For[float64]())), "1"},
		{"bool 2", erase(must(For[bool]())), "\x02"},
		{"bool empty", erase(must(For[bool]())), ""},
		{"tuple empty", erase(kvCodec()), ""},
		{"tuple truncated prefix", erase(kvCodec()), "\x80"},
		{"tuple overlong prefix", erase(kvCodec()), "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"},
		{"tuple prefix overruns", erase(kvCodec()), "\x05abc"},
		{"tuple huge prefix", erase(kvCodec()), "\xff\xff\xff\xff\xff\xff\xff\xff\x7f"},
		{"tuple bad second", erase(kvCodec()), "\x01a1234"},
		{"slice empty", erase(SliceOf(must(For[string]()))), ""},
		{"slice count overruns", erase(SliceOf(must(For[string]()))), "\x03\x00\x00"},
		{"slice huge count", erase(SliceOf(must(For[string]()))), "\xff\xff\xff\xff\x0f"},
		{"slice trailing", erase(SliceOf(must(For[string]()))), "\x01\x00\x00"},
		{"slice empty trailing", erase(SliceOf(must(For[string]()))), "\x00\x00"},
		{"slice bad element", erase(SliceOf(must(For[int64]()))), "\x01\x01x"},
		{"record", erase(must(For[point]())), "xyz"},
		{"gob garbage", erase(must(For[gobbed]())), "garbage"},
		{"gob empty", erase(must(For[gobbed]())), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := decode(tt.c, tt.src)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode(%q) = %v, want ErrCorrupt", tt.src, err)
			}
			t.Logf("%v", err)
		})
	}
}

type erased[T any] struct{ c Codec[T] }

func (e erased[T]) Decode(src []byte) error { _, err := e.c.Decode(src); return err }

func erase[T any](c Codec[T]) erased[T] { return erased[T]{c} }

func TestAppendFramedLengths(t *testing.T) {
	c := SliceOf(must(For[string]()))
	for _, n := range []int{0, 1, 127, 128, 129, 16383, 16384, 1 << 21} {
		v := []string{strings.Repeat("a", n), "b", strings.Repeat("c", n)}
		got, err := c.Decode(c.Append([]byte("x"), v)[1:])
		if err != nil || !reflect.DeepEqual(got, v) {
			t.Fatalf("n=%d: got %d strings, %v", n, len(got), err)
		}
	}
}

func TestStringArena(t *testing.T) {
	var a StringArena
	var kept []string
	var want []string
	for i := range 100000 { // many chunks
		s := fmt.Sprintf("string %d", i)
		kept = append(kept, a.String([]byte(s)))
		want = append(want, s)
	}
	for i := range kept {
		if kept[i] != want[i] {
			t.Fatalf("string %d changed to %q", i, kept[i])
		}
	}
	b1, b2 := a.Bytes([]byte("one")), a.Bytes([]byte("two"))
	if cap(b1) != 3 {
		t.Fatalf("cap = %d, want 3", cap(b1))
	}
	_ = append(b1, 'X')
	if string(b2) != "two" {
		t.Fatalf("appending to one result changed the next to %q", b2)
	}
}

func TestAllocs(t *testing.T) {
	str := must(For[string]())
	i64 := must(For[int64]())
	f64 := must(For[float64]())
	tup := kvCodec()
	rec := must(For[point]())
	named := must(For[userID]())
	dst := make([]byte, 0, 1024)
	longKey := strings.Repeat("k", 300)
	encStr := str.Append(nil, "a typical key")
	encI64 := i64.Append(nil, 42)
	encF64 := f64.Append(nil, 4.2)
	encTup := tup.Append(nil, kv{"a typical key", 42})
	encRec := rec.Append(nil, point{1, 2})
	tests := []struct {
		name string
		f    func()
	}{
		{"append string", func() { dst = str.Append(dst[:0], "a typical key") }},
		{"append int64", func() { dst = i64.Append(dst[:0], 42) }},
		{"append float64", func() { dst = f64.Append(dst[:0], 4.2) }},
		{"append tuple", func() { dst = tup.Append(dst[:0], kv{"a typical key", 42}) }},
		{"append long tuple", func() { dst = tup.Append(dst[:0], kv{longKey, 42}) }},
		{"append record", func() { dst = rec.Append(dst[:0], point{1, 2}) }},
		{"append named", func() { dst = named.Append(dst[:0], 42) }},
		{"decode int64", func() { must(i64.Decode(encI64)) }},
		{"decode float64", func() { must(f64.Decode(encF64)) }},
		{"decode record", func() { must(rec.Decode(encRec)) }},
		{"decode named", func() { must(named.Decode(encI64)) }},
		// Strings allocate a chunk now and then: at most one per 1000.
		{"decode 1000 strings", func() {
			for range 1000 {
				must(str.Decode(encStr))
			}
		}},
		{"decode 1000 tuples", func() {
			for range 1000 {
				must(tup.Decode(encTup))
			}
		}},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.f); got > 0 {
			t.Errorf("%s: %v allocations per run, want 0", tt.name, got)
		}
	}
}
