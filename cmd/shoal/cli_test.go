package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"shoal/internal/testbin"
)

// TestCLI runs the built binary as a person would and checks its exit
// status and what it writes: help on stdout with status 0, a wrong
// command line as one line with status 2, a failure as one line with
// status 1, and a Go stack only with -v.
func TestCLI(t *testing.T) {
	bin := testbin.Shoal(t)
	dir := t.TempDir()
	graph := filepath.Join(dir, "graph.txt")
	// Line 5 has three fields.
	if err := os.WriteFile(graph, []byte("# a graph\n1 2\n2 3\n\n3 1 x\n1 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-such-graph.txt")

	type result struct {
		status         int
		stdout, stderr string
	}
	run := func(t *testing.T, args ...string) result {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("shoal %q: %v", args, err)
		}
		return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
	}
	// errorLines are the lines of stderr that report an error ("shoal
	// CMD...: "), leaving out a job's progress lines.
	errorLines := func(stderr string) []string {
		var out []string
		for _, l := range strings.Split(stderr, "\n") {
			if strings.HasPrefix(l, "shoal ") || strings.HasPrefix(l, "shoal:") {
				out = append(out, l)
			}
		}
		return out
	}

	t.Run("help", func(t *testing.T) {
		help := [][]string{{"--help"}, {"-h"}, {"help"}}
		for name := range commands() {
			help = append(help, []string{name, "--help"}, []string{name, "-h"}, []string{"help", name})
		}
		for _, kind := range []string{"shuffle", "reduce", "sort", "cache", "checkpoint", "pagerank", "peers", "tasks"} {
			help = append(help, []string{"bench", kind, "--help"})
		}
		for _, kind := range []string{"faults", "soak"} {
			help = append(help, []string{"demo", kind, "-h"})
		}
		help = append(help, []string{"run", "pagerank", "--help"}, []string{"gen", "graph", "-h"})
		for _, args := range help {
			r := run(t, args...)
			// shoal node's usage goes to stderr (its flags are the node
			// service's, shared with user programs); every other on stdout.
			if r.status != 0 || !strings.Contains(r.stdout+r.stderr, "usage") {
				t.Errorf("shoal %s: status %d, stdout %q, stderr %q; want the usage and status 0", strings.Join(args, " "), r.status, r.stdout, r.stderr)
			}
			if args[0] != "node" && !(args[0] == "help" && len(args) > 1 && args[1] == "node") && r.stderr != "" {
				t.Errorf("shoal %s: wrote %q on stderr", strings.Join(args, " "), r.stderr)
			}
		}
	})

	tests := []struct {
		name   string
		args   []string
		status int
		want   []string // in the one error line
	}{
		{"no command", nil, 2, nil},
		{"unknown command", []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`, "shoal --help"}},
		{"unknown flag", []string{"run", "pagerank", "--input", graph, "--output", "out", "--iterationz", "3"}, 2, []string{"shoal run:", "-iterationz", "shoal run -h"}},
		{"bad flag value", []string{"bench", "reduce", "--records", "many"}, 2, []string{"shoal bench reduce:", `"many"`, "-records"}},
		{"unknown job", []string{"run", "pagerankk", "--input", graph, "--output", "out"}, 2, []string{"shoal run:", `unknown job "pagerankk"`, "wordcount"}},
		{"unknown bench kind", []string{"bench", "shufle"}, 2, []string{"shoal bench:", `unknown kind "shufle"`}},
		{"unknown peer row", []string{"bench", "peers", "--rows", "sort,srot"}, 2, []string{"shoal bench peers:", `--rows: no row "srot"`, "tasks-wide"}},
		{"missing input file", []string{"run", "wordcount", "--input", missing, "--output", "out"}, 1, []string{"shoal run:", missing, "does not exist"}},
		{"malformed graph line", []string{"run", "pagerank", "--input", graph, "--output", "ranks", "--iterations", "2", "--partitions", "2"}, 1,
			[]string{"shoal run: pagerank:", "input " + graph + " line 5:", `"3 1 x" has 3 fields`, "-v shows the Go stack"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.args...)
			if r.status != tc.status {
				t.Errorf("status %d, want %d; stderr:\n%s", r.status, tc.status, r.stderr)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic(") {
				t.Errorf("a Go stack without -v:\n%s", r.stderr)
			}
			if tc.want == nil {
				return
			}
			lines := errorLines(r.stderr)
			if len(lines) != 1 {
				t.Fatalf("%d error lines, want 1:\n%s", len(lines), r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("error line %q does not say %q", lines[0], w)
				}
			}
		})
	}

	t.Run("-v shows the stack", func(t *testing.T) {
		r := run(t, "run", "pagerank", "--input", graph, "--output", "ranks-v", "--iterations", "2", "--partitions", "2", "-v")
		if r.status != 1 || !strings.Contains(r.stderr, "line 5:") || !strings.Contains(r.stderr, "goroutine ") || !strings.Contains(r.stderr, "jobs.parseEdge") {
			t.Errorf("status %d, want 1 and the stack of the panic in jobs.parseEdge; stderr:\n%s", r.status, r.stderr)
		}
	})
}

func TestExitLine(t *testing.T) {
	stack := "panic: bad row\n\ngoroutine 7 [running]:\nmain.f()\n\t/x.go:1 +0x1\n"
	tests := []struct {
		name    string
		err     error
		verbose bool
		status  int
		want    string
	}{
		{"nil", nil, false, 0, ""},
		{"help", flag.ErrHelp, false, 0, ""},
		{"failure", errors.New("input x does not exist"), false, 1, "shoal run: input x does not exist\n"},
		{"usage", usageErrorf("shoal run", "unknown job %q", "x"), false, 2, "shoal run: unknown job \"x\"; see 'shoal run -h'\n"},
		{"joined usage problems, one line each", &usageError{err: errors.Join(errors.New("--input is required"), errors.New("--output is required")), help: "shoal run"}, false, 2,
			"shoal run: --input is required\nshoal run: --output is required; see 'shoal run -h'\n"},
		{"stack cut", fmt.Errorf("stage 1: last error: %s", stack), false, 1, "shoal run: stage 1: last error: panic: bad row (-v shows the Go stack)\n"},
		{"stack kept with -v", fmt.Errorf("stage 1: last error: %s", stack), true, 1, "shoal run: stage 1: last error: " + stack + "\n"},
		{"other lines kept", errors.New("node exited; its stderr ends with:\nbind: address in use"), false, 1, "shoal run: node exited; its stderr ends with:\nbind: address in use\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			if status := exitLine(&b, "run", tc.err, tc.verbose); status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			if b.String() != tc.want {
				t.Errorf("wrote %q, want %q", b.String(), tc.want)
			}
		})
	}
}

// A panic of a command is one line and status 1; its stack only with -v.
func TestRecoverPanic(t *testing.T) {
	for _, verbose := range []bool{false, true} {
		var b strings.Builder
		status := -1
		func() {
			defer recoverPanic(&b, "gen", verbose, func(s int) { status = s })
			var m map[string]int
			m["x"]++ // a nil map: a runtime panic
		}()
		out := b.String()
		if status != exitFailure || !strings.HasPrefix(out, "shoal gen: internal error: assignment to entry in nil map") {
			t.Errorf("verbose %v: status %d, wrote %q", verbose, status, out)
		}
		if hasStack := strings.Contains(out, "goroutine "); hasStack != verbose || (!verbose && strings.Count(out, "\n") != 1) {
			t.Errorf("verbose %v: wrote %q", verbose, out)
		}
	}
}

func TestVerboseRequested(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"pagerank", "-v"}, true},
		{[]string{"--v", "pagerank"}, true},
		{[]string{"-v=true"}, true},
		{[]string{"-v=false"}, false},
		{[]string{"--", "-v"}, false},
		{[]string{"-verbose"}, false},
	}
	for _, tc := range tests {
		if got := verboseRequested(tc.args); got != tc.want {
			t.Errorf("verboseRequested(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// Every flag of shoal run has its row in docs/running.md.
func TestRunFlagsDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "running.md"))
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("shoal run", flag.ContinueOnError)
	var c runConfig
	c.register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		row := "| `--" + f.Name
		if len(f.Name) == 1 {
			row = "| `-" + f.Name + "`"
		}
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/running.md has no row for shoal run's flag %s (%q)", f.Name, row)
		}
	})
}
