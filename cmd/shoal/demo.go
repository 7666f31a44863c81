package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"shoal/bench"
)

// runDemo dispatches `shoal demo KIND`.
func runDemo(ctx context.Context, args []string) error {
	kinds := map[string]func(context.Context, []string) error{
		"faults": runDemoFaults,
		"soak":   runDemoSoak,
	}
	return dispatch(ctx, "shoal demo", kinds, args)
}

const demoFaultsHelp = `usage: shoal demo faults [--records N] [--hosts] [--json]

Runs fault experiments on a local cluster of 3 nodes with 2 workers each,
on generated ecommerce data. Each scenario runs its job on a fresh cluster
without a fault, then on another with one: when a worker that has finished
a task of the target stage (the narrow job's only stage, the wide job's
map stage) runs another, it is killed with SIGKILL (or its node is).

With --hosts the cluster is 3 node containers (shoal:dev, built with make
image, and MinIO for the input and the outputs) on a private Docker
network, the driver here; each run is a new application on them. Scenario
3 is not run (cluster mode's nodes always run the shuffle service), a
node killed is its container killed and started again at once, and three
scenarios take a whole host away while the map stage runs: killed
(docker kill -s KILL), paused (docker pause) or cut off (docker network
disconnect), brought back once the driver has declared it lost. Run it in
the source tree (it builds the images); everything it starts is removed
when it ends, also on an error or Ctrl-C.

Columns:
  right answer     the output under the fault equals the fault-free run's,
                   which equals the single-process reference (jobs.Ref*)
  tasks rerun      per stage, task attempts beyond the first of each
                   partition (from the event log's task_start events)
  map outputs      map task attempts started for a partition whose output
    recomputed     had already been committed
  detect           from the kill to the worker_lost (node_lost) event
  recover          from that event to the end of the last rerun attempt
                   that succeeded (the lost work is redone; the job may
                   still have tasks of its own to finish)
  total            the action's time under the fault vs without it
  recovery bound   one worker killed: total <= fault-free total + the
                   rerun attempts' durations + 1 s

flags:
`

// runDemoFaults runs `shoal demo faults`.
func runDemoFaults(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shoal demo faults", flag.ContinueOnError)
	var cfg bench.FaultsConfig
	fs.Int64Var(&cfg.Records, "records", 2_000_000, "ecommerce rows to generate (about 133 bytes each)")
	fs.IntVar(&cfg.Partitions, "partitions", 36, "partitions of the input and of the shuffle")
	seed := fs.Uint64("seed", 1, "seed of the generated input")
	fs.StringVar(&cfg.Dir, "dir", "", "keep the input, the outputs and the event logs (scenario-N-*) in this `DIR` (default a temporary directory, removed)")
	asJSON := fs.Bool("json", false, "print one JSON array of rows instead of a table")
	fs.BoolVar(&cfg.Hosts, "hosts", false, "run on 3 node containers on a private Docker network (docs/cluster.md)")
	scenarios := fs.String("scenarios", "", "run only these scenarios, e.g. 7,8,9 (default all)")
	verbose := fs.Bool("v", false, "show the workers' and node services' logs, and a failure's whole error with any Go stack")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), demoFaultsHelp)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Seed = *seed
	cfg.Log = os.Stderr
	if *verbose {
		cfg.Options.WorkerStderr = os.Stderr
	}
	for f := range strings.SplitSeq(*scenarios, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		id, err := strconv.Atoi(f)
		if err != nil {
			return usageErrorf("shoal demo faults", "--scenarios %q: want numbers separated by commas", *scenarios)
		}
		cfg.Scenarios = append(cfg.Scenarios, id)
	}
	rows, err := bench.RunFaults(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := json.NewEncoder(os.Stdout).Encode(rows); err != nil {
			return err
		}
	} else {
		printFaultRows(os.Stdout, rows)
	}
	var bad []string
	for _, r := range rows {
		if r.Error != "" || r.RightAnswer != nil && !*r.RightAnswer {
			bad = append(bad, fmt.Sprint(r.ID))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("scenarios %s: wrong answer or not carried out", strings.Join(bad, ", "))
	}
	return nil
}

