// Command shoal is the one binary of shoal: the node service, the
// benchmark, and (re-executed) the workers. Each role lives in its own file
// with its own flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"shoal/client"
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

func commands() map[string]command {
	return map[string]command{
		"node":    {"run a node service: shuffle files, catalogue, fetch", runNode},
		"run":     {"run a built-in job (wordcount, ecommerce, pagerank, sort) on a local cluster", runRun},
		"gen":     {"generate job inputs (gen text|ecommerce|graph|sort)", runGen},
		"bench":   {"run a benchmark (bench shuffle ...)", runBench},
		"demo":    {"run fault experiments on a local cluster (demo faults|soak)", runDemo},
		"history": {"serve the UI and REST API of the event logs in a directory", runHistory},
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: shoal COMMAND [flags]\n\ncommands:")
	cmds := commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(os.Stderr, "\n'shoal COMMAND -h' lists a command's flags.")
}

func main() {
	// A worker is this binary re-executed by the launcher; its environment
	// says so and it has no command line of its own.
	if ran, err := runWorkerIfAsked(client.Runner()); ran {
		if err != nil {
			fmt.Fprintf(os.Stderr, "shoal worker: %v\n", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, ok := commands()[os.Args[1]]
	if !ok {
		if os.Args[1] != "-h" && os.Args[1] != "--help" && os.Args[1] != "help" {
			fmt.Fprintf(os.Stderr, "shoal: unknown command %q\n\n", os.Args[1])
		}
		usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cmd.run(ctx, os.Args[2:])
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "shoal %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
