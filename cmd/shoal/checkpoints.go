package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"shoal/checkpoint"
)

// checkpointsConfig holds the flags of `shoal checkpoints list|prune`.
type checkpointsConfig struct {
	dir, endpoint  string
	app, run, job  string
	abandonedAfter time.Duration
	oldLayout      bool
	dryRun         bool
}

func (c *checkpointsConfig) register(fs *flag.FlagSet, prune bool) {
	fs.StringVar(&c.dir, "checkpoint-dir", "", "checkpoint store: s3://bucket/prefix (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), file:///path or a path (required)")
	fs.StringVar(&c.endpoint, "s3-endpoint", "", "`URL` of the S3-compatible service of an s3:// --checkpoint-dir (default $AWS_ENDPOINT_URL)")
	fs.StringVar(&c.app, "app", "", "only the runs of this application")
	if !prune {
		return
	}
	fs.StringVar(&c.run, "run", "", "only this run `ID` (the part after APP/)")
	fs.StringVar(&c.job, "job", "", "only the checkpoints of this job (e.g. pagerank); the runs keep their markers")
	fs.DurationVar(&c.abandonedAfter, "abandoned-after", 0, "also prune the runs that never ended (driver killed) and wrote nothing for this long, e.g. 24h (by this machine's clock against the store's; 0: never)")
	fs.BoolVar(&c.oldLayout, "old-layout", false, "also delete the checkpoints at the store's root, written before checkpoints belonged to runs")
	fs.BoolVar(&c.dryRun, "dry-run", false, "say what would be deleted, delete nothing")
}

// runCheckpoints is `shoal checkpoints list|prune --checkpoint-dir URI`.
func runCheckpoints(ctx context.Context, args []string) error {
	usage := "usage: shoal checkpoints list|prune --checkpoint-dir URI [flags]"
	if len(args) == 0 || (args[0] != "list" && args[0] != "prune") {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") || args[0] == "help" {
			fmt.Fprintf(os.Stdout, "%s\n\n  list   show the runs in the store and their checkpoints\n  prune  delete the checkpoints of runs that have finished\n\n'shoal checkpoints list -h' lists a subcommand's flags.\n", usage)
			return flag.ErrHelp
		}
		return usageErrorf("shoal checkpoints", "unknown subcommand %q (want list or prune)", args[0])
	}
	sub := args[0]
	fs := flag.NewFlagSet("shoal checkpoints "+sub, flag.ContinueOnError)
	var c checkpointsConfig
	c.register(fs, sub == "prune")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: shoal checkpoints %s --checkpoint-dir URI [flags]\n\nflags:\n", sub)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	var errs []error
	if c.dir == "" {
		errs = append(errs, errors.New("--checkpoint-dir is required"))
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	opts := checkpoint.PruneRunsOptions{App: c.app, Run: c.run, Job: c.job, AbandonedAfter: c.abandonedAfter, OldLayout: c.oldLayout, DryRun: c.dryRun}
	if sub == "prune" {
		if err := opts.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	st, err := checkpoint.Open(ctx, c.dir, checkpoint.Options{Endpoint: c.endpoint})
	if err != nil {
		return err
	}
	if sub == "list" {
		return listRuns(ctx, os.Stdout, st, c.app)
	}
	res, err := checkpoint.PruneRuns(ctx, st, opts)
	printPruned(os.Stdout, res, c.dryRun)
	return err
}

// listRuns prints the runs of st (those of app, if set) and their
// checkpoints.
func listRuns(ctx context.Context, w io.Writer, st checkpoint.Store, app string) error {
	runs, err := checkpoint.Runs(ctx, st)
	if err != nil {
		return err
	}
	shown := 0
	for _, r := range runs {
		if app != "" && r.ID.App != app {
			continue
		}
		shown++
		if r.ID.IsZero() {
			fmt.Fprintf(w, "(store root: checkpoints written before they belonged to runs; --resume does not read them, prune --old-layout deletes them)\n")
		} else {
			fmt.Fprintf(w, "run %s  %s  %d objects, %s\n", r.ID, runStatus(r), r.Objects, bytesString(r.Bytes))
		}
		for _, m := range r.Checkpoints {
			var size int64
			for _, p := range m.Partitions {
				size += p.Size
			}
			fmt.Fprintf(w, "  %-28s seq %-6d %d partitions, %s, created %s", m.Name, m.Seq, m.NumPartitions, bytesString(size), m.Created.Format(time.RFC3339))
			if m.Job != "" {
				fmt.Fprintf(w, ", job %s", m.Job)
			}
			if m.Input != "" {
				fmt.Fprintf(w, ", input %s", m.Input)
			}
			fmt.Fprintln(w)
		}
		for _, name := range r.Incomplete {
			fmt.Fprintf(w, "  %-28s incomplete (no manifest: being written, or its writer failed)\n", name)
		}
		for _, u := range r.Uses {
			fmt.Fprintf(w, "  reads %s\n", u)
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  problem: %s\n", p)
		}
	}
	if shown == 0 {
		fmt.Fprintf(w, "no runs in %s\n", st)
	}
	return nil
}

func runStatus(r *checkpoint.Run) string {
	started := ""
	if r.Marker != nil {
		started = "started " + r.Marker.Started.Format(time.RFC3339)
		if r.Marker.Host != "" {
			started += fmt.Sprintf(" on %s (pid %d)", r.Marker.Host, r.Marker.PID)
		}
		started += ", "
	}
	if r.Finished() {
		return started + "finished " + r.End.Ended.Format(time.RFC3339)
	}
	return started + "not finished (running, or its driver died; last write " + r.Newest.Format(time.RFC3339) + ")"
}

func printPruned(w io.Writer, res checkpoint.PruneRunsResult, dryRun bool) {
	deleted, removed, summary := "deleted", "removed", "%d checkpoints (%s) deleted, %d runs removed, %d checkpoints kept\n"
	if dryRun {
		deleted, removed, summary = "would delete", "would remove", "dry run: %d checkpoints (%s) would be deleted, %d runs removed, %d checkpoints kept\n"
	}
	for _, ref := range res.Deleted {
		fmt.Fprintf(w, "%s %s\n", deleted, ref)
	}
	for _, k := range res.Kept {
		fmt.Fprintf(w, "kept %s: run %s, not finished, reads it\n", k.Ref, k.ReadBy)
	}
	for _, id := range res.Removed {
		fmt.Fprintf(w, "%s run %s\n", removed, id)
	}
	fmt.Fprintf(w, summary, len(res.Deleted), bytesString(res.Bytes), len(res.Removed), len(res.Kept))
}

func bytesString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
