package jobs

import (
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// Ecommerce generator parameters.
const (
	ecomActiveSessions   = 256   // sessions open at once, interleaved
	ecomMeanSessionLen   = 6.0   // mean events per session
	ecomSharedPerMil     = 10    // sessions shared by two user_ids, per 1000
	ecomProducts         = 20000 // distinct products
	ecomMalformedPer1e5  = 100   // malformed rows per 100000 (0.1%)
	ecomOutOfOrderPerMil = 50    // rows a little earlier than the one before
	ecomSpanSeconds      = 31 * 86400
	ecomFirstUserID      = 510_000_000
	ecomUsers            = 90_000_000
)

// ecomEventType returns the event_type for p in [0, 100): purchases are
// common enough that most sessions have one.
func ecomEventType(p int) string {
	switch {
	case p < 60:
		return "view"
	case p < 80:
		return "cart"
	case p < 85:
		return "remove_from_cart"
	default:
		return EventPurchase
	}
}

// ecomCategories returns category codes as in the data set, about a
// third of them empty.
func ecomCategories() []string {
	return []string{
		"electronics.smartphone", "electronics.audio.headphone", "electronics.video.tv",
		"computers.notebook", "computers.desktop", "computers.peripherals.printer",
		"appliances.kitchen.refrigerators", "appliances.kitchen.washer", "appliances.environment.vacuum",
		"apparel.shoes", "apparel.shoes.keds", "apparel.trousers", "furniture.living_room.sofa",
		"furniture.bedroom.bed", "construction.tools.drill", "auto.accessories.player",
		"kids.toys", "sport.bicycle", "accessories.bag", "country_yard.lawn_mower",
		"", "", "", "", "", "", "", "", "", "",
	}
}

// ecomBrands returns brands, about one in seven empty.
func ecomBrands() []string {
	return []string{
		"samsung", "apple", "xiaomi", "huawei", "lg", "sony", "lenovo", "acer", "asus", "hp",
		"bosch", "philips", "indesit", "beko", "midea", "haier", "oppo", "vivo", "nokia", "jbl",
		"lucente", "respect", "shiseido", "elenberg", "cordiant", "sokolov", "nike", "adidas",
		"puma", "redmond", "polaris", "tefal", "artel", "gorenje", "canon", "nikon",
		"", "", "", "", "", "",
	}
}

type ecomSession struct {
	id    [36]byte
	users [2]int64 // users[1] != 0 for a shared session
	left  int
}

type ecomGen struct {
	rng      *rand.Rand
	products *aliasTable
	seed     uint64
	sessions [ecomActiveSessions]ecomSession

	categories, brands []string

	t0, lastSec int64
	timeText    []byte // EcommerceTimeLayout of lastSec
}

// GenEcommerce writes the header line and records rows in the format of
// the 2019 e-commerce behaviour data set. Event times grow through October
// 2019 with small steps back; events of 256 open sessions are interleaved
// (about 6 events per session, 1% of sessions shared by two user_ids);
// products are Zipf-popular with fixed category, brand and price; brand
// and category_code are sometimes empty; 15% of events are purchases.
// About 0.1% of rows are malformed as ParseEcommerceRow defines it (a
// field too few or too many, an unterminated quote, a bad event_time, or
// a purchase with a bad price or user_id). A few valid rows quote a field
// that holds a comma, as CSV allows.
func GenEcommerce(w io.Writer, records int64, seed uint64) error {
	if err := checkRecords("ecommerce", records); err != nil {
		return err
	}
	g := &ecomGen{rng: newRand(seed, streamEcommerce), seed: seed, categories: ecomCategories(), brands: ecomBrands()}
	g.products = newAliasTable(zipfWeights(ecomProducts, 1.2, 4))
	g.t0 = time.Date(2019, 10, 1, 0, 0, 0, 0, time.UTC).Unix()
	g.lastSec = -1
	for i := range g.sessions {
		g.newSession(&g.sessions[i])
	}
	bw := newGenWriter(w)
	if _, err := bw.WriteString(EcommerceHeader + "\n"); err != nil {
		return err
	}
	step := float64(ecomSpanSeconds) / math.Max(1, float64(records))
	row := make([]byte, 0, 256)
	for i := range records {
		row = g.appendRow(row[:0], g.t0+int64(float64(i)*step))
		if _, err := bw.Write(row); err != nil {
			return err
		}
	}
	return bw.Flush()
}

func (g *ecomGen) newSession(s *ecomSession) {
	a, b := g.rng.Uint64(), g.rng.Uint64()
	a = a&^(0xf<<12) | 4<<12   // version 4
	b = b&^(0x3<<62) | 0x2<<62 // variant 10xx
	var raw [16]byte
	for i := range 8 {
		raw[i], raw[8+i] = byte(a>>(56-8*i)), byte(b>>(56-8*i))
	}
	j := 0
	for i, x := range raw {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s.id[j] = '-'
			j++
		}
		s.id[j], s.id[j+1] = hexLower[x>>4], hexLower[x&0xf]
		j += 2
	}
	s.users[0] = ecomFirstUserID + g.rng.Int64N(ecomUsers)
	s.users[1] = 0
	if g.rng.IntN(1000) < ecomSharedPerMil {
		s.users[1] = ecomFirstUserID + g.rng.Int64N(ecomUsers)
	}
	s.left = 1 + int(g.rng.ExpFloat64()*(ecomMeanSessionLen-1))
}

