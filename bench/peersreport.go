package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultPeersResults is where `shoal bench peers` writes by default.
const DefaultPeersResults = "results/peers"

// WritePeersReport writes results.json, results.md, machine.md and
// ratios.svg into dir, each under a temporary name renamed into place.
func WritePeersReport(dir string, res *PeersResults) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	files := []struct {
		name string
		b    []byte
	}{
		{"results.json", append(js, '\n')},
		{"results.md", peersMarkdown(res)},
		{"machine.md", peersMachineMarkdown(res)},
		{"ratios.svg", peersChart(res)},
	}
	for _, f := range files {
		tmp := filepath.Join(dir, "."+f.name+".tmp")
		if err := os.WriteFile(tmp, f.b, 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, filepath.Join(dir, f.name)); err != nil {
			return err
		}
	}
	return nil
}

// LoadPeersResults reads the results.json of dir.
func LoadPeersResults(dir string) (*PeersResults, error) {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return nil, err
	}
	var res PeersResults
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", filepath.Join(dir, "results.json"), err)
	}
	return &res, nil
}

// formatValue writes a median in its unit.
func formatValue(v float64, unit string) string {
	if unit == "ms/task" {
		if v < 1 {
			return fmt.Sprintf("%.0f µs/task", 1000*v)
		}
		return fmt.Sprintf("%.2f ms/task", v)
	}
	return fmt.Sprintf("%.2f s", v)
}

func formatRuns(xs []float64, unit string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		if unit == "ms/task" {
			s[i] = fmt.Sprintf("%.3g", x)
		} else {
			s[i] = fmt.Sprintf("%.2f", x)
		}
	}
	return strings.Join(s, ", ")
}

func peersMarkdown(res *PeersResults) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# shoal against the peers\n\n")
	fmt.Fprintf(&b, "Written by `%s`, %s to %s (UTC), %d run(s) of each side, alternately (shoal first in odd runs, the peer first in even ones); medians. ",
		res.Command, res.Started.Format(time.DateTime), res.Finished.Format(time.TimeOnly), res.Runs)
	fmt.Fprintf(&b, "Times are whole processes, wall clock (inputs generated before, untimed), but for the task rows: the job's time over its tasks. ")
	fmt.Fprintf(&b, "Peak RSS is the largest of the runs, each the sum of the peaks of every process of the side's tree (shoal: driver, node service, workers), sampled from /proc every 100 ms (10 ms in the first second). ")
	fmt.Fprintf(&b, "The machine was shared with other work: 1-minute load average %.2f at the start, %.2f at the end (machine.md); both sides of a row ran under the same load, so the ratios are fairer than the times.\n\n",
		res.LoadStart[0], res.LoadEnd[0])
	for _, m := range res.Merges {
		fmt.Fprintf(&b, "The rows %s were measured again by `%s`, %s to %s (UTC), load average %.2f at the start, %.2f at the end; their figures replace the first run's.\n\n",
			strings.Join(m.Rows, ", "), m.Command, m.Started.Format(time.DateTime), m.Finished.Format(time.TimeOnly), m.LoadStart[0], m.LoadEnd[0])
	}
	if res.Quick {
		fmt.Fprintf(&b, "**--quick: small inputs, a check of the harness, not a measurement.**\n\n")
	}
	fmt.Fprintf(&b, "| row | shoal | peer | ratio (shoal / peer) | peak RSS shoal / peer | output |\n|---|---|---|--:|---|---|\n")
	for _, r := range res.Rows {
		switch {
		case r.Skipped != "":
			fmt.Fprintf(&b, "| %s | skipped: %s | | | | |\n", r.Name, r.Skipped)
			continue
		case r.Error != "":
			fmt.Fprintf(&b, "| %s | failed: %s | | | | |\n", r.Name, truncate(r.Error, 300))
			continue
		}
		out := "equal"
		if !r.Equal {
			out = "**DIFFERENT**: " + truncate(r.Mismatch, 200)
		}
		fmt.Fprintf(&b, "| %s | %s: **%s** (%s) | %s: **%s** (%s) | **%.2f×** | %s / %s | %s |\n", r.Name,
			r.Shoal.Name, formatValue(r.Shoal.Median, r.Unit), formatRuns(r.Shoal.Value, r.Unit),
			r.Peer.Name, formatValue(r.Peer.Median, r.Unit), formatRuns(r.Peer.Value, r.Unit),
			r.Ratio, formatBytes(r.Shoal.MaxPeakRSS()), formatBytes(r.Peer.MaxPeakRSS()), out)
	}
	fmt.Fprintf(&b, "\n![ratios](ratios.svg)\n\n## The rows\n\n")
	for _, r := range res.Rows {
		fmt.Fprintf(&b, "- **%s**: %s. Output check: %s. Load average at its start: %.2f.\n  - shoal: `%s`\n  - peer: `%s`\n",
			r.Name, r.Work, r.Check, r.LoadAverage, r.Shoal.Command, r.Peer.Command)
		if r.Command != "" && r.Command != res.Command {
			fmt.Fprintf(&b, "  - measured by `%s` at %s (UTC)\n", r.Command, r.Started.Format(time.DateTime))
		}
	}
	return b.Bytes()
}

