package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shoal/internal/testbin"
	"shoal/shuffleservice/shuffle"
)

// tinySweep is a grid that runs in a second or two through real node
// services.
func tinySweep(t *testing.T, bin string) SweepConfig {
	return SweepConfig{
		Modes:   []shuffle.Mode{shuffle.ModeSort, shuffle.ModeBypass, shuffle.ModeHash},
		Maps:    []int{3},
		Reduces: []int{5, 50},
		// 120,000 records of 100 bytes: each map gives every partition more
		// than a frame (64 KiB), so bypass and hash writers open every
		// partition's file before they commit.
		DataBytes: []int64{12_000_000},
		Codec:     shuffle.CodecS2,
		Results:   t.TempDir(), Dir: t.TempDir(), Binary: bin, Command: "test",
		Progress: t.Output(),
	}
}

// TestSweep runs tiny sweeps through real node services, with one shoal
// binary built for all of them.
func TestSweep(t *testing.T) {
	bin := testbin.Shoal(t)
	t.Run("figures", func(t *testing.T) { testSweepFigures(t, bin) })
	t.Run("failure", func(t *testing.T) { testSweepRecordsFailure(t, bin) })
	t.Run("timeout", func(t *testing.T) { testSweepTimeout(t, bin) })
	t.Run("interrupt-resume", func(t *testing.T) { testSweepInterruptAndResume(t, bin) })
}

