package bench

import (
	"bytes"
	"cmp"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// This file writes a sweep's results as people read them: results.md (a
// table of every cell), machine.md and the SVG charts.

// sweepChart is one chart of the study: a metric against reduce
// partitions, one panel per data size × map count.
type sweepChart struct {
	file, title, ylabel string
	note                string
	logY                bool
	value               func(*SweepCell) float64
	format              func(float64) string
	limit               func(*SweepResults) *chartLimit
}

// sweepCharts are the charts of the report; only ranged over.
//
//lint:table
var sweepCharts = []sweepChart{
	{
		file: "time.svg", title: "Shuffle time (write + read) against reduce partitions",
		ylabel: "seconds, write + read (log)", logY: true,
		value:  func(c *SweepCell) float64 { return c.TotalSeconds },
		format: formatSeconds,
	},
	{
		file: "files.svg", title: "Shuffle files created against reduce partitions",
		ylabel: "files on disk after the maps (log)", logY: true,
		note:   "sort and bypass both leave 2 files per map (data + index): their lines coincide",
		value:  func(c *SweepCell) float64 { return float64(c.FilesCreated) },
		format: formatCount,
	},
	{
		file: "open-files.svg", title: "Peak open files of the writers' process",
		ylabel: "open file descriptors, sampled (log)", logY: true,
		note:   "a bypass or hash writer holds a file per reduce partition until it commits, and 2 writers run at once",
		value:  func(c *SweepCell) float64 { return float64(c.PeakOpenFiles) },
		format: formatCount,
		limit: func(r *SweepResults) *chartLimit {
			if n := r.Machine.OpenFileLimit; n > 0 {
				return &chartLimit{Y: float64(n), Label: fmt.Sprintf("open-file limit (ulimit -n %d)", n)}
			}
			return nil
		},
	},
	{
		file: "memory.svg", title: "Peak RSS of the writers' process, when the maps are done",
		ylabel: "MiB (VmHWM)",
		note:   "bypass and hash share one writer: a 64 KiB buffer per reduce partition, up to the 64 MiB limit per writer",
		value:  func(c *SweepCell) float64 { return float64(c.WritePeakRSSBytes) / (1 << 20) },
		format: func(v float64) string { return fmt.Sprintf("%.0f", v) },
	},
	{
		file: "disk.svg", title: "Space the shuffle files take on disk (allocated blocks)",
		ylabel: "MiB on disk (log)", logY: true,
		value:  func(c *SweepCell) float64 { return float64(c.DiskBytes) / (1 << 20) },
		format: formatCount,
	},
}

// modeStyles gives each writer mode its colour and marker; others get
// grey.
var modeStyles = map[string]chartSeries{
	"sort":   {Name: "sort", Color: "#1f5fa8", Marker: "circle"},
	"bypass": {Name: "bypass", Color: "#2e8b3a", Marker: "square"},
	"hash":   {Name: "hash", Color: "#c62828", Marker: "triangle"},
}

// WriteSweepReport writes results.md, machine.md and the charts of res to
// dir.
func WriteSweepReport(dir string, res *SweepResults) error {
	files := map[string][]byte{
		"results.md": sweepMarkdown(res),
		"machine.md": machineMarkdown(res),
	}
	for _, ch := range sweepCharts {
		files[ch.file] = buildSweepChart(res, ch).SVG()
	}
	for name, b := range files {
		if err := writeFileAtomic(filepath.Join(dir, name), b); err != nil {
			return err
		}
	}
	return nil
}

// sweepAxes lists the modes, data sizes, map and reduce counts of res:
// the grid's, then any other the cells hold.
func sweepAxes(res *SweepResults) (modes []string, data []int64, maps, reduces []int) {
	modes, data = slices.Clone(res.Grid.Modes), slices.Clone(res.Grid.DataBytes)
	maps, reduces = slices.Clone(res.Grid.Maps), slices.Clone(res.Grid.Reduces)
	for _, c := range res.Cells {
		if !slices.Contains(modes, c.Mode) {
			modes = append(modes, c.Mode)
		}
		if !slices.Contains(data, c.DataBytes) {
			data = append(data, c.DataBytes)
		}
		if !slices.Contains(maps, c.Maps) {
			maps = append(maps, c.Maps)
		}
		if !slices.Contains(reduces, c.Reduces) {
			reduces = append(reduces, c.Reduces)
		}
	}
	slices.Sort(data)
	slices.Sort(maps)
	slices.Sort(reduces)
	return modes, data, maps, reduces
}

func buildSweepChart(res *SweepResults, sc sweepChart) *lineChart {
	modes, data, maps, _ := sweepAxes(res)
	ch := &lineChart{
		Title: sc.title, Subtitle: sweepSubtitle(res),
		XLabel: "reduce partitions (log scale)", YLabel: sc.ylabel, LogY: sc.logY, YFormat: sc.format, Note: sc.note,
		Cols: len(maps),
	}
	if sc.limit != nil {
		ch.Limit = sc.limit(res)
	}
	for _, m := range modes {
		st, ok := modeStyles[m]
		if !ok {
			st = chartSeries{Name: m, Color: "#777", Marker: "diamond"}
		}
		ch.Series = append(ch.Series, st)
	}
	for _, d := range data {
		for _, m := range maps {
			p := chartPanel{Title: fmt.Sprintf("%s, %d maps", formatBytes(d), m), Points: make([][]chartPoint, len(modes))}
			for i, mode := range modes {
				for _, c := range res.Cells {
					if c.Mode != mode || c.DataBytes != d || c.Maps != m {
						continue
					}
					pt := chartPoint{X: float64(c.Reduces), Y: sc.value(c)}
					if c.Status != CellOK {
						pt.Failed = shortReason(c.Reason)
					}
					p.Points[i] = append(p.Points[i], pt)
				}
				slices.SortFunc(p.Points[i], func(a, b chartPoint) int { return int(a.X - b.X) })
			}
			ch.Panels = append(ch.Panels, p)
		}
	}
	return ch
}

func sweepSubtitle(res *SweepResults) string {
	g, m := res.Grid, res.Machine
	runs := "1 run per cell"
	if g.Runs > 1 {
		runs = fmt.Sprintf("median of %d runs per cell (1 if the first took ≥ %s)", g.Runs, time.Duration(g.RepeatUnderSeconds*float64(time.Second)))
	}
	return fmt.Sprintf("%d node services, %d-byte records, codec %s, %s; %d cores, %s RAM, %s, %s",
		g.Nodes, g.RecordBytes, g.Codec, runs, m.CPUs, formatBytes(m.MemoryBytes), m.GoVersion, m.Filesystem)
}

// shortReason is a failure's reason in a word or two, for a chart.
func shortReason(r string) string {
	switch {
	case strings.Contains(r, "EMFILE"), strings.Contains(r, "ENFILE"):
		return "EMFILE"
	case strings.Contains(r, "ENOSPC"):
		return "ENOSPC"
	case strings.Contains(r, "OOM"), strings.Contains(r, "ENOMEM"):
		return "OOM"
	case strings.HasPrefix(r, "timed out"):
		return "timeout"
	case strings.HasPrefix(r, "killed"):
		return "killed"
	}
	return "error"
}

func formatSeconds(v float64) string {
	switch {
	case v >= 1:
		return fmt.Sprintf("%gs", v)
	case v >= 0.001:
		return fmt.Sprintf("%gms", v*1e3)
	}
	return fmt.Sprintf("%gµs", v*1e6)
}

func sweepMarkdown(res *SweepResults) []byte {
	var b bytes.Buffer
	g := res.Grid
	fmt.Fprintf(&b, "# Shuffle study: results\n\n")
	fmt.Fprintf(&b, "Written by `%s`; bench/README.md explains them. The machine is described in [machine.md](machine.md).\n\n", res.Command)
	fmt.Fprintf(&b, "Each cell is one `shoal bench shuffle --json` child process: %d node services on 127.0.0.1, %d-byte records, codec %s, ", g.Nodes, g.RecordBytes, g.Codec)
	if g.Runs > 1 {
		fmt.Fprintf(&b, "up to %d runs per cell (one if the first took %s or more), figures are medians; ", g.Runs, time.Duration(g.RepeatUnderSeconds*float64(time.Second)))
	} else {
		fmt.Fprintf(&b, "one run per cell; ")
	}
	fmt.Fprintf(&b, "time limit %s per run.", time.Duration(g.CellTimeoutSeconds*float64(time.Second)))
	if g.MaxOpenFiles > 0 {
		fmt.Fprintf(&b, " Each cell's open-file limit was lowered to %d.", g.MaxOpenFiles)
	}
	fmt.Fprintf(&b, " A failed cell shows what its run measured until it failed.\n\n")
	fmt.Fprintf(&b, "Columns: total = write + read (wall clock, node start and clean-up excluded); files = shuffle files on disk after the maps; open = peak open file descriptors of the writers' process (sampled, see bench/README.md) / of the busiest node service; disk = bytes of the files / blocks allocated to them; RSS = peak RSS of the writers' process when the maps were done (VmHWM) / of the whole run (rusage); GC = the writers' process's GC pause total; fetches = fetch streams the readers opened; load = 1-minute load average at the cell's start.\n\n")

	fmt.Fprintf(&b, "| data | maps | reduces | mode | status | total s | write s | read s | MB/s | files | open | disk MiB | RSS MiB | GC ms | fetches | load | runs |\n")
	fmt.Fprintf(&b, "|---|--:|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	cells := sortedCells(res)
	for _, c := range cells {
		status := c.Status
		if c.Status != CellOK {
			status = fmt.Sprintf("**failed** in %s: %s", cmpOrString(c.Phase, "?"), shortReason(c.Reason))
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %.2f | %.2f | %.2f | %.0f | %d | %d / %d | %.1f / %.1f | %.0f / %.0f | %.1f | %d | %.2f | %d |\n",
			formatBytes(c.DataBytes), c.Maps, c.Reduces, c.Mode, status,
			c.TotalSeconds, c.WriteSeconds, c.ReadSeconds, c.MBPerSecond, c.FilesCreated,
			c.PeakOpenFiles, c.NodePeakOpenFiles,
			float64(c.BytesWritten)/(1<<20), float64(c.DiskBytes)/(1<<20),
			float64(c.WritePeakRSSBytes)/(1<<20), float64(c.ProcessPeakRSSBytes)/(1<<20),
			c.GCPauseSeconds*1e3, c.FetchRequests, c.LoadStart[0], len(c.Runs))
	}

	var failed []*SweepCell
	for _, c := range cells {
		if c.Status != CellOK {
			failed = append(failed, c)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(&b, "\n## Failed cells\n\n")
		for _, c := range failed {
			var run SweepRun
			if len(c.Runs) > 0 {
				run = c.Runs[len(c.Runs)-1]
			}
			fmt.Fprintf(&b, "- %s, %d maps × %d reduces, %s: **%s** in %s after %.1f s (child ran %.1f s; peak open files %d).",
				c.Mode, c.Maps, c.Reduces, formatBytes(c.DataBytes), c.Reason, cmpOrString(c.Phase, "?"), c.TotalSeconds, run.WallSeconds, c.PeakOpenFiles)
			if run.Error != "" && run.Error != c.Reason {
				fmt.Fprintf(&b, " Error: `%s`", strings.ReplaceAll(truncate(run.Error, 300), "`", "'"))
			}
			b.WriteString("\n")
		}
	}

	if s := res.Sort; s != nil {
		fmt.Fprintf(&b, "\n## Sort: shoal's sort job against GNU sort\n\n`%s`, %d run(s), the same %d gensort records (%s) for both, each output verified:\n\n", s.Command, len(s.Runs), s.Records, formatBytes(s.Records*100))
		if s.Status != CellOK {
			fmt.Fprintf(&b, "**failed**: %s\n\n", s.Reason)
		}
		if len(s.Runs) > 0 {
			fmt.Fprintf(&b, "| | median | runs |\n|---|--:|---|\n")
			var shoal, gnu []string
			for _, r := range s.Runs {
				shoal, gnu = append(shoal, fmt.Sprintf("%.2f", r.ShoalSeconds)), append(gnu, fmt.Sprintf("%.2f", r.GNUSortSeconds))
			}
			fmt.Fprintf(&b, "| shoal sort job (embedded default, %d parts) | %.2f s | %s |\n", s.Runs[0].Parts, s.ShoalSeconds, strings.Join(shoal, ", "))
			fmt.Fprintf(&b, "| `LC_ALL=C sort %s` | %.2f s | %s |\n", strings.Join(s.Runs[0].GNUSortArgs[:3], " "), s.GNUSortSeconds, strings.Join(gnu, ", "))
			fmt.Fprintf(&b, "\nLoad average at its start %.2f, at its end %.2f.\n", s.LoadStart[0], s.LoadEnd[0])
		}
	}

	fmt.Fprintf(&b, "\n## Charts\n\n")
	for _, ch := range sweepCharts {
		fmt.Fprintf(&b, "![%s](%s)\n\n", ch.title, ch.file)
	}
	return b.Bytes()
}

// sortedCells are res's cells by data size, maps, reduces and mode (in
// the grid's order).
func sortedCells(res *SweepResults) []*SweepCell {
	modes, _, _, _ := sweepAxes(res)
	cells := slices.Clone(res.Cells)
	slices.SortStableFunc(cells, func(a, b *SweepCell) int {
		switch {
		case a.DataBytes != b.DataBytes:
			return cmp.Compare(a.DataBytes, b.DataBytes)
		case a.Maps != b.Maps:
			return a.Maps - b.Maps
		case a.Reduces != b.Reduces:
			return a.Reduces - b.Reduces
		}
		return slices.Index(modes, a.Mode) - slices.Index(modes, b.Mode)
	})
	return cells
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func machineMarkdown(res *SweepResults) []byte {
	m := res.Machine
	var b bytes.Buffer
	fmt.Fprintf(&b, "# The machine of the shuffle study\n\n")
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	row := m.writeRows(&b)
	row("disk", "%s, %s free at the start of the last session", formatBytes(m.DiskBytes), formatBytes(m.DiskFreeBytes))
	if m.Journal != "" {
		row("ext4 journal", "%s (/proc/fs/jbd2)", m.Journal)
	}
	row("open-file limit", "%d (hard %d)", m.OpenFileLimit, m.OpenFileLimitHard)
	fmt.Fprintf(&b, "\n## Sessions\n\nLoad averages (1, 5, 15 minutes) at the start and end of each run of the sweep; other work shared the machine.\n\n")
	fmt.Fprintf(&b, "| start (UTC) | end (UTC) | cells run | load at start | load at end | interrupted |\n|---|---|--:|---|---|---|\n")
	for _, s := range res.Sessions {
		end := "—"
		if !s.End.IsZero() {
			end = s.End.Format(time.DateTime)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %.2f %.2f %.2f | %.2f %.2f %.2f | %v |\n", s.Start.Format(time.DateTime), end, s.CellsRun,
			s.LoadStart[0], s.LoadStart[1], s.LoadStart[2], s.LoadEnd[0], s.LoadEnd[1], s.LoadEnd[2], s.Interrupted)
	}
	return b.Bytes()
}
