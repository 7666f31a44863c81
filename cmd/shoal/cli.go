package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
)

// Exit statuses of shoal.
const (
	exitOK      = 0 // done, or the usage that --help asked for
	exitFailure = 1 // the command ran and failed (a job, a missing input file)
	exitUsage   = 2 // the command line is wrong (bad flag, unknown job)
)

// usageError is a wrong command line: shoal prints it as one line with a
// pointer to the command's -h and exits with exitUsage.
type usageError struct {
	err  error
	help string // the command whose -h lists what is allowed, e.g. "shoal run"
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// usageErrorf makes a usageError of command help.
func usageErrorf(help, format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...), help: help}
}

// parseFlags parses args into fs. -h or --help prints fs's usage on
// stdout and returns flag.ErrHelp (exit 0); a bad flag returns a
// *usageError naming it, without the usage (one line, exit 2). It adds
// -v to fs if fs has none: every command takes it (exitLine).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if fs.Lookup("v") == nil {
		fs.Bool("v", false, "on failure, print the whole error with any Go stack")
	}
	usage := fs.Usage
	if usage == nil {
		usage = func() {
			fmt.Fprintf(fs.Output(), "usage of %s:\n", fs.Name())
			fs.PrintDefaults()
		}
	}
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return flag.ErrHelp
	case err != nil:
		return &usageError{err: err, help: fs.Name()}
	}
	return nil
}

// parseWordAndFlags parses a command line of one word (a job, a kind of
// input) and flags, the word before or after the flags. It returns the
// word ("" if none) and the arguments left after both.
func parseWordAndFlags(fs *flag.FlagSet, args []string) (word string, rest []string, err error) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		word, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return word, nil, err
	}
	if word == "" && fs.NArg() > 0 {
		word = fs.Arg(0)
		if err := parseFlags(fs, fs.Args()[1:]); err != nil {
			return word, nil, err
		}
	}
	return word, fs.Args(), nil
}

// verboseRequested reports whether a command line asks for -v (the
// forms the flag package accepts for a bool), before any "--".
func verboseRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-v", "--v", "-v=true", "--v=true", "-v=1", "--v=1":
			return true
		}
	}
	return false
}

// goStack finds the start of a Go stack trace ("goroutine 42 [running]:")
// in an error's text: a panic in a worker reaches the driver as text.
var goStack = regexp.MustCompile(`(?m)^goroutine \d+ \[`)

// exitLine writes what a person sees when command name ends with err and
// returns the exit status. Help asked for is exitOK and prints nothing
// more. Each problem of the error (of a joined error, each of its parts)
// is one line, "shoal NAME: ..."; a usage error's lines name the command
// whose line was wrong ("shoal bench reduce: ...") and the last says
// which -h lists what it takes. Without verbose, a Go stack trace in
// the error's text (a panic in a worker reaches the driver as text) is
// cut; with verbose the whole text is written.
func exitLine(w io.Writer, name string, err error, verbose bool) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	status := exitFailure
	var ue *usageError
	if errors.As(err, &ue) {
		status = exitUsage
	}
	prefix, hint := "shoal "+name, ""
	problems := []error{err}
	if ue != nil {
		problems = []error{ue.err}
		if ue.help != "" {
			prefix, hint = ue.help, fmt.Sprintf("; see '%s -h'", ue.help)
		}
	}
	if j, ok := problems[0].(interface{ Unwrap() []error }); ok {
		problems = j.Unwrap()
	}
	for i, p := range problems {
		msg := p.Error()
		if loc := goStack.FindStringIndex(msg); loc != nil && !verbose {
			msg = strings.TrimRight(msg[:loc[0]], " \n") + " (-v shows the Go stack)"
		}
		if i == len(problems)-1 {
			msg += hint
		}
		fmt.Fprintf(w, "%s: %s\n", prefix, msg)
	}
	return status
}

// recoverPanic turns a panic of the command into one line (the stack with
// verbose) and exitFailure. main defers it; the command's own deferred
// cleanups (a cluster's Close) have run by then.
func recoverPanic(w io.Writer, name string, verbose bool, exit func(int)) {
	r := recover()
	if r == nil {
		return
	}
	if verbose {
		fmt.Fprintf(w, "shoal %s: internal error: %v\n\n%s", name, r, debug.Stack())
	} else {
		fmt.Fprintf(w, "shoal %s: internal error: %v (-v shows the Go stack)\n", name, r)
	}
	exit(exitFailure)
}

// dispatch runs the subcommand of a command that has kinds (`shoal bench
// shuffle`, `shoal demo faults`): no kind is a usage error, -h or --help
// lists the kinds (exit 0), an unknown kind is a usage error naming it.
func dispatch(ctx context.Context, name string, kinds map[string]func(context.Context, []string) error, args []string) error {
	names := slices.Sorted(maps.Keys(kinds))
	list := strings.Join(names, "|")
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-h" || a == "-help" || a == "--help":
			fmt.Printf("usage: %s %s [flags]\n\n'%s KIND -h' lists a kind's flags.\n", name, list, name)
			return flag.ErrHelp
		case kinds[a] != nil:
			return kinds[a](ctx, args[1:])
		default:
			return usageErrorf(name, "unknown kind %q (want %s)", a, list)
		}
	}
	return usageErrorf(name, "missing the kind (%s)", list)
}

// setUsage makes fs's usage the synopsis line, then its flags.
func setUsage(fs *flag.FlagSet, synopsis string) {
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
}
