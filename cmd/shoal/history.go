package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"shoal/client/ui"
)

// historyConfig holds the flags of `shoal history`.
type historyConfig struct {
	eventLogs string
	listen    string
}

func (c *historyConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.eventLogs, "event-logs", "", "`DIR` of event logs (the drivers' --event-log files), finished, running or killed")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:18080", "`ADDR` (host:port) to serve the UI and REST API on")
}

// runHistory serves the UI of every event log in a directory until
// interrupted.
func runHistory(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shoal history", flag.ContinueOnError)
	var c historyConfig
	c.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: shoal history --event-logs DIR [--listen ADDR]\n\nServes the web UI and the REST API (/api/v1) of every event log in DIR.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErrorf(fs.Name(), "unexpected arguments %q (flags only)", fs.Args())
	}
	if c.eventLogs == "" {
		return errors.New("--event-logs is required: the directory of the event logs to show")
	}
	h, err := ui.NewHistory(c.eventLogs, ui.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.Listen(c.listen, false); err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "shoal history of %s at %s\n", c.eventLogs, h.URL())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	h.Shutdown(sctx)
	return nil
}