func peersMachineMarkdown(res *PeersResults) []byte {
	m := res.Machine
	var b bytes.Buffer
	fmt.Fprintf(&b, "# The machine of the peer comparison\n\n| | |\n|---|---|\n")
	row := m.writeRows(&b)
	row("disk", "%s, %s free at the start", formatBytes(m.DiskBytes), formatBytes(m.DiskFreeBytes))
	row("run", "%s to %s (UTC)", res.Started.Format(time.DateTime), res.Finished.Format(time.DateTime))
	row("load average at the start", "%.2f %.2f %.2f (1, 5, 15 minutes)", res.LoadStart[0], res.LoadStart[1], res.LoadStart[2])
	row("load average at the end", "%.2f %.2f %.2f", res.LoadEnd[0], res.LoadEnd[1], res.LoadEnd[2])
	fmt.Fprintf(&b, "\nThe machine was shared with other work while the comparison ran; each row's load average at its start is in results.md.\n")
	return b.Bytes()
}

// peersChart draws each row's ratio as a horizontal bar on a log scale,
// with 1× (as fast as the peer) marked.
func peersChart(res *PeersResults) []byte {
	const (
		width, left, right, top, barH, gap = 900, 300, 60, 70, 26, 14
	)
	var rows []*PeerRow
	for _, r := range res.Rows {
		if r.Skipped == "" && r.Error == "" && r.Ratio > 0 {
			rows = append(rows, r)
		}
	}
	height := top + len(rows)*(barH+gap) + 50
	lo, hi := -1.0, 1.0 // log10 of the axis' ends: 0.1× to 10×
	for _, r := range rows {
		l := math.Log10(r.Ratio)
		lo, hi = math.Min(lo, math.Floor(l)), math.Max(hi, math.Ceil(l))
	}
	px := func(ratio float64) float64 {
		return left + (math.Log10(ratio)-lo)/(hi-lo)*(width-left-right)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	text(&b, width/2, 24, 17, "middle", "bold", "shoal's time over its peer's (medians; < 1: shoal faster)")
	sub := fmt.Sprintf("%d run(s) each, alternately; 1-minute load average %.1f at the start (shared machine)", res.Runs, res.LoadStart[0])
	if res.Quick {
		sub = "--quick: small inputs, not a measurement; " + sub
	}
	text(&b, width/2, 44, 11.5, "middle", "", sub)
	bottom := float64(height - 40)
	for d := lo; d <= hi+1e-9; d++ {
		x := px(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#ccc"/>`+"\n", x, top-6, x, bottom)
		text(&b, x, bottom+16, 10.5, "middle", "", strings.TrimSuffix(formatCount(math.Pow(10, d)), ".0")+"×")
	}
	one := px(1)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#333" stroke-width="1.5"/>`+"\n", one, top-6, one, bottom)
	for i, r := range rows {
		y := float64(top + i*(barH+gap))
		color := "#d62728"
		if r.Ratio <= 1 {
			color = "#2ca02c"
		}
		x := px(r.Ratio)
		x0, x1 := math.Min(one, x), math.Max(one, x)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%d" fill="%s"/>`+"\n", x0, y, math.Max(1, x1-x0), barH, color)
		text(&b, left-8, y+barH/2+4-6, 11, "end", "bold", r.Name)
		text(&b, left-8, y+barH/2+4+7, 10, "end", "", truncate("against "+r.Peer.Name, 50))
		value := fmt.Sprintf("%.2f×", r.Ratio)
		if !r.Equal {
			value += " (outputs differ)"
		}
		text(&b, x1+6, y+barH/2+4, 11, "start", "bold", value)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}
