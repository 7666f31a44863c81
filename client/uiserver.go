package client

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"shoal/client/eventlog"
	"shoal/client/ui"
)

// startUI starts the live UI if Options.UIAddr asks for it: it listens to
// the event log's writer (one with no file if there is no event log), so
// the UI sees exactly what the log says.
func (c *Context) startUI() error {
	addr := c.opts.UIAddr
	if addr == "" || addr == "off" {
		return nil
	}
	uo := c.opts.UI
	if uo.Registry == nil {
		uo.Registry = prometheus.NewRegistry()
		uo.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if uo.Logger == nil {
		uo.Logger = c.log
	}
	live, err := ui.NewLive(c.app, uo)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if err := live.Listen(addr, true); err != nil {
		live.Close(context.Background())
		return fmt.Errorf("client: %w", err)
	}
	if c.events == nil {
		c.events = eventlog.NewWriter(nil)
	}
	c.events.AddListener(live.Listener())
	c.ui = live
	return nil
}

// UI is the live UI: nil if Options.UIAddr is not set, or once the
// context is closed (with UIKeep, take it before Close to close it
// later).
func (c *Context) UI() *ui.Live { return c.ui }

// closeUI stops the UI, unless Options.UIKeep leaves it to the caller.
// A context that failed to start (NewContext's own Close; c.status is set
// last, with the UI on) stops it all the same: its caller never got it.
func (c *Context) closeUI() error {
	live := c.ui
	c.ui = nil
	if live == nil || c.opts.UIKeep && c.status != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return live.Close(ctx)
}

// appStart is the app_start event, with the environment the UI's
// Environment page shows.
func (c *Context) appStart() *eventlog.AppStart {
	o := c.opts
	ev := &eventlog.AppStart{App: c.app, Pid: os.Getpid(), GoVersion: runtime.Version(), Command: os.Args, Options: map[string]string{
		"Nodes": strconv.Itoa(o.Nodes), "WorkersPerNode": strconv.Itoa(o.WorkersPerNode), "Slots": strconv.Itoa(o.Slots),
		"ShuffleMode": o.ShuffleMode, "Codec": o.Codec, "NoShuffleService": strconv.FormatBool(o.NoShuffleService),
		"MaxTaskFailures": strconv.Itoa(o.MaxTaskFailures), "MaxStageAttempts": strconv.Itoa(o.MaxStageAttempts),
		"LocalityWait": o.LocalityWait.String(), "HeartbeatTimeout": o.HeartbeatTimeout.String(),
		"Speculation": strconv.FormatBool(o.Speculation), "HeapCacheBytes": strconv.FormatInt(o.HeapCacheBytes, 10),
		"MaxResultBytes": strconv.FormatInt(o.MaxResultBytes, 10), "CacheBytes": strconv.FormatInt(o.CacheBytes, 10),
		"CheckpointDir": o.CheckpointDir, "S3Endpoint": o.S3.Endpoint, "EventLog": o.EventLog, "UIAddr": o.UIAddr,
	}}
	if bi, ok := debug.ReadBuildInfo(); ok {
		ev.Version = bi.Main.Path + " " + bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				ev.Version += " " + s.Value
			}
		}
	}
	return ev
}

// nodeArgs are the flags of the local cluster's node services.
func (o *Options) nodeArgs() []string {
	if o.NodeMetrics {
		return []string{"--metrics-addr=127.0.0.1:0"}
	}
	return nil
}
