package jobs_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"shoal/client"
	"shoal/internal/testbin"
	"shoal/jobs"
)

// TestSortMatchesInput sorts 200,000 gensort records on two nodes of two
// workers and checks that the part files, in order, are sorted and hold
// exactly the input's records.
func TestSortMatchesInput(t *testing.T) {
	const records = 200_000
	input := filepath.Join(t.TempDir(), "sort.in")
	f, err := os.Create(input)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	if err := jobs.GenSort(w, records, 7); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := client.NewContext(context.Background(), client.Options{
		Nodes: 2, WorkersPerNode: 2, Binary: os.Args[0], NodeBinary: testbin.Shoal(t),
		Dir: t.TempDir(), WorkerStderr: os.Stderr,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	const parts = 5
	output := filepath.Join(t.TempDir(), "sorted")
	st, err := jobs.Sort(context.Background(), c, input, output, parts)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != records || st.Bytes != records*jobs.SortRecordSize || st.Seconds <= 0 {
		t.Errorf("stats %+v, want %d records of %d bytes", st, records, jobs.SortRecordSize)
	}
	var files []string
	for i := range parts {
		files = append(files, filepath.Join(output, fmt.Sprintf("part-%05d", i)))
	}
	if all, _ := filepath.Glob(filepath.Join(output, "*")); len(all) != parts {
		t.Fatalf("output holds %v, want %d part files", all, parts)
	}
	n, err := jobs.CheckSorted(files)
	if err != nil {
		t.Fatal(err)
	}
	if n != records {
		t.Fatalf("CheckSorted saw %d records, want %d", n, records)
	}
	wantN, wantSum := digestFiles(t, input)
	gotN, gotSum := digestFiles(t, files...)
	if gotN != wantN || gotSum != wantSum {
		t.Fatalf("output digest (%d records, %x), want the input's (%d records, %x)", gotN, gotSum, wantN, wantSum)
	}
}

// digestFiles is RecordsDigest of the concatenation of files.
func digestFiles(t *testing.T, files ...string) (int64, uint64) {
	t.Helper()
	var rs []io.Reader
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		rs = append(rs, f)
	}
	n, sum, err := jobs.RecordsDigest(io.MultiReader(rs...))
	if err != nil {
		t.Fatal(err)
	}
	return n, sum
}