// appendTime appends sec in EcommerceTimeLayout, formatting each second once.
func (g *ecomGen) appendTime(b []byte, sec int64) []byte {
	if sec != g.lastSec {
		g.timeText = time.Unix(sec, 0).UTC().AppendFormat(g.timeText[:0], EcommerceTimeLayout)
		g.lastSec = sec
	}
	return append(b, g.timeText...)
}

func (g *ecomGen) appendRow(b []byte, sec int64) []byte {
	rng := g.rng
	if rng.IntN(1000) < ecomOutOfOrderPerMil {
		sec = max(g.t0, sec-1-rng.Int64N(120))
	}
	s := &g.sessions[rng.IntN(len(g.sessions))]
	user := s.users[0]
	if s.users[1] != 0 && rng.IntN(2) == 0 {
		user = s.users[1]
	}
	typ := ecomEventType(rng.IntN(100))
	product := uint64(g.products.sample(rng))
	h := mix64(g.seed ^ product*0x9e3779b97f4a7c15)
	category := h % uint64(len(g.categories))
	brand := h >> 16 % uint64(len(g.brands))
	// Prices are log-uniform from 1.00 to 2500.00, fixed per product.
	cents := int64(math.Exp(math.Log(100) + float64(h>>40)/(1<<24)*math.Log(2500)))

	bad := -1
	if rng.IntN(100_000) < ecomMalformedPer1e5 {
		bad = rng.IntN(6)
		if bad >= 4 {
			typ = EventPurchase // price and user_id are checked for purchases only
		}
	}

	if bad == 2 {
		b = append(b, "2019-10-"...)
		b = append(b, []string{"32 10:00:00 UTC", "05 24:13:00 UTC", "05T10:13:00Z", "5 10:13:00 UTC"}[rng.IntN(4)]...)
	} else {
		b = g.appendTime(b, sec)
	}
	b = append(b, ',')
	b = append(b, typ...)
	b = append(b, ',')
	b = strconv.AppendUint(b, 1_000_000+product*1009, 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, 2053013552226107603+category*2718281828459, 10)
	b = append(b, ',')
	b = append(b, g.categories[category]...)
	b = append(b, ',')
	switch {
	case bad == 3:
		b = append(b, `"unterminated,`...)
	case rng.IntN(1000) < 2:
		b = append(b, `"dolce,gabbana"`...) // valid CSV with a comma inside quotes
	default:
		b = append(b, g.brands[brand]...)
	}
	b = append(b, ',')
	switch {
	case bad == 4:
		b = append(b, []string{"", "N/A", "12.345", "-3.50", "1,5"}[rng.IntN(5)]...)
	case cents%100 == 0 && h&1 == 0:
		b = strconv.AppendInt(b, cents/100, 10) // "12", as some exports write
	default:
		b = AppendCents(b, cents)
	}
	b = append(b, ',')
	if bad == 5 {
		b = append(b, []string{"", "user42", "5.1e8"}[rng.IntN(3)]...)
	} else {
		b = strconv.AppendInt(b, user, 10)
	}
	b = append(b, ',')
	b = append(b, s.id[:]...)
	switch bad {
	case 0:
		b = append(b, ",extra"...)
	case 1:
		b = b[:len(b)-len(s.id)-1] // drop user_session
	}
	if s.left--; s.left <= 0 {
		g.newSession(s)
	}
	return append(b, '\n')
}
