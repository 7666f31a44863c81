package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"shoal/jobs"
)

// genConfig holds the flags of `shoal gen KIND`.
type genConfig struct {
	records int64
	output  string
	seed    uint64
	quiet   bool
}

func (c *genConfig) register(fs *flag.FlagSet) {
	fs.Int64Var(&c.records, "records", 1_000_000, "records to write: lines (text), rows (ecommerce), edges (graph), 100-byte records (sort)")
	fs.StringVar(&c.output, "output", "", "file to write, or - for standard output (required)")
	fs.Uint64Var(&c.seed, "seed", 1, "random seed: the same seed gives the same bytes")
	fs.BoolVar(&c.quiet, "q", false, "do not report what was written")
}

// runGen is `shoal gen text|ecommerce|graph|sort --records N --output PATH
// [--seed S]`. The file appears under its name only once complete.
func runGen(ctx context.Context, args []string) error {
	kinds := strings.Join(jobs.GenKinds(), "|")
	fs := flag.NewFlagSet("shoal gen", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: shoal gen %s --records N --output PATH [--seed S]\n", kinds)
		fs.PrintDefaults()
	}
	var c genConfig
	c.register(fs)
	kind, rest, err := parseWordAndFlags(fs, args)
	if err != nil {
		return err
	}
	var problems []error
	if kind == "" {
		problems = append(problems, fmt.Errorf("missing the kind of input (%s)", kinds))
	} else if !slices.Contains(jobs.GenKinds(), kind) {
		problems = append(problems, fmt.Errorf("unknown kind of input %q (want %s)", kind, kinds))
	}
	if len(rest) > 0 {
		problems = append(problems, fmt.Errorf("unexpected arguments %q", rest))
	}
	if c.output == "" {
		problems = append(problems, errors.New("missing --output PATH (or --output - for standard output)"))
	}
	if c.records < 0 {
		problems = append(problems, fmt.Errorf("--records must be >= 0, got %d", c.records))
	}
	if err := errors.Join(problems...); err != nil {
		return &usageError{err: err, help: "shoal gen"}
	}

	start := time.Now()
	var n int64
	if c.output == "-" {
		cw := &countingWriter{ctx: ctx, w: os.Stdout}
		err = jobs.Generate(kind, cw, c.records, c.seed)
		n = cw.n
	} else {
		n, err = genToFile(ctx, kind, c)
	}
	if err != nil {
		return err
	}
	if !c.quiet && c.output != "-" {
		secs := time.Since(start).Seconds()
		fmt.Fprintf(os.Stderr, "shoal gen %s: wrote %d records, %.1f MB, to %s in %.2fs (%.0f MB/s)\n",
			kind, c.records, float64(n)/1e6, c.output, secs, float64(n)/1e6/max(secs, 1e-9))
	}
	return nil
}

// genToFile writes into a temporary file beside c.output and renames it
// into place once complete and synced; on any error, or when ctx ends, it
// removes the temporary file and leaves c.output as it was.
func genToFile(ctx context.Context, kind string, c genConfig) (n int64, err error) {
	dir, base := filepath.Split(c.output)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("cannot create a file beside %s: %w", c.output, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	cw := &countingWriter{ctx: ctx, w: f}
	if err := jobs.Generate(kind, cw, c.records, c.seed); err != nil {
		return cw.n, fmt.Errorf("writing %s: %w", c.output, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return cw.n, err
	}
	if err := f.Sync(); err != nil {
		return cw.n, fmt.Errorf("writing %s: %w", c.output, err)
	}
	if err := f.Close(); err != nil {
		return cw.n, fmt.Errorf("writing %s: %w", c.output, err)
	}
	if err := os.Rename(f.Name(), c.output); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

// countingWriter counts the bytes written and fails once ctx is done, so
// an interrupted generator stops at its next buffer flush.
type countingWriter struct {
	ctx context.Context
	w   io.Writer
	n   int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := w.w.Write(p)
	w.n += int64(n)
	return n, err
}