// printFaultRows prints the table of `shoal demo faults`, then what each
// fault was.
func printFaultRows(w io.Writer, rows []bench.FaultRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tright answer\ttasks rerun\tmap outputs recomputed\tcached partitions recomputed\tdetect\trecover\ttotal vs fault-free\trecovery bound")
	for _, r := range rows {
		name := fmt.Sprintf("%d. %s", r.ID, r.Scenario)
		switch {
		case r.NotBuilt != "":
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\n", name, r.NotBuilt)
			continue
		case r.Error != "":
			fmt.Fprintf(tw, "%s\tnot run: %s\t-\t-\t-\t-\t-\t-\t-\n", name, r.Error)
			continue
		}
		answer := "yes"
		if !*r.RightAnswer {
			answer = "NO: " + r.AnswerNote
		}
		var reruns []string
		for _, s := range r.TasksRerun {
			reruns = append(reruns, fmt.Sprintf("stage %d: %d", s.Stage, s.Tasks))
		}
		detect := "not seen"
		if r.DetectMs >= 0 {
			detect = fmt.Sprintf("%d ms", r.DetectMs)
		}
		total := fmt.Sprintf("%.1f s vs %.1f s (%+.1f s)", r.Seconds, r.BaselineSeconds, r.Seconds-r.BaselineSeconds)
		bound := "-"
		if b := r.Bound; b != nil {
			held, cmp := "yes", "≤"
			if !b.Held {
				held, cmp = "NO", ">"
			}
			bound = fmt.Sprintf("%s (%.1f %s %.1f s)", held, r.Seconds, cmp, b.Seconds)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%d ms\t%s\t%s\n", name, answer, strings.Join(reruns, ", "), r.MapOutputsRecomputed, r.CachedRecomputed, detect, r.RecoverMs, total, bound)
	}
	tw.Flush()
	fmt.Fprintln(w)
	for _, r := range rows {
		if r.Fault != "" {
			fmt.Fprintf(w, "%d: %s\n", r.ID, r.Fault)
		}
	}
}

const demoSoakHelp = `usage: shoal demo soak [--duration D] [--seed S] [--hosts]

Repeats wide jobs (the ecommerce group-by and a word count, on generated
inputs) on a local cluster of 3 nodes with 2 workers each, while killing
random workers and, in one run out of five, a random node, restarted once
the job ends. Faults come at random times within a job's fault-free
duration. Every answer is checked against the single-process reference;
a job still running after --job-timeout is reported as hung. The cluster
is replaced every 25 runs and after a failed job. Prints the runs, the
faults injected, the wrong answers and the failed jobs (with their
errors); exits non-zero if there is any of either.

With --hosts (make soak-cluster) the cluster is 3 node containers on a
private Docker network with MinIO for the inputs and outputs (as for
demo faults --hosts); a driver runs 25 jobs on them, then another; in
one run out of five a random host is killed (docker kill -s KILL),
paused (docker pause) or cut off (docker network disconnect), and
brought back once the job ends. It ends with one summary line: jobs,
worker kills, host kills, pauses, partitions, wrong answers, failed jobs.

flags:
`

// runDemoSoak runs `shoal demo soak`.
func runDemoSoak(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shoal demo soak", flag.ContinueOnError)
	var cfg bench.SoakConfig
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Minute, "how long to keep starting jobs")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of the faults' choices and times (default: from the clock, printed)")
	fs.DurationVar(&cfg.JobTimeout, "job-timeout", 2*time.Minute, "a job still running after this is reported as hung")
	asJSON := fs.Bool("json", false, "print the summary as one JSON object")
	fs.BoolVar(&cfg.Hosts, "hosts", false, "run on 3 node containers on a private Docker network (docs/cluster.md)")
	verbose := fs.Bool("v", false, "show the workers' and node services' logs, and a failure's whole error with any Go stack")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), demoSoakHelp)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	cfg.Log = os.Stderr
	if *verbose {
		cfg.Options.WorkerStderr = os.Stderr
	}
	res, err := bench.RunSoak(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
			return err
		}
	} else {
		printSoakResult(os.Stdout, res)
	}
	if n := len(res.Wrong) + len(res.Failed); n > 0 {
		return fmt.Errorf("%d wrong answers, %d failed jobs (seed %d)", len(res.Wrong), len(res.Failed), res.Seed)
	}
	return nil
}

func printSoakResult(w io.Writer, r *bench.SoakResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "seed\t%d\n", r.Seed)
	if r.Hosts {
		fmt.Fprintf(tw, "time\t%.0f s (drivers started on the containers: %d)\n", r.Seconds, r.Clusters)
	} else {
		fmt.Fprintf(tw, "time\t%.0f s (clusters started: %d)\n", r.Seconds, r.Clusters)
	}
	var jobs []string
	for _, j := range r.Jobs {
		jobs = append(jobs, fmt.Sprintf("%s %d", j.Job, j.Runs))
	}
	fmt.Fprintf(tw, "runs\t%d (%s)\n", r.Runs, strings.Join(jobs, ", "))
	if r.Hosts {
		fmt.Fprintf(tw, "faults injected\t%d workers, %d hosts: %d killed, %d paused, %d cut off (%d brought back)\n",
			r.WorkersKilled, r.NodesKilled, r.HostsKilled, r.HostsPaused, r.HostsCutOff, r.NodesRestarted)
	} else {
		fmt.Fprintf(tw, "faults injected\t%d workers, %d nodes (%d restarted)\n", r.WorkersKilled, r.NodesKilled, r.NodesRestarted)
	}
	fmt.Fprintf(tw, "wrong answers\t%d\n", len(r.Wrong))
	fmt.Fprintf(tw, "failed jobs\t%d\n", len(r.Failed))
	tw.Flush()
	for _, f := range r.Wrong {
		fmt.Fprintf(w, "  wrong: run %d (%s; %s): %s\n", f.Run, f.Job, f.Faults, f.Error)
	}
	for _, f := range r.Failed {
		fmt.Fprintf(w, "  failed: run %d (%s; %s): %s\n", f.Run, f.Job, f.Faults, f.Error)
	}
	if !r.Hosts {
		return
	}
	fmt.Fprintf(w, "soak-cluster: %d jobs, %d worker kills, %d host kills, %d pauses, %d partitions, %d wrong answers, %d failed jobs\n",
		r.Runs, r.WorkersKilled, r.HostsKilled, r.HostsPaused, r.HostsCutOff, len(r.Wrong), len(r.Failed))
}
