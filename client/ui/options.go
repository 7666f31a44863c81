package ui

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Options.
const (
	DefaultMaxJobs          = 200
	DefaultMaxTasksPerStage = 1000
	DefaultMaxFetchFailures = 100
	DefaultMaxTimeline      = 1000
	DefaultEventBuffer      = 1 << 16
	DefaultRefresh          = 2 * time.Second
)

// Options configure the UI of one application (the live UI) or of many
// (the history server). Bounds apply per application: counts are always
// exact, only the detail (rows of tables, quantiles) is bounded.
type Options struct {
	// MaxJobs is how many jobs are kept in detail, the newest; older
	// ones are forgotten with the stages only they used, but still
	// counted. Default DefaultMaxJobs.
	MaxJobs int
	// MaxTasksPerStage is how many task attempts of a stage attempt are
	// kept in detail, the newest; the summary quantiles are computed over
	// the succeeded ones among them, the totals over all. Default
	// DefaultMaxTasksPerStage.
	MaxTasksPerStage int
	// MaxFetchFailures is how many fetch failures a stage attempt keeps
	// in detail. Default DefaultMaxFetchFailures.
	MaxFetchFailures int
	// MaxTimeline is how many worker and node events the Jobs page's
	// timeline keeps. Default DefaultMaxTimeline.
	MaxTimeline int
	// EventBuffer is the live UI's queue between the event log's writer
	// and the goroutine that owns the model: the writer never waits for
	// the UI; an event that finds the queue full is dropped and counted
	// (the pages then say how many). Default DefaultEventBuffer.
	EventBuffer int
	// Refresh is how often a page of a running application reloads
	// itself; default DefaultRefresh.
	Refresh time.Duration
	// Registry, if set, is where the live UI registers the driver's
	// metrics (jobs, stages, tasks, shuffle bytes, fetch failures,
	// workers and nodes) and what it serves at /metrics. One per process
	// or per driver: the package keeps no global one.
	Registry *prometheus.Registry
	// Logger receives the server's errors; default discard.
	Logger *slog.Logger
}

// EnsureDefaults replaces zero fields by their defaults.
func (o *Options) EnsureDefaults() {
	if o.MaxJobs == 0 {
		o.MaxJobs = DefaultMaxJobs
	}
	if o.MaxTasksPerStage == 0 {
		o.MaxTasksPerStage = DefaultMaxTasksPerStage
	}
	if o.MaxFetchFailures == 0 {
		o.MaxFetchFailures = DefaultMaxFetchFailures
	}
	if o.MaxTimeline == 0 {
		o.MaxTimeline = DefaultMaxTimeline
	}
	if o.EventBuffer == 0 {
		o.EventBuffer = DefaultEventBuffer
	}
	if o.Refresh == 0 {
		o.Refresh = DefaultRefresh
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports every problem of o at once; call it after
// EnsureDefaults.
func (o *Options) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"MaxJobs", o.MaxJobs}, {"MaxTasksPerStage", o.MaxTasksPerStage}, {"MaxFetchFailures", o.MaxFetchFailures},
		{"MaxTimeline", o.MaxTimeline}, {"EventBuffer", o.EventBuffer}} {
		if f.v < 1 {
			errs = append(errs, fmt.Errorf("ui: options: %s %d is below 1 (leave it 0 for the default)", f.name, f.v))
		}
	}
	if o.Refresh < 0 {
		errs = append(errs, fmt.Errorf("ui: options: Refresh %v is negative", o.Refresh))
	}
	return errors.Join(errs...)
}
