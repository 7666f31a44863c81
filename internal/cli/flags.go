package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ByteSize is a flag value of bytes (the node's --cache-bytes, shoal
// run's): a plain number, or a number with a unit, binary (KiB, MiB, GiB,
// TiB; K, M, G, T alike) or decimal (kB, MB, GB, TB), as in 512MiB or
// 1.5GiB. Case does not matter; the result must be a whole number of bytes
// at most 2^63-1.
type ByteSize int64

// byteUnits are ByteSize's suffixes, longest first so that "mib" is not
// read as "b"; never written.
var byteUnits = []struct {
	suffix string
	mult   float64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

// Set parses s (flag.Value).
func (b *ByteSize) Set(s string) error {
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

func (b *ByteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

// ParseByteSize parses a size as ByteSize does.
func ParseByteSize(s string) (int64, error) {
	num := strings.TrimSpace(s)
	mult := 1.0
	lower := strings.ToLower(num)
	for _, u := range byteUnits {
		if strings.HasSuffix(lower, u.suffix) {
			num, mult = strings.TrimSpace(num[:len(num)-len(u.suffix)]), u.mult
			break
		}
	}
	if n, err := strconv.ParseInt(num, 10, 64); err == nil && mult == 1 {
		if n < 0 {
			return 0, fmt.Errorf("%q is negative", s)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" || strings.ContainsAny(num, "eEnNxX") {
		return 0, fmt.Errorf("%q is not a size in bytes (write e.g. 268435456, 256MiB or 1.5GiB)", s)
	}
	v := f * mult
	switch {
	case v < 0:
		return 0, fmt.Errorf("%q is negative", s)
	case v >= math.MaxInt64:
		return 0, fmt.Errorf("%q is too large", s)
	case v != math.Trunc(v):
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	return int64(v), nil
}

// DirList is a flag value of directories, DIR[,DIR...]: each use of the
// flag appends its comma-separated, non-empty entries, spaces trimmed.
type DirList []string

// Set appends the directories of s (flag.Value).
func (d *DirList) Set(s string) error {
	for _, dir := range strings.Split(s, ",") {
		if dir = strings.TrimSpace(dir); dir != "" {
			*d = append(*d, dir)
		}
	}
	return nil
}

func (d *DirList) String() string { return strings.Join(*d, ",") }
