package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"shoal/client"
	"shoal/jobs"
)

// SortConfig is one run of the sort comparison: the same gensort records
// sorted by shoal's sort job and by GNU sort.
type SortConfig struct {
	Records int64 // gensort records (100 bytes each)
	Seed    uint64
	// Parts is the sort job's number of output parts; default one per
	// 64 MiB of input, and at least 4 (the default cluster's task slots).
	Parts int
	// Binary is re-executed as shoal's workers and node services; default
	// the running executable, which must call client.Init first thing.
	// NodeBinary, if set, runs the node services instead (tests, whose
	// binary is not shoal's).
	Binary, NodeBinary string
	// SortParallel and SortBuffer are GNU sort's --parallel (default 2)
	// and -S (default 512M): it sorts runs of at most SortBuffer in
	// memory and merges them from files in the work directory.
	SortParallel int
	SortBuffer   string
	// SortCommand is GNU sort's path; default "sort" on PATH.
	SortCommand string
	// Dir is where the work directory (input, outputs, GNU sort's
	// temporary files; about 6 times the input) is made; default the
	// system's temporary directory. It is removed afterwards.
	Dir string
	// Stderr receives the workers' and node services' logs; default
	// discarded.
	Stderr io.Writer
}

// SortResult is what one run measured. Times are wall clock of the sort
// alone: generating the input, converting it for GNU sort, starting
// shoal's cluster and verifying the outputs are not in them.
type SortResult struct {
	Records    int64 `json:"records"`
	InputBytes int64 `json:"input_bytes"`
	Parts      int   `json:"parts"`
	// ShoalSeconds is the sort job, sampling included; ShoalStartSeconds
	// the start of its local cluster (the embedded default).
	ShoalSeconds      float64 `json:"shoal_seconds"`
	ShoalStartSeconds float64 `json:"shoal_start_seconds"`
	// GNU sort sorts the same file as lines (ASCII records end in
	// "\r\n"; under LC_ALL=C line order is key order).
	GNUSortSeconds    float64  `json:"gnu_sort_seconds"`
	GNUSortInputBytes int64    `json:"gnu_sort_input_bytes"`
	GNUSortArgs       []string `json:"gnu_sort_args"`
	// Digest is RecordsDigest's sum of the input, which both outputs
	// matched.
	Digest string `json:"digest"`
}

// gensortBytesPerPart is the input a default part holds.
const gensortBytesPerPart = 64 << 20

func (c *SortConfig) ensureDefaults() error {
	if c.Records < 0 {
		return fmt.Errorf("bench: records must not be negative, got %d", c.Records)
	}
	if c.Parts <= 0 {
		c.Parts = max(4, int((c.Records*jobs.SortRecordSize+gensortBytesPerPart-1)/gensortBytesPerPart))
	}
	if c.SortParallel <= 0 {
		c.SortParallel = 2
	}
	if c.SortBuffer == "" {
		c.SortBuffer = "512M"
	}
	if c.SortCommand == "" {
		c.SortCommand = "sort"
	}
	if c.Stderr == nil {
		c.Stderr = io.Discard
	}
	return nil
}

