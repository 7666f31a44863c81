package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// This file draws the sweep's charts as SVG: small multiples of line
// charts with a logarithmic x axis, one series per writer mode, in a few
// hundred lines rather than a plotting dependency.

// lineChart is a grid of panels that share their axes and legend.
type lineChart struct {
	Title, Subtitle string
	XLabel, YLabel  string
	LogY            bool
	// YFormat writes a y tick's value; default strconv's shortest form.
	YFormat func(float64) string
	Series  []chartSeries // legend, in drawing order
	Panels  []chartPanel  // drawn Cols to a row
	Cols    int
	// Limit, if set, is a horizontal reference line across every panel.
	Limit *chartLimit
	// XTicks, if set, are the x axis's ticks; default the powers of ten.
	XTicks []chartTick
	// Note, if set, is a line under the legend.
	Note string
}

type chartTick struct {
	X     float64
	Label string
}

type chartSeries struct {
	Name, Color, Marker string // marker: circle, square, triangle or diamond
}

type chartPanel struct {
	Title string
	// Points[i] are the points of Series[i], by increasing X.
	Points [][]chartPoint
}

// chartPoint is a measured value, or a failed measurement (Failed set to
// a short reason: it is drawn as a cross above the plot, not as a value).
type chartPoint struct {
	X, Y   float64
	Failed string
}

type chartLimit struct {
	Y     float64
	Label string
}

// Layout, in pixels.
const (
	panelW, panelH   = 330, 250
	plotLeft         = 62 // from the panel's left edge to the plot
	plotRight        = 14
	plotTop          = 58 // room for the panel title and the failure rows
	plotBottom       = 44 // x ticks and label
	chartHeaderH     = 104
	failRowH         = 10
	chartSidePadding = 10
	chartMinWidth    = 980 // room for the title and legend
)

