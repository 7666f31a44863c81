// Command fakeworker is the worker binary of the launcher's and the node
// service's tests: its first argument chooses what it does.
//
//	run      record itself in $SHOAL_TEST_OUT/$SHOAL_WORKER_ID (its pid,
//	         working directory and environment, one per line), write a
//	         line to stdout (with the cluster secret in it) and one to
//	         stderr, then wait for a signal
//	run-ignore-term   the same, ignoring SIGTERM
//	spawn    as run, after starting a child of its own (fakeworker run
//	         as $SHOAL_WORKER_ID-child) that records itself too
//	crash    write "fakeworker: crashing on purpose" to stderr, exit 2
//	flood    write a 10 KiB line and many short ones to stderr, exit 3
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	mode := ""
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	switch mode {
	case "run", "run-ignore-term", "spawn":
		if mode == "run-ignore-term" {
			signal.Ignore(syscall.SIGTERM)
		}
		if mode == "spawn" {
			child := exec.Command(os.Args[0], "run")
			child.Env = append(os.Environ(), "SHOAL_WORKER_ID="+os.Getenv("SHOAL_WORKER_ID")+"-child")
			if err := child.Start(); err != nil {
				fail(err)
			}
		}
		record(os.Getenv("SHOAL_WORKER_ID"))
		// The secret, which the node must keep out of its log.
		fmt.Println("fakeworker: up on stdout; the cluster secret is", os.Getenv("SHOAL_CLUSTER_SECRET"))
		fmt.Fprintln(os.Stderr, "fakeworker: up on stderr")
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGUSR1) // never sent: wait for SIGTERM or SIGKILL
		<-c
	case "crash":
		fmt.Fprintln(os.Stderr, "fakeworker: crashing on purpose")
		os.Exit(2)
	case "flood":
		fmt.Fprintln(os.Stderr, strings.Repeat("x", 10<<10))
		for i := range 1000 {
			fmt.Fprintf(os.Stderr, "line %d\n", i)
		}
		os.Exit(3)
	default:
		fail(fmt.Errorf("unknown mode %q", mode))
	}
}

// record writes pid, working directory and environment to
// $SHOAL_TEST_OUT/NAME, through a temporary file so that a reader sees
// all or nothing.
func record(name string) {
	wd, _ := os.Getwd()
	var b strings.Builder
	fmt.Fprintf(&b, "pid=%d\ncwd=%s\n", os.Getpid(), wd)
	for _, kv := range os.Environ() {
		b.WriteString("env " + kv + "\n")
	}
	dir := os.Getenv("SHOAL_TEST_OUT")
	tmp := filepath.Join(dir, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		fail(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fakeworker:", err)
	os.Exit(1)
}
