package ui

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"shoal/client/eventlog"
)

// driverMetrics are the driver's Prometheus metrics, served at the live
// UI's /metrics. They are computed from the events, like the pages, on
// the model's goroutine: the scheduler only writes events.
type driverMetrics struct {
	jobs          *prometheus.CounterVec
	jobsRunning   prometheus.Gauge
	stages        *prometheus.CounterVec
	tasks         *prometheus.CounterVec
	tasksRunning  prometheus.Gauge
	taskDuration  prometheus.Histogram
	shuffleBytes  *prometheus.CounterVec
	fetchFailures prometheus.Counter
	workers       *prometheus.GaugeVec
	nodes         *prometheus.GaugeVec

	nodeLost map[string]bool // nodes known, lost or not
}

func newDriverMetrics(reg prometheus.Registerer) (*driverMetrics, error) {
	d := &driverMetrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_driver_jobs_total", Help: "Jobs that ended, by status (succeeded, failed).",
		}, []string{"status"}),
		jobsRunning: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_driver_jobs_running", Help: "Jobs running."}),
		stages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_driver_stage_attempts_total", Help: "Stage attempts by status: submitted, skipped, succeeded, failed.",
		}, []string{"status"}),
		tasks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_driver_tasks_total", Help: "Task attempts that ended, by status (succeeded, failed, killed, lost).",
		}, []string{"status"}),
		tasksRunning: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shoal_driver_tasks_running", Help: "Task attempts running."}),
		taskDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "shoal_driver_task_duration_seconds", Help: "Duration of the task attempts that ended.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		shuffleBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_driver_shuffle_bytes_total", Help: "Shuffle bytes of the tasks that ended: written, read_local, read_remote.",
		}, []string{"kind"}),
		fetchFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "shoal_driver_fetch_failures_total", Help: "Fetch failures the tasks reported."}),
		workers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "shoal_driver_workers", Help: "Workers by state: alive, lost.",
		}, []string{"state"}),
		nodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "shoal_driver_nodes", Help: "Node services by state: alive, lost.",
		}, []string{"state"}),
		nodeLost: map[string]bool{},
	}
	var errs []error
	for _, c := range []prometheus.Collector{d.jobs, d.jobsRunning, d.stages, d.tasks, d.tasksRunning, d.taskDuration, d.shuffleBytes, d.fetchFailures, d.workers, d.nodes} {
		errs = append(errs, reg.Register(c))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// The series exist from the start, at zero, so a query for them does
	// not come back empty before the first event of their kind.
	for _, s := range []string{eventlog.StatusSucceeded, eventlog.StatusFailed} {
		d.jobs.WithLabelValues(s)
	}
	for _, s := range []string{"submitted", "skipped", eventlog.StatusSucceeded, eventlog.StatusFailed} {
		d.stages.WithLabelValues(s)
	}
	for _, s := range []string{eventlog.StatusSucceeded, eventlog.StatusFailed, eventlog.StatusKilled, eventlog.StatusLost} {
		d.tasks.WithLabelValues(s)
	}
	for _, k := range []string{"written", "read_local", "read_remote"} {
		d.shuffleBytes.WithLabelValues(k)
	}
	for _, s := range []string{stateAlive, stateLost} {
		d.workers.WithLabelValues(s)
		d.nodes.WithLabelValues(s)
	}
	return d, nil
}

func (d *driverMetrics) observe(ev eventlog.Event) {
	switch e := ev.(type) {
	case *eventlog.JobStart:
		d.jobsRunning.Inc()
	case *eventlog.JobEnd:
		d.jobsRunning.Dec()
		d.jobs.WithLabelValues(e.Status).Inc()
	case *eventlog.StageSubmitted:
		d.stages.WithLabelValues("submitted").Inc()
	case *eventlog.StageSkipped:
		d.stages.WithLabelValues("skipped").Inc()
	case *eventlog.StageCompleted:
		d.stages.WithLabelValues(e.Status).Inc()
	case *eventlog.TaskStart:
		d.tasksRunning.Inc()
	case *eventlog.TaskEnd:
		d.tasksRunning.Dec()
		d.tasks.WithLabelValues(e.Status).Inc()
		d.taskDuration.Observe(float64(e.DurationMs) / 1000)
		d.shuffleBytes.WithLabelValues("written").Add(float64(e.Metrics[eventlog.MetricShuffleBytesWritten]))
		d.shuffleBytes.WithLabelValues("read_local").Add(float64(e.Metrics[eventlog.MetricShuffleLocalBytes]))
		d.shuffleBytes.WithLabelValues("read_remote").Add(float64(e.Metrics[eventlog.MetricShuffleRemoteBytes]))
	case *eventlog.FetchFailed:
		d.fetchFailures.Inc()
	case *eventlog.WorkerAdded:
		d.workers.WithLabelValues(stateAlive).Inc()
	case *eventlog.WorkerLost:
		d.workers.WithLabelValues(stateAlive).Dec()
		d.workers.WithLabelValues(stateLost).Inc()
	case *eventlog.NodeAdded:
		lost, known := d.nodeLost[e.Node]
		if lost {
			d.nodes.WithLabelValues(stateLost).Dec()
		}
		if !known || lost {
			d.nodes.WithLabelValues(stateAlive).Inc()
		}
		d.nodeLost[e.Node] = false
	case *eventlog.NodeLost:
		if lost, known := d.nodeLost[e.Node]; !lost {
			if known {
				d.nodes.WithLabelValues(stateAlive).Dec()
			}
			d.nodes.WithLabelValues(stateLost).Inc()
		}
		d.nodeLost[e.Node] = true
	}
}