// RunSortComparison generates cfg.Records gensort records in gensort's
// ASCII mode (each record is also a line), sorts the file with shoal's
// sort job on a local cluster of the embedded default shape, then the
// same file with GNU sort, and checks that both outputs are sorted and
// hold exactly the input's records.
func RunSortComparison(ctx context.Context, cfg SortConfig) (*SortResult, error) {
	if err := cfg.ensureDefaults(); err != nil {
		return nil, err
	}
	sortPath, err := exec.LookPath(cfg.SortCommand)
	if err != nil {
		return nil, fmt.Errorf("bench: GNU sort: %w (install coreutils or set SortConfig.SortCommand)", err)
	}
	work, err := os.MkdirTemp(cfg.Dir, "shoal-sortcmp-")
	if err != nil {
		return nil, fmt.Errorf("bench: work directory: %w", err)
	}
	defer os.RemoveAll(work)

	res := &SortResult{Records: cfg.Records, InputBytes: cfg.Records * jobs.SortRecordSize, Parts: cfg.Parts}
	input := filepath.Join(work, "input")
	if err := writeFile(input, func(w io.Writer) error { return jobs.GenSortASCII(w, cfg.Records, cfg.Seed) }); err != nil {
		return nil, fmt.Errorf("bench: generate input: %w", err)
	}
	count, sum, err := digestFiles(input)
	if err != nil {
		return nil, err
	}
	res.Digest = fmt.Sprintf("%016x", sum)

	if err := runShoalSort(ctx, &cfg, input, filepath.Join(work, "shoal"), res); err != nil {
		return nil, err
	}
	if err := verifySorted(shoalParts(filepath.Join(work, "shoal"), cfg.Parts), count, sum); err != nil {
		return nil, fmt.Errorf("bench: shoal's output: %w", err)
	}

	gnuOut := filepath.Join(work, "gnu.out")
	res.GNUSortInputBytes = res.InputBytes
	res.GNUSortArgs = []string{"--parallel=" + strconv.Itoa(cfg.SortParallel), "-S", cfg.SortBuffer, "-T", work, "-o", gnuOut, input}
	cmd := exec.CommandContext(ctx, sortPath, res.GNUSortArgs...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("bench: LC_ALL=C %s %s: %w: %s", sortPath, strings.Join(res.GNUSortArgs, " "), err, out)
	}
	res.GNUSortSeconds = time.Since(start).Seconds()
	if err := verifySorted([]string{gnuOut}, count, sum); err != nil {
		return nil, fmt.Errorf("bench: GNU sort's output: %w", err)
	}
	return res, nil
}

// runShoalSort starts the local cluster and runs the sort job.
func runShoalSort(ctx context.Context, cfg *SortConfig, input, output string, res *SortResult) error {
	start := time.Now()
	c, err := client.NewContext(ctx, client.Options{
		Binary: cfg.Binary, NodeBinary: cfg.NodeBinary, WorkerStderr: cfg.Stderr,
	})
	if err != nil {
		return fmt.Errorf("bench: start shoal: %w", err)
	}
	defer c.Close()
	res.ShoalStartSeconds = time.Since(start).Seconds()
	st, err := jobs.Sort(ctx, c, input, output, cfg.Parts)
	if err != nil {
		return fmt.Errorf("bench: shoal sort: %w", err)
	}
	if st.Records != cfg.Records {
		return fmt.Errorf("bench: shoal sort wrote %d records of %d", st.Records, cfg.Records)
	}
	res.ShoalSeconds = st.Seconds
	return nil
}

func shoalParts(dir string, parts int) []string {
	files := make([]string, parts)
	for i := range files {
		files[i] = filepath.Join(dir, fmt.Sprintf("part-%05d", i))
	}
	return files
}

// verifySorted checks that the concatenation of files is sorted and holds
// the records whose digest is (count, sum).
func verifySorted(files []string, count int64, sum uint64) error {
	n, err := jobs.CheckSorted(files)
	if err != nil {
		return err
	}
	gotCount, gotSum, err := digestFiles(files...)
	if err != nil {
		return err
	}
	if n != count || gotCount != count || gotSum != sum {
		return fmt.Errorf("holds %d records of digest %016x, want the input's %d of digest %016x", gotCount, gotSum, count, sum)
	}
	return nil
}

// digestFiles is jobs.RecordsDigest of the concatenation of files.
func digestFiles(files ...string) (int64, uint64, error) {
	var rs []io.Reader
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return 0, 0, err
		}
		defer f.Close()
		rs = append(rs, f)
	}
	return jobs.RecordsDigest(io.MultiReader(rs...))
}

// writeFile creates path and fills it with write, through a buffer.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
