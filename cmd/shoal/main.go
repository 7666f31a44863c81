package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"node":        {"run a node service: shuffle files, catalogue, fetch", runNode},
		"run":         {"run a built-in job (wordcount, ecommerce, pagerank, sort) on a local cluster", runRun},
		"gen":         {"generate job inputs (gen text|ecommerce|graph|sort)", runGen},
		"bench":       {"run a benchmark (bench shuffle ...)", runBench},
		"demo":        {"run fault experiments on a local cluster (demo faults|soak)", runDemo},
		"checkpoints": {"list the runs of a checkpoint store, prune finished ones (checkpoints list|prune)", runCheckpoints},
		"history":     {"serve the UI and REST API of the event logs in a directory", runHistory},
		"certs":       {"make a cluster CA and node and client certificates for mutual TLS (certs init|node|client)", runCerts},
		"s3":          {"copy inputs to and outputs from an S3-compatible service (s3 mb|ls|cp|cat)", runS3},
	}
}

// usage lists the commands on w.
func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: shoal COMMAND [flags]\n\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\n'shoal COMMAND -h' (or 'shoal help COMMAND') lists a command's flags; -v after a command\nprints a failure's whole error with any Go stack.")
}

func main() {
	// A worker is this binary re-executed by the launcher; its environment
	// says so and it has no command line of its own.
	if ran, err := runWorkerIfAsked(); ran {
		if err != nil {
			fmt.Fprintf(os.Stderr, "shoal worker: %v\n", err)
			os.Exit(exitFailure)
		}
		return
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args (without the program's name) and
// returns the exit status: exitOK, exitFailure when the command failed,
// exitUsage when the command line is wrong. Errors and recovered panics
// are written to stderr as one line each (exitLine).
func run(args []string, stdout, stderr io.Writer) (status int) {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name, args := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	case "help":
		if len(args) == 0 {
			usage(stdout)
			return exitOK
		}
		name, args = args[0], []string{"-h"}
	}
	cmd, ok := commands()[name]
	if !ok {
		fmt.Fprintf(stderr, "shoal: unknown command %q ('shoal --help' lists the commands)\n", name)
		return exitUsage
	}
	verbose := verboseRequested(args)
	defer recoverPanic(stderr, name, verbose, func(s int) { status = s })
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return exitLine(stderr, name, cmd.run(ctx, args), verbose)
}
