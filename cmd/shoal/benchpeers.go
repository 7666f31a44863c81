package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"shoal/bench"
)

// runBenchPeers runs `shoal bench peers`: shoal side by side with
// networkx, GNU sort, DuckDB, and itself on one file or few tasks.
func runBenchPeers(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shoal bench peers", flag.ContinueOnError)
	setUsage(fs, "shoal bench peers [--quick] [--results DIR] [--runs 3] [--rows "+strings.Join(bench.PeerRowNames(), ",")+"]")
	cfg := bench.PeersConfig{Progress: os.Stderr}
	fs.BoolVar(&cfg.Quick, "quick", false, "small inputs: the whole comparison in seconds (a check of the harness, not a measurement)")
	fs.IntVar(&cfg.Runs, "runs", 3, "runs of each side, alternately; medians are reported")
	results := fs.String("results", bench.DefaultPeersResults, "write results.json, results.md, machine.md and ratios.svg to this `DIR`")
	rows := fs.String("rows", "", "run only these rows, comma-separated (default all: "+strings.Join(bench.PeerRowNames(), ",")+")")
	fs.StringVar(&cfg.DuckCmp, "duckcmp", "bin/duckcmp", "the DuckDB side's binary (make bench-peers builds bench/duckcmp there); the ecommerce row is skipped without it")
	fs.StringVar(&cfg.Python, "python", "/usr/bin/python3", "the networkx side's Python (with Debian's python3-networkx and python3-scipy)")
	fs.StringVar(&cfg.Dir, "dir", "", "where the inputs and outputs go (default a temporary directory, removed; the full size needs about 20 GB)")
	merge := fs.Bool("merge", false, "keep the rows of --results' results.json that this run does not run (with --rows: measure some rows again)")
	report := fs.Bool("report", false, "only write results.md, machine.md and ratios.svg again from --results' results.json")
	verbose := fs.Bool("v", false, "show shoal's logs, and a failure's whole error with any Go stack")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf("shoal bench peers", "unexpected arguments %q", fs.Args())
	}
	if *report {
		res, err := bench.LoadPeersResults(*results)
		if err != nil {
			return err
		}
		return bench.WritePeersReport(*results, res)
	}
	if *rows != "" {
		for _, r := range strings.Split(*rows, ",") {
			r = strings.TrimSpace(r)
			if !slices.Contains(bench.PeerRowNames(), r) {
				return usageErrorf("shoal bench peers", "--rows: no row %q (want some of %s)", r, strings.Join(bench.PeerRowNames(), ","))
			}
			cfg.Rows = append(cfg.Rows, r)
		}
	}
	if *verbose {
		cfg.ShoalStderr = os.Stderr
	}
	if cfg.DuckCmp != "" {
		if abs, err := filepath.Abs(cfg.DuckCmp); err == nil {
			cfg.DuckCmp = abs
		}
	}
	cfg.Command = "shoal bench peers " + strings.Join(args, " ")
	var old *bench.PeersResults
	if *merge {
		var err error
		if old, err = bench.LoadPeersResults(*results); err != nil {
			return fmt.Errorf("--merge: %w", err)
		}
	}
	res, err := bench.RunPeers(ctx, cfg)
	if res != nil && old != nil {
		res = bench.MergePeersResults(old, res)
	}
	if res != nil {
		if werr := bench.WritePeersReport(*results, res); werr != nil {
			return errors.Join(err, werr)
		}
		fmt.Fprintf(os.Stderr, "peers: results in %s\n", *results)
		for _, r := range res.Rows {
			switch {
			case r.Skipped != "":
				fmt.Printf("%-13s skipped: %s\n", r.Name, r.Skipped)
			case r.Error != "":
				fmt.Printf("%-13s failed\n", r.Name)
			default:
				fmt.Printf("%-13s %s %.4g %s, %s %.4g %s: %.2f×, outputs equal: %v\n", r.Name,
					r.Shoal.Name, r.Shoal.Median, r.Unit, r.Peer.Name, r.Peer.Median, r.Unit, r.Ratio, r.Equal)
			}
		}
	}
	return err
}

// runBenchTasks runs `shoal bench tasks`: one job of many small tasks,
// timed without the cluster's start.
func runBenchTasks(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shoal bench tasks", flag.ContinueOnError)
	setUsage(fs, "shoal bench tasks [--maps M] [--reduces R] [--records N] [--narrow] [--json] [--output FILE] [--cpuprofile FILE]")
	var cfg bench.TasksConfig
	fs.IntVar(&cfg.Maps, "maps", 2000, "map tasks (partitions of the input)")
	fs.IntVar(&cfg.Reduces, "reduces", 2000, "reduce tasks (partitions of the ReduceByKey)")
	fs.Int64Var(&cfg.Records, "records", 20_000, "records (i, 1), each its own key")
	fs.BoolVar(&cfg.Narrow, "narrow", false, "one stage of --maps narrow tasks (a Map and a Count) instead of a ReduceByKey")
	asJSON := fs.Bool("json", false, "print one JSON object")
	output := fs.String("output", "", "also write the JSON object to this `FILE` (which must not exist)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the driver process to this `FILE` (the workers': SHOAL_CPUPROFILE_DIR)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *output != "" {
		if _, err := os.Lstat(*output); err == nil {
			return fmt.Errorf("--output %s exists", *output)
		}
	}
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	res, err := bench.RunTasks(ctx, cfg)
	if err != nil {
		return err
	}
	js, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if *output != "" {
		tmp := *output + ".tmp"
		if err := os.WriteFile(tmp, append(js, '\n'), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, *output); err != nil {
			return err
		}
	}
	if *asJSON {
		fmt.Printf("%s\n", js)
		return nil
	}
	fmt.Printf("%s job: %d tasks over %d records in %.3fs: %.3f ms per task (count %d, right)\n",
		res.Kind, res.Tasks, res.Records, res.Seconds, res.MsPerTask, res.Count)
	return nil
}
