package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"shoal/client"
	"shoal/jobs"
)

// checkedJob is a job the fault experiments run again and again, with the
// means to check its answer against a single-process reference.
type checkedJob struct {
	name string
	// faultStage is the kind of stage ("map" or "result") a fault is
	// injected into: the first stage of that kind the job submits.
	faultStage string
	// run runs the job on c, writing to out if it writes files, and
	// returns its answer as lines in a canonical (sorted) order.
	run func(ctx context.Context, c *client.Context, out string) ([]string, error)
	// want is the reference answer.
	want []string
}

// check compares an answer with the reference; the note says how they
// differ.
func (j checkedJob) check(answer []string) (bool, string) {
	if slices.Equal(answer, j.want) {
		return true, ""
	}
	if len(answer) != len(j.want) {
		return false, fmt.Sprintf("%d lines, want %d", len(answer), len(j.want))
	}
	for i := range answer {
		if answer[i] != j.want[i] {
			return false, fmt.Sprintf("line %d is %q, want %q", i, answer[i], j.want[i])
		}
	}
	return false, "" // not reached
}

// generateFile writes records of the generator kind (jobs.GenKinds) to
// path.
func generateFile(kind, path string, records int64, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := jobs.Generate(kind, f, records, seed); err != nil {
		f.Close()
		return fmt.Errorf("bench: generate %s input: %w", kind, err)
	}
	return f.Close()
}

// ecommerceRef is the reference answer of the ecommerce jobs.
type ecommerceRef struct {
	lines     []string // jobs.RefEcommerce's, then "bad rows\tN"
	purchases int64    // the sum of the sessions' purchase counts
}

func refEcommerce(input string) (ecommerceRef, error) {
	f, err := os.Open(input)
	if err != nil {
		return ecommerceRef{}, fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	lines, bad, err := jobs.RefEcommerce(f)
	if err != nil {
		return ecommerceRef{}, fmt.Errorf("bench: reference ecommerce of %s: %w", input, err)
	}
	slices.Sort(lines) // as readParts sorts; sessions hold no tab, so this is their order
	ref := ecommerceRef{lines: append(lines, badRowsLine(bad))}
	for _, l := range lines {
		fields := strings.Split(l, "\t")
		n, err := strconv.ParseInt(fields[3], 10, 64)
		if err != nil {
			return ecommerceRef{}, fmt.Errorf("bench: reference ecommerce line %q: %w", l, err)
		}
		ref.purchases += n
	}
	return ref, nil
}

// badRowsLine ends an ecommerce answer: the malformed rows counted by an
// accumulator, which must count each partition once however many
// attempts ran.
func badRowsLine(n int64) string { return "bad rows\t" + strconv.FormatInt(n, 10) }

// isPurchase keeps the rows of the ecommerce input that are purchases
// (malformed rows are not).
func isPurchase(line string) bool {
	ev, err := jobs.ParseEcommerceLine(line)
	return err == nil && ev.Type == jobs.EventPurchase
}

// narrowJob counts the purchases of input: TextFile, Filter, Count; one
// stage.
func narrowJob(input string, parts int, ref ecommerceRef) checkedJob {
	return checkedJob{
		name:       "purchases count",
		faultStage: "result",
		run: func(ctx context.Context, c *client.Context, _ string) ([]string, error) {
			n, err := client.Count(ctx, client.Filter(client.TextFile(c, input, parts), isPurchase))
			return []string{strconv.FormatInt(n, 10)}, err
		},
		want: []string{strconv.FormatInt(ref.purchases, 10)},
	}
}

// ecommerceJob is the ecommerce group-by (jobs.Ecommerce): a map stage
// that parses and combines, a shuffle, and a result stage that merges and
// writes part files. Its answer is the part files' lines, sorted, and the
// malformed rows counted.
func ecommerceJob(input string, parts int, ref ecommerceRef, read partsReader) checkedJob {
	return checkedJob{
		name:       "ecommerce",
		faultStage: "map",
		run: func(ctx context.Context, c *client.Context, out string) ([]string, error) {
			stats, err := jobs.Ecommerce(ctx, c, input, out, parts, false)
			if err != nil {
				return nil, err
			}
			lines, err := read(ctx, out)
			return append(lines, badRowsLine(stats.BadRows)), err
		},
		want: ref.lines,
	}
}

// cachedEcommerceJob is the block store's experiment
// (jobs.EcommerceCached): the purchases persisted at MemorySer and
// counted (a job of one result stage), then grouped by session from the
// cache (a map stage that reads the blocks, a result stage that writes
// part files); or, checkpointed, the same with the purchases written to
// the checkpoint store and read back from it (jobs.EcommerceCheckpointed).
// Its answer is the ecommerce job's, with the count checked against the
// reference.
func cachedEcommerceJob(input string, parts int, ref ecommerceRef, checkpointed bool, read partsReader) checkedJob {
	name := "ecommerce, purchases cached"
	if checkpointed {
		name = "ecommerce, purchases checkpointed"
	}
	return checkedJob{
		name:       name,
		faultStage: "map",
		run: func(ctx context.Context, c *client.Context, out string) ([]string, error) {
			var stats jobs.EcommerceStats
			var err error
			if checkpointed {
				stats, err = jobs.EcommerceCheckpointed(ctx, c, input, out, parts, false)
			} else {
				stats, err = jobs.EcommerceCached(ctx, c, input, out, parts, false, client.MemorySer)
			}
			if err != nil {
				return nil, err
			}
			if stats.Purchases != ref.purchases {
				return nil, fmt.Errorf("bench: counted %d cached purchases, want %d", stats.Purchases, ref.purchases)
			}
			lines, err := read(ctx, out)
			return append(lines, badRowsLine(stats.BadRows)), err
		},
		want: ref.lines,
	}
}

// wordCountJob is the word count (jobs.WordCount) of input, whose copy
// the reference reads is the local file refPath.
func wordCountJob(input, refPath string, parts int, read partsReader) (checkedJob, error) {
	f, err := os.Open(refPath)
	if err != nil {
		return checkedJob{}, fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	want, err := jobs.RefWordCount(f)
	if err != nil {
		return checkedJob{}, fmt.Errorf("bench: reference word count of %s: %w", input, err)
	}
	slices.Sort(want) // as readParts sorts
	return checkedJob{
		name:       "wordcount",
		faultStage: "map",
		run: func(ctx context.Context, c *client.Context, out string) ([]string, error) {
			if err := jobs.WordCount(ctx, c, input, out, parts); err != nil {
				return nil, err
			}
			return read(ctx, out)
		},
		want: want,
	}, nil
}

// partsReader returns the lines of a job's output, sorted: readLocalParts
// for a local directory, the S3 reader of the experiments across hosts
// (hostfaults.go).
type partsReader func(ctx context.Context, out string) ([]string, error)

// readLocalParts is readParts as a partsReader.
func readLocalParts(_ context.Context, dir string) ([]string, error) { return readParts(dir) }

// readParts returns the lines of the part files in dir, sorted.
func readParts(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "part-*"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("bench: no part files in %s", dir)
	}
	var lines []string
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		err = errors.Join(sc.Err(), f.Close())
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
	}
	slices.Sort(lines)
	return lines, nil
}