// SVG renders the chart.
func (c *lineChart) SVG() []byte {
	cols := max(1, min(c.Cols, len(c.Panels)))
	rows := (len(c.Panels) + cols - 1) / cols
	width := max(cols*panelW+2*chartSidePadding, chartMinWidth)
	left := float64(width-cols*panelW) / 2 // the panels, centred
	height := chartHeaderH + rows*panelH + 10
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	text(&b, float64(width)/2, 24, 17, "middle", "bold", c.Title)
	text(&b, float64(width)/2, 44, 11.5, "middle", "", c.Subtitle)
	c.legend(&b, float64(width)/2, 70)
	if c.Note != "" {
		text(&b, float64(width)/2, 92, 11.5, "middle", "", c.Note)
	}

	xmin, xmax := c.xRange()
	ymin, ymax := c.yRange()
	for i, p := range c.Panels {
		x0 := left + float64((i%cols)*panelW)
		y0 := float64(chartHeaderH + (i/cols)*panelH)
		c.panel(&b, p, x0, y0, i%cols == 0, xmin, xmax, ymin, ymax)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

// legend draws the series, the failure mark and the limit line, centred
// at (cx, y).
func (c *lineChart) legend(b *bytes.Buffer, cx, y float64) {
	type item struct {
		draw  func(x float64)
		label string
	}
	var items []item
	for _, s := range c.Series {
		items = append(items, item{func(x float64) {
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", x, y, x+26, y, s.Color)
			marker(b, s.Marker, s.Color, x+13, y, 4)
		}, s.Name})
	}
	items = append(items, item{func(x float64) {
		text(b, x+13, y+5, 15, "middle", "bold", "×")
	}, "failed (reason above the plot)"})
	if c.Limit != nil {
		items = append(items, item{func(x float64) {
			fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555" stroke-width="1.5" stroke-dasharray="5,3"/>`+"\n", x, y, x+26, y)
		}, c.Limit.Label})
	}
	widths := make([]float64, len(items))
	total := 0.0
	for i, it := range items {
		widths[i] = 34 + 6.6*float64(len([]rune(it.label))) + 18
		total += widths[i]
	}
	x := cx - total/2
	for i, it := range items {
		it.draw(x)
		text(b, x+32, y+4, 12, "start", "", it.label)
		x += widths[i]
	}
}

func (c *lineChart) xRange() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range c.Panels {
		for _, pts := range p.Points {
			for _, pt := range pts {
				lo, hi = min(lo, pt.X), max(hi, pt.X)
			}
		}
	}
	if math.IsInf(lo, 0) {
		return 1, 10
	}
	// A little room on both sides, so that no point sits on an axis.
	return math.Log10(lo) - 0.18, math.Log10(hi) + 0.18
}

// yRange is the shared y range, in log10 units for a log axis.
func (c *lineChart) yRange() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, p := range c.Panels {
		for _, pts := range p.Points {
			for _, pt := range pts {
				if pt.Failed == "" && (!c.LogY || pt.Y > 0) {
					lo, hi = min(lo, pt.Y), max(hi, pt.Y)
				}
			}
		}
	}
	if c.Limit != nil {
		lo, hi = min(lo, c.Limit.Y), max(hi, c.Limit.Y)
	}
	if math.IsInf(lo, 0) {
		lo, hi = 1, 10
	}
	if c.LogY {
		return math.Floor(math.Log10(lo)), math.Max(math.Ceil(math.Log10(hi)), math.Floor(math.Log10(lo))+1)
	}
	step := niceStep(hi / 5)
	return 0, math.Max(step, math.Ceil(hi/step)*step)
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func (c *lineChart) panel(b *bytes.Buffer, p chartPanel, x0, y0 float64, first bool, xmin, xmax, ymin, ymax float64) {
	left, right := x0+plotLeft, x0+panelW-plotRight
	top, bottom := y0+plotTop, y0+panelH-plotBottom
	px := func(x float64) float64 { return left + (math.Log10(x)-xmin)/(xmax-xmin)*(right-left) }
	py := func(y float64) float64 {
		if c.LogY {
			y = math.Log10(y)
		}
		return bottom - (y-ymin)/(ymax-ymin)*(bottom-top)
	}
	yfmt := c.YFormat
	if yfmt == nil {
		yfmt = func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	}

	text(b, (left+right)/2, y0+16, 13, "middle", "bold", p.Title)
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#fafafa" stroke="#999"/>`+"\n", left, top, right-left, bottom-top)

	// y grid and ticks
	if c.LogY {
		for d := ymin; d <= ymax+1e-9; d++ {
			v := math.Pow(10, d)
			grid(b, left, right, py(v), "#ccc")
			text(b, left-5, py(v)+4, 10.5, "end", "", yfmt(v))
			if d < ymax {
				for _, m := range []float64{2, 5} {
					grid(b, left, right, py(m*v), "#eee")
					if ymax-ymin <= 3 {
						text(b, left-5, py(m*v)+4, 9, "end", "", yfmt(m*v))
					}
				}
			}
		}
	} else {
		step := niceStep((ymax - ymin) / 5)
		for v := ymin; v <= ymax+step/1e6; v += step {
			grid(b, left, right, py(v), "#ddd")
			text(b, left-5, py(v)+4, 10.5, "end", "", yfmt(v))
		}
	}
	// x ticks at powers of ten, or where XTicks says
	ticks := c.XTicks
	if ticks == nil {
		for d := math.Ceil(xmin); d <= xmax; d++ {
			ticks = append(ticks, chartTick{X: math.Pow(10, d), Label: formatCount(math.Pow(10, d))})
		}
	}
	for _, t := range ticks {
		x := px(t.X)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, top, x, bottom)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`+"\n", x, bottom, x, bottom+4)
		text(b, x, bottom+16, 10.5, "middle", "", t.Label)
	}
	text(b, (left+right)/2, bottom+34, 11, "middle", "", c.XLabel)
	if first {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
			x0+14, (top+bottom)/2, x0+14, (top+bottom)/2, esc(c.YLabel))
	}
	if c.Limit != nil {
		y := py(c.Limit.Y)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555" stroke-width="1.5" stroke-dasharray="5,3"/>`+"\n", left, y, right, y)
	}

	for i, s := range c.Series {
		if i >= len(p.Points) {
			break
		}
		// Earlier series are drawn wider, so that a series hidden under a
		// later one with the same values still shows around it.
		width, radius := 2+1.5*float64(len(c.Series)-1-i), 4+1.5*float64(len(c.Series)-1-i)
		fmt.Fprintf(b, `<g class="series" data-series="%s">`+"\n", esc(s.Name))
		var run []string
		flush := func() {
			if len(run) > 1 {
				fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="%g" points="%s"/>`+"\n", s.Color, width, strings.Join(run, " "))
			}
			run = run[:0]
		}
		for _, pt := range p.Points[i] {
			if pt.Failed != "" || c.LogY && pt.Y <= 0 {
				flush()
				continue
			}
			run = append(run, fmt.Sprintf("%.1f,%.1f", px(pt.X), py(pt.Y)))
		}
		flush()
		for _, pt := range p.Points[i] {
			x := px(pt.X)
			switch {
			case pt.Failed != "":
				// One row per series above the plot, so that crosses of
				// several series at one x do not overlap.
				y := top - 4 - float64(len(c.Series)-1-i)*failRowH
				fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="13" font-weight="bold" text-anchor="middle" fill="%s">×</text>`+"\n", x, y+1, s.Color)
				fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="8.5" fill="%s">%s</text>`+"\n", x+6, y-1, s.Color, esc(pt.Failed))
			case c.LogY && pt.Y <= 0:
			default:
				marker(b, s.Marker, s.Color, x, py(pt.Y), radius)
			}
		}
		b.WriteString("</g>\n")
	}
}

func grid(b *bytes.Buffer, left, right, y float64, color string) {
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", left, y, right, y, color)
}

func marker(b *bytes.Buffer, kind, color string, x, y, r float64) {
	switch kind {
	case "square":
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", x-r, y-r, 2*r, 2*r, color)
	case "triangle":
		fmt.Fprintf(b, `<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="%s"/>`+"\n", x, y-r-1, x-r-1, y+r, x+r+1, y+r, color)
	case "diamond":
		fmt.Fprintf(b, `<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="%s"/>`+"\n", x, y-r-1, x+r+1, y, x, y+r+1, x-r-1, y, color)
	default:
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s"/>`+"\n", x, y, r, color)
	}
}

func text(b *bytes.Buffer, x, y, size float64, anchor, weight, s string) {
	w := ""
	if weight != "" {
		w = fmt.Sprintf(` font-weight="%s"`, weight)
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="%g" text-anchor="%s"%s>%s</text>`+"\n", x, y, size, anchor, w, esc(s))
}

func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// formatCount writes 10, 100, 1k, 10k, 1M.
func formatCount(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
