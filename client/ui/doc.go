// Package ui is shoal's web UI and REST API: the driver's live UI
// (client.Options.UIAddr, `shoal run --ui-addr`) and the history server
// (`shoal history --event-logs DIR`), which are the same code, because
// both are built from the event log's types only (package
// client/eventlog), never from the scheduler's state. docs/ui.md is the
// user's guide: pages, endpoints, metrics.
//
// # Design
//
// An application's state is a model (model.go) that apply folds events
// into. Each model is owned by one goroutine, its tracker (tracker.go):
// events and queries arrive on channels, so the model needs no lock.
//
//   - Live: the tracker listens to the driver's eventlog.Writer
//     (AddListener). The listener only offers the event to a bounded
//     queue (Options.EventBuffer) and returns; a full queue drops the
//     event and counts it (the pages say so). The scheduler therefore
//     never waits for the UI, and the UI holds no lock the scheduler
//     takes.
//   - History: a tracker per log file in the directory; before a query it
//     reads what was appended to its log since the last one
//     (eventlog.Tail), so logs of applications still running, or killed,
//     are shown as far as they go, "incomplete" without app_end.
//
// A query runs on the tracker's goroutine, after every event already
// queued, and copies what a page needs into the plain types of view.go;
// the page is rendered afterwards from that copy. The same types are the
// JSON of the REST API (api.go), so a page and its endpoint always agree,
// and the live UI and the history server answer the same bytes for a
// finished application (tested).
//
// # Bounds
//
// Counts are exact however long the application runs. Detail is bounded
// per application (Options): the newest MaxJobs jobs (with the stages
// only they use), the newest MaxTasksPerStage task attempts of each stage
// attempt (summary quantiles are over the succeeded ones among them; the
// totals over all), MaxFetchFailures per stage attempt, MaxTimeline
// worker and node events. Workers, nodes and cached blocks are kept
// whole: they are bounded by the cluster, not by the application's
// length.
//
// # Metrics
//
// With Options.Registry the live UI also keeps the driver's Prometheus
// metrics (metrics.go), computed from the same events on the same
// goroutine, and serves them at /metrics. The registry is the caller's
// (one per driver): the package has no global state. Templates are parsed
// once per server from the embedded files (templates/, static/): the UI
// loads nothing from outside.
package ui
