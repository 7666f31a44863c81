package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc64"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// This file checks the outputs of a peer comparison's run: a side's
// output is a file, or a directory of shoal's part files.

// outputFiles is path itself if it is a file, else its part-* files in
// order.
func outputFiles(path string) ([]string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	return partFiles(path)
}

// partFiles lists the part-* files of shoal's output directory dir, in
// order.
func partFiles(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "part-*"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s holds no part files", dir)
	}
	sort.Strings(files)
	return files, nil
}

// eachLine calls fn with every line of the output at path (without its
// "\n").
func eachLine(path string, fn func(line string) error) error {
	files, err := outputFiles(path)
	if err != nil {
		return err
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			if err := fn(sc.Text()); err != nil {
				f.Close()
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// tabPair splits "key<TAB>value".
func tabPair(line string) (string, string, error) {
	k, v, ok := strings.Cut(line, "\t")
	if !ok {
		return "", "", fmt.Errorf("line %q has no tab", truncate(line, 80))
	}
	return k, v, nil
}

// readFloats reads "key<TAB>float" lines; a key seen twice is an error.
func readFloats(path string) (map[string]float64, error) {
	m := map[string]float64{}
	err := eachLine(path, func(line string) error {
		k, v, err := tabPair(line)
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return err
		}
		if _, dup := m[k]; dup {
			return fmt.Errorf("%q appears twice", k)
		}
		m[k] = f
		return nil
	})
	return m, err
}

// rankTolerance is the largest relative difference of two equal ranks.
const rankTolerance = 1e-9

// compareRanks checks that both outputs rank the same pages, each rank
// equal to a relative rankTolerance.
func compareRanks(shoalOut, peerOut string) error {
	a, err := readFloats(shoalOut)
	if err != nil {
		return fmt.Errorf("shoal's ranks: %w", err)
	}
	b, err := readFloats(peerOut)
	if err != nil {
		return fmt.Errorf("the peer's ranks: %w", err)
	}
	if len(a) != len(b) {
		return fmt.Errorf("shoal ranked %d pages, the peer %d", len(a), len(b))
	}
	for page, x := range a {
		y, ok := b[page]
		if !ok {
			return fmt.Errorf("page %q has a rank from shoal only", page)
		}
		d := math.Abs(x-y) / math.Max(math.Abs(x), math.Abs(y))
		if x == y {
			d = 0
		}
		if !(d <= rankTolerance) { // NaN too
			return fmt.Errorf("page %q: rank %v from shoal, %v from the peer (relative difference %.3g)", page, x, y, d)
		}
	}
	return nil
}

// sameBytes checks that the concatenations of a and b are equal.
func sameBytes(a, b []string) error {
	ra, closeA, err := concat(a)
	if err != nil {
		return err
	}
	defer closeA()
	rb, closeB, err := concat(b)
	if err != nil {
		return err
	}
	defer closeB()
	ba, bb := bufio.NewReaderSize(ra, 1<<20), bufio.NewReaderSize(rb, 1<<20)
	bufA, bufB := make([]byte, 64<<10), make([]byte, 64<<10)
	var off int64
	for {
		na, errA := io.ReadFull(ba, bufA)
		nb, errB := io.ReadFull(bb, bufB)
		if !bytes.Equal(bufA[:na], bufB[:nb]) {
			i := 0
			for i < min(na, nb) && bufA[i] == bufB[i] {
				i++
			}
			return fmt.Errorf("the outputs differ at byte %d", off+int64(i))
		}
		off += int64(na)
		endA := errA == io.EOF || errA == io.ErrUnexpectedEOF
		endB := errB == io.EOF || errB == io.ErrUnexpectedEOF
		switch {
		case errA != nil && !endA:
			return errA
		case errB != nil && !endB:
			return errB
		case endA && endB:
			return nil
		case endA || endB:
			return fmt.Errorf("one output ends at byte %d, the other goes on", off)
		}
	}
}

func concat(files []string) (io.Reader, func(), error) {
	var rs []io.Reader
	var fs []*os.File
	closeAll := func() {
		for _, f := range fs {
			f.Close()
		}
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		fs = append(fs, f)
		rs = append(rs, f)
	}
	return io.MultiReader(rs...), closeAll, nil
}

// lineDigest is an order-independent digest of a multiset of lines: their
// count and two sums of 64-bit hashes (FNV-1a and CRC-64/ECMA) of each.
type lineDigest struct {
	lines      int64
	fnv, crc   uint64
	crcTable   *crc64.Table
	firstLines []string // a few lines, to show in a mismatch
}

func (d *lineDigest) add(line string) {
	h := fnv.New64a()
	h.Write([]byte(line))
	d.fnv += h.Sum64()
	d.crc += crc64.Checksum([]byte(line), d.crcTable)
	d.lines++
}

func digestLines(path string) (*lineDigest, error) {
	d := &lineDigest{crcTable: crc64.MakeTable(crc64.ECMA)}
	err := eachLine(path, func(line string) error { d.add(line); return nil })
	return d, err
}

// sameLines checks that both outputs hold the same lines, in any order
// (equal digests of their multisets).
func sameLines(shoalOut, peerOut string) error {
	a, err := digestLines(shoalOut)
	if err != nil {
		return fmt.Errorf("shoal's output: %w", err)
	}
	b, err := digestLines(peerOut)
	if err != nil {
		return fmt.Errorf("the peer's output: %w", err)
	}
	if a.lines != b.lines || a.fnv != b.fnv || a.crc != b.crc {
		return fmt.Errorf("shoal wrote %d lines (digest %016x%016x), the peer %d (digest %016x%016x)", a.lines, a.fnv, a.crc, b.lines, b.fnv, b.crc)
	}
	return nil
}

// sameCounts checks that both outputs count the same words alike.
func sameCounts(shoalOut, peerOut string) error {
	read := func(path string) (map[string]int64, error) {
		m := map[string]int64{}
		err := eachLine(path, func(line string) error {
			k, v, err := tabPair(line)
			if err != nil {
				return err
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return err
			}
			if _, dup := m[k]; dup {
				return fmt.Errorf("%q appears twice", k)
			}
			m[k] = n
			return nil
		})
		return m, err
	}
	a, err := read(shoalOut)
	if err != nil {
		return fmt.Errorf("shoal's counts: %w", err)
	}
	b, err := read(peerOut)
	if err != nil {
		return fmt.Errorf("the peer's counts: %w", err)
	}
	if len(a) != len(b) {
		return fmt.Errorf("%d words from the directory, %d from the file", len(a), len(b))
	}
	for w, n := range a {
		if m, ok := b[w]; !ok || m != n {
			return fmt.Errorf("word %q: %d from the directory, %d from the file", w, n, m)
		}
	}
	return nil
}

// splitLines copies the lines of file into n files of about equal size in
// dir (part-NNNNN.txt), each ending at a line's end: their concatenation
// is file's bytes.
func splitLines(file, dir string, n int) error {
	fi, err := os.Stat(file)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	in, err := os.Open(file)
	if err != nil {
		return err
	}
	defer in.Close()
	r := bufio.NewReaderSize(in, 1<<20)
	target := max(1, fi.Size()/int64(n))
	for i := 0; ; i++ {
		if _, err := r.Peek(1); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		eof := false
		err := writeFile(filepath.Join(dir, fmt.Sprintf("part-%05d.txt", i)), func(w io.Writer) error {
			for written := int64(0); written < target || i >= n-1; {
				line, err := r.ReadSlice('\n')
				if err == bufio.ErrBufferFull {
					err = nil // a long line: its rest follows
				}
				if _, werr := w.Write(line); werr != nil {
					return werr
				}
				written += int64(len(line))
				if err == io.EOF {
					eof = true
					return nil
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil || eof {
			return err
		}
	}
}

// tasksValue reads `shoal bench tasks --json`'s milliseconds per task.
func tasksValue(u *treeUsage) (float64, error) {
	var res TasksResult
	if err := json.Unmarshal(u.Stdout, &res); err != nil {
		return 0, fmt.Errorf("reading its JSON: %w", err)
	}
	return res.MsPerTask, nil
}

// compareTasks checks both task runs' answers (written to their outputs
// by `shoal bench tasks --output`).
func compareTasks(shoalOut, peerOut string) error {
	for _, path := range []string{shoalOut, peerOut} {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var res TasksResult
		if err := json.Unmarshal(b, &res); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if res.Count != res.Want || res.Want != distinctOrRecords(res) {
			return fmt.Errorf("%d %s tasks counted %d, want %d", res.Tasks, res.Kind, res.Count, distinctOrRecords(res))
		}
	}
	return nil
}

// distinctOrRecords is the answer a tasks run must give.
func distinctOrRecords(res TasksResult) int64 {
	if res.Kind == "narrow" {
		return res.Records
	}
	return distinctKeys(res.Records)
}