// testSweepFigures checks that every cell has every figure, that the
// figures say what each mode promises, and that results.md, machine.md
// and the charts are written.
func testSweepFigures(t *testing.T, bin string) {
	cfg := tinySweep(t, bin)
	cfg.SortRecords = 2_000
	res, err := RunSweep(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := LoadSweepResults(cfg.Results)
	if err != nil {
		t.Fatal(err)
	}
	if len(saved.Cells) != 6 || len(res.Cells) != 6 {
		t.Fatalf("%d cells saved, %d returned, want 6", len(saved.Cells), len(res.Cells))
	}
	peak := map[string]int{}
	for _, c := range saved.Cells {
		if c.Status != CellOK || c.Reason != "" || len(c.Runs) != 1 {
			t.Fatalf("cell %s: status %q, reason %q, %d runs", c.label(), c.Status, c.Reason, len(c.Runs))
		}
		run := c.Runs[0]
		if run.RecordsRead != 120_000 || run.DigestRead != run.DigestWritten {
			t.Fatalf("cell %s: read %d records, digest %s (wrote %s)", c.label(), run.RecordsRead, run.DigestRead, run.DigestWritten)
		}
		wantFiles := 2 * c.Maps
		if c.Mode == "hash" {
			wantFiles = c.Maps * c.Reduces
		}
		if c.FilesCreated != wantFiles {
			t.Errorf("cell %s: %d files, want %d", c.label(), c.FilesCreated, wantFiles)
		}
		for name, v := range map[string]float64{
			"total seconds": c.TotalSeconds, "write seconds": c.WriteSeconds, "read seconds": c.ReadSeconds,
			"peak open files": float64(c.PeakOpenFiles), "node peak open files": float64(c.NodePeakOpenFiles),
			"bytes written": float64(c.BytesWritten), "disk bytes": float64(c.DiskBytes),
			"writers' peak RSS": float64(c.WritePeakRSSBytes), "process peak RSS": float64(c.ProcessPeakRSSBytes),
			"node peak RSS": float64(c.NodePeakRSSBytes), "fetch requests": float64(c.FetchRequests),
			"blocks served": float64(c.BlocksServed), "cell seconds": c.CellSeconds, "open-file samples": float64(run.OpenFilesSamples),
		} {
			if v <= 0 {
				t.Errorf("cell %s: %s is %v", c.label(), name, v)
			}
		}
		if c.GCPauseSeconds < 0 || c.Started.IsZero() || c.WriteSeconds+c.ReadSeconds > c.TotalSeconds*1.01 {
			t.Errorf("cell %s: GC pause %v, started %v, write %v + read %v > total %v", c.label(), c.GCPauseSeconds, c.Started, c.WriteSeconds, c.ReadSeconds, c.TotalSeconds)
		}
		if c.Reduces == 50 {
			peak[c.Mode] = c.PeakOpenFiles
		}
	}
	// A hash or bypass writer holds a file per partition until it commits;
	// the sort writer holds a few.
	if peak["hash"] < 50 || peak["bypass"] < 50 || peak["sort"] >= peak["hash"]-40 {
		t.Errorf("peak open files at 50 reduces: %v", peak)
	}
	if s := saved.Sort; s == nil || s.Status != CellOK || len(s.Runs) != 1 || s.ShoalSeconds <= 0 || s.GNUSortSeconds <= 0 {
		t.Errorf("sort comparison: %+v", s)
	}
	if m := saved.Machine; m.CPUs <= 0 || m.MemoryBytes <= 0 || m.GoVersion == "" || m.Filesystem == "" || m.DiskFreeBytes <= 0 || m.OpenFileLimit == 0 {
		t.Errorf("machine %+v", m)
	}
	if len(saved.Sessions) != 1 || saved.Sessions[0].CellsRun != 6 || saved.Sessions[0].Interrupted {
		t.Errorf("sessions %+v", saved.Sessions)
	}

	md := readFile(t, filepath.Join(cfg.Results, "results.md"))
	if rows := strings.Count(md, "\n| 11.4 MiB | 3 | "); rows != 6 {
		t.Errorf("results.md has %d cell rows, want 6:\n%s", rows, md)
	}
	if !strings.Contains(md, "GNU sort") {
		t.Errorf("results.md lacks the sort comparison:\n%s", md)
	}
	if m := readFile(t, filepath.Join(cfg.Results, "machine.md")); !strings.Contains(m, "cores") || !strings.Contains(m, "open-file limit") {
		t.Errorf("machine.md:\n%s", m)
	}
	for _, ch := range sweepCharts {
		panels := svgSeries(t, filepath.Join(cfg.Results, ch.file))
		if len(panels) != 1 {
			t.Fatalf("%s: %d panels, want 1", ch.file, len(panels))
		}
		if got := strings.Join(panels[0], ","); got != "sort,bypass,hash" {
			t.Errorf("%s: series %s, want sort,bypass,hash", ch.file, got)
		}
	}
}

// testSweepRecordsFailure lowers the cells' open-file limit so that the
// hash writers, which hold a file per reduce partition, really fail with
// EMFILE: the cell is recorded as failed with that reason, the sort cell
// beside it succeeds, and the chart marks the failure.
func testSweepRecordsFailure(t *testing.T, bin string) {
	cfg := tinySweep(t, bin)
	cfg.Modes = []shuffle.Mode{shuffle.ModeSort, shuffle.ModeHash}
	cfg.Reduces = []int{200}
	cfg.MaxOpenFiles = 64
	res, err := RunSweep(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cells) != 2 {
		t.Fatalf("%d cells recorded, want 2", len(res.Cells))
	}
	sortCell, hashCell := res.Cells[0], res.Cells[1]
	if sortCell.Status != CellOK {
		t.Errorf("sort cell: %s: %s", sortCell.Status, sortCell.Reason)
	}
	if hashCell.Status != CellFailed || !strings.Contains(hashCell.Reason, "EMFILE") || hashCell.Phase != "write" {
		t.Fatalf("hash cell: status %q, reason %q, phase %q", hashCell.Status, hashCell.Reason, hashCell.Phase)
	}
	if run := hashCell.Runs[0]; !strings.Contains(run.Error, "too many open files") || run.ProcessPeakRSSBytes <= 0 {
		t.Errorf("hash run: error %q, peak RSS %d", run.Error, run.ProcessPeakRSSBytes)
	}
	if md := readFile(t, filepath.Join(cfg.Results, "results.md")); !strings.Contains(md, "**failed** in write: EMFILE") {
		t.Errorf("results.md does not show the failure:\n%s", md)
	}
	if svg := readFile(t, filepath.Join(cfg.Results, "time.svg")); !strings.Contains(svg, ">EMFILE<") {
		t.Errorf("time.svg does not mark the failed cell")
	}
}

// testSweepTimeout gives each run less time than a child needs to start:
// the run is stopped and recorded as timed out.
func testSweepTimeout(t *testing.T, bin string) {
	cfg := tinySweep(t, bin)
	cfg.Modes, cfg.Reduces = cfg.Modes[:1], cfg.Reduces[:1]
	cfg.CellTimeout = time.Millisecond
	res, err := RunSweep(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Cells[0]; c.Status != CellFailed || c.Reason != "timed out after 1ms" {
		t.Fatalf("cell: status %q, reason %q", c.Status, c.Reason)
	}
}

// testSweepInterruptAndResume cancels the sweep once its first cell is
// recorded: that cell is kept, the one running is not recorded, and
// --resume runs only the rest.
func testSweepInterruptAndResume(t *testing.T, bin string) {
	cfg := tinySweep(t, bin)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.OnRecorded = func(*SweepCell) { cancel() }
	_, err := RunSweep(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted sweep returned %v, want context.Canceled", err)
	}
	first, err := LoadSweepResults(cfg.Results)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Cells) != 1 || !first.Sessions[0].Interrupted {
		t.Fatalf("after the interruption: %d cells, sessions %+v", len(first.Cells), first.Sessions)
	}

	var ran []string
	cfg.OnRecorded = func(c *SweepCell) { ran = append(ran, c.key()) }
	cfg.Resume = true
	res, err := RunSweep(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Cells) != 6 || len(ran) != 5 || len(res.Sessions) != 2 {
		t.Fatalf("resumed: %d cells, %d run now, %d sessions; want 6, 5, 2", len(res.Cells), len(ran), len(res.Sessions))
	}
	if res.Cells[0].key() != first.Cells[0].key() || !res.Cells[0].Started.Equal(first.Cells[0].Started) {
		t.Fatalf("the first cell was run again: %+v", res.Cells[0])
	}
	for _, k := range ran {
		if k == first.Cells[0].key() {
			t.Fatalf("resume ran %s again", k)
		}
	}
}

// TestLineChartSVG checks the chart without a sweep: valid XML, one
// series group per mode in every panel, failures drawn as labelled crosses
// and not as values, and the limit line.
func TestLineChartSVG(t *testing.T) {
	res := &SweepResults{
		Grid:    SweepGrid{Modes: []string{"sort", "bypass", "hash"}, Maps: []int{16, 64}, Reduces: []int{10, 100, 1000, 10000}, DataBytes: []int64{1 << 20}, Nodes: 2, RecordBytes: 100, Runs: 1},
		Machine: Machine{CPUs: 2, OpenFileLimit: 20000},
	}
	for _, mode := range res.Grid.Modes {
		for _, m := range res.Grid.Maps {
			for _, r := range res.Grid.Reduces {
				c := &SweepCell{Mode: mode, Maps: m, Reduces: r, DataBytes: 1 << 20, Status: CellOK,
					TotalSeconds: float64(r) / 100, FilesCreated: m * r, PeakOpenFiles: r, WritePeakRSSBytes: 100 << 20, DiskBytes: 1 << 20}
				if mode == "hash" && r == 10000 {
					c.Status, c.Reason = CellFailed, "too many open files (EMFILE)"
				}
				res.Cells = append(res.Cells, c)
			}
		}
	}
	dir := t.TempDir()
	if err := WriteSweepReport(dir, res); err != nil {
		t.Fatal(err)
	}
	panels := svgSeries(t, filepath.Join(dir, "open-files.svg"))
	if len(panels) != 2 {
		t.Fatalf("%d panels, want 2", len(panels))
	}
	for _, p := range panels {
		if strings.Join(p, ",") != "sort,bypass,hash" {
			t.Fatalf("panel series %v", p)
		}
	}
	svg := readFile(t, filepath.Join(dir, "open-files.svg"))
	if n := strings.Count(svg, ">EMFILE<"); n != 2 {
		t.Errorf("%d failure labels, want 2 (one per panel)", n)
	}
	if !strings.Contains(svg, "ulimit -n 20000") || !strings.Contains(svg, "stroke-dasharray") {
		t.Errorf("no limit line")
	}
	// Triangles are hash's: 3 values (and a failure) per panel, and the
	// legend's.
	if n := strings.Count(svg, "<polygon"); n != 2*3+1 {
		t.Errorf("%d hash markers, want 7", n)
	}
}

// svgSeries parses an SVG as XML and returns, for each panel in order, the
// names of its series groups.
func svgSeries(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	var panels [][]string
	seen := map[string]bool{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", path, err)
		}
		el, ok := tok.(xml.StartElement)
		if !ok || el.Name.Local != "g" {
			continue
		}
		var class, series string
		for _, a := range el.Attr {
			switch a.Name.Local {
			case "class":
				class = a.Value
			case "data-series":
				series = a.Value
			}
		}
		if class != "series" {
			continue
		}
		if len(panels) == 0 || seen[series] {
			panels = append(panels, nil)
			clear(seen)
		}
		seen[series] = true
		panels[len(panels)-1] = append(panels[len(panels)-1], series)
	}
	return panels
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The JSON of a cell keeps every figure, failed or not.
func TestSweepCellJSON(t *testing.T) {
	c := SweepCell{Mode: "hash", Status: CellFailed, Reason: "timed out after 1s", Runs: []SweepRun{{Reason: "timed out after 1s"}}}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"total_seconds"`, `"write_seconds"`, `"read_seconds"`, `"files_created"`, `"peak_open_files"`, `"disk_bytes"`, `"write_peak_rss_bytes"`, `"gc_pause_seconds"`, `"fetch_requests"`, `"load_average_start"`} {
		if !bytes.Contains(b, []byte(field)) {
			t.Errorf("cell JSON lacks %s: %s", field, b)
		}
	}
}
