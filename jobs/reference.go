package jobs

// Single-process reference computations of the built-in jobs. They share
// nothing with the distributed jobs but ParseEcommerceLine (which is the
// definition of a row), hold everything in memory, and are meant for tests
// on inputs of up to a few million records.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// eachLine calls fn with every line of r: the text between "\n"s, without
// them; the last line may lack its "\n". Lines may be of any length.
func eachLine(r io.Reader, fn func(line string) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	for {
		line, err := br.ReadString('\n')
		if len(line) > 0 {
			if ferr := fn(strings.TrimSuffix(line, "\n")); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// RefWordCount returns the wordcount job's output for input r: one
// "word\tcount" line per distinct word, words being what strings.Fields
// returns for each line, sorted by word (byte order).
func RefWordCount(r io.Reader) ([]string, error) {
	counts := make(map[string]int64)
	err := eachLine(r, func(line string) error {
		for _, w := range strings.Fields(line) {
			counts[w]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	sort.Strings(words)
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = w + "\t" + strconv.FormatInt(counts[w], 10)
	}
	return out, nil
}

// RefEcommerce returns the ecommerce job's output for input r and the
// number of malformed rows (see ParseEcommerceLine and ParseEcommerceRow).
// For every user_session with at least one purchase it gives one line
//
//	user_session \t max event_time \t user_ids \t count \t sum
//
// where max event_time is the latest purchase's event_time without " UTC",
// user_ids the distinct user_ids of the session's purchases in ascending
// numeric order joined by ",", count the number of purchases, and sum
// their prices in exact cents printed with AppendCents ("1234.50").
// Lines are sorted by user_session (byte order).
func RefEcommerce(r io.Reader) (lines []string, badRows int64, err error) {
	type session struct {
		maxTime  int64
		maxText  string
		users    map[int64]bool
		count    int64
		sumCents int64
	}
	sessions := make(map[string]*session)
	err = eachLine(r, func(line string) error {
		ev, err := ParseEcommerceLine(line)
		switch {
		case errors.Is(err, ErrNotEvent):
			return nil
		case err != nil:
			badRows++
			return nil
		case ev.Type != EventPurchase:
			return nil
		}
		s := sessions[ev.Session]
		if s == nil {
			s = &session{maxTime: ev.Time, maxText: ev.EventTime, users: make(map[int64]bool)}
			sessions[ev.Session] = s
		}
		if ev.Time > s.maxTime {
			s.maxTime, s.maxText = ev.Time, ev.EventTime
		}
		s.users[ev.UserID] = true
		s.count++
		s.sumCents += ev.PriceCents
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	ids := make([]string, 0, len(sessions))
	for id := range sessions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	lines = make([]string, len(ids))
	var b []byte
	for i, id := range ids {
		s := sessions[id]
		users := make([]int64, 0, len(s.users))
		for u := range s.users {
			users = append(users, u)
		}
		sort.Slice(users, func(i, j int) bool { return users[i] < users[j] })
		b = append(b[:0], id...)
		b = append(b, '\t')
		b = append(b, s.maxText...)
		b = append(b, '\t')
		for j, u := range users {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, u, 10)
		}
		b = append(b, '\t')
		b = strconv.AppendInt(b, s.count, 10)
		b = append(b, '\t')
		b = AppendCents(b, s.sumCents)
		lines[i] = string(b)
	}
	return lines, badRows, nil
}

// PageRankDamping is the damping factor d of the pagerank job.
const PageRankDamping = 0.85

// RefPageRank returns the rank of every page of the edge list r after
// iterations steps of power iteration.
//
// Input: one edge "src dst" per line, two fields separated by white space
// (as strings.Fields splits); lines that are empty or white space only,
// or whose first non-blank character is '#', are skipped; any other line
// is an error. Pages are the strings that appear as a src or a dst (so
// "1" and "01" are two pages); there are N of them. Every line is one
// link: a duplicated line links twice, and self-links count.
//
// Ranks start at 1/N. One step computes, for every page p,
//
//	rank'(p) = (1-d)/N + d * (sum over links q->p of rank(q)/out(q) + D/N)
//
// with d = 0.85, out(q) the number of links from q, and D the sum of the
// ranks of the dangling pages (those without out-links), so ranks keep
// summing to 1.
func RefPageRank(r io.Reader, iterations int) (map[string]float64, error) {
	index := make(map[string]int32)
	var names []string
	page := func(name string) int32 {
		i, ok := index[name]
		if !ok {
			i = int32(len(names))
			index[name] = i
			names = append(names, name)
		}
		return i
	}
	var src, dst []int32
	lineNo := 0
	err := eachLine(r, func(line string) error {
		lineNo++
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			return nil
		}
		if len(f) != 2 {
			return fmt.Errorf("jobs: pagerank input line %d: %q has %d fields, want 2 (src dst)", lineNo, line, len(f))
		}
		src = append(src, page(f[0]))
		dst = append(dst, page(f[1]))
		return nil
	})
	if err != nil {
		return nil, err
	}
	n := len(names)
	out := make([]float64, n)
	for _, s := range src {
		out[s]++
	}
	rank := make([]float64, n)
	next := make([]float64, n)
	for i := range rank {
		rank[i] = 1 / float64(n)
	}
	const d = PageRankDamping
	for range iterations {
		dangling := 0.0
		for p, o := range out {
			if o == 0 {
				dangling += rank[p]
			}
		}
		clear(next)
		for e, s := range src {
			next[dst[e]] += rank[s] / out[s]
		}
		base := (1-d)/float64(n) + d*dangling/float64(n)
		for p := range next {
			next[p] = base + d*next[p]
		}
		rank, next = next, rank
	}
	ranks := make(map[string]float64, n)
	for i, name := range names {
		ranks[name] = rank[i]
	}
	return ranks, nil
}

// CheckSorted reads the gensort part files in order and checks that the
// records of their concatenation are sorted by their 10-byte keys (equal
// keys may come in any order). Every file must hold whole 100-byte records.
// It returns the number of records.
func CheckSorted(partFiles []string) (records int64, err error) {
	var c sortChecker
	for _, name := range partFiles {
		f, err := os.Open(name)
		if err != nil {
			return c.records, err
		}
		err = c.check(f, name)
		f.Close()
		if err != nil {
			return c.records, err
		}
	}
	return c.records, nil
}

// sortChecker remembers the last key seen across files.
type sortChecker struct {
	records  int64
	prev     [SortKeySize]byte
	prevFile string // "" before the first record
	prevRec  int64  // index of the previous record in prevFile
}

func (c *sortChecker) check(r io.Reader, name string) error {
	br := bufio.NewReaderSize(r, 1<<16)
	var rec [SortRecordSize]byte
	for n := int64(0); ; n++ {
		m, err := io.ReadFull(br, rec[:])
		switch {
		case err == io.EOF:
			return nil
		case err == io.ErrUnexpectedEOF:
			return fmt.Errorf("jobs: %s ends with a partial record of %d bytes after %d records of %d bytes", name, m, n, SortRecordSize)
		case err != nil:
			return err
		}
		key := rec[:SortKeySize]
		if c.prevFile != "" && bytes.Compare(key, c.prev[:]) < 0 {
			return fmt.Errorf("jobs: not sorted: record %d of %s (key %x) sorts before record %d of %s (key %x)",
				n, name, key, c.prevRec, c.prevFile, c.prev[:])
		}
		copy(c.prev[:], key)
		c.prevFile, c.prevRec = name, n
		c.records++
	}
}

// RecordsDigest returns the number of 100-byte records in r and the
// wrapping sum of their xxhash64s: a digest that does not depend on their
// order, so the input and the output of a sort have equal digests when no
// record was lost, duplicated or changed. Input that is not a whole number
// of records is an error.
func RecordsDigest(r io.Reader) (count int64, sum uint64, err error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var rec [SortRecordSize]byte
	for {
		m, err := io.ReadFull(br, rec[:])
		if err == io.EOF {
			return count, sum, nil
		}
		if err == io.ErrUnexpectedEOF {
			return count, sum, fmt.Errorf("jobs: input ends with a partial record of %d bytes after %d records", m, count)
		}
		if err != nil {
			return count, sum, err
		}
		count++
		sum += xxhash.Sum64(rec[:])
	}
}
