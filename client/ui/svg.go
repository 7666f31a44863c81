package ui

import (
	"fmt"
	"slices"
)

// The DAG and the timeline are drawn as SVG by the templates from the
// layouts computed here: boxes and lines with coordinates, no script.

// dag is the layout of a job's stage DAG: a column per depth (a stage is
// one column right of its deepest parent), parents on the left.
type dag struct {
	Width, Height int
	Boxes         []dagBox
	Edges         []dagEdge
}

type dagBox struct {
	X, Y, W, H int
	ID         int
	Name       string
	Detail     string
	Class      string // skipped, succeeded, failed, running
	Link       string
}

type dagEdge struct{ X1, Y1, X2, Y2 int }

const (
	dagBoxW, dagBoxH = 190, 58
	dagGapX, dagGapY = 60, 22
	dagPad           = 10
)

func layoutDAG(appPath string, j Job) dag {
	in := map[int]JobStage{}
	for _, s := range j.StageList {
		in[s.ID] = s
	}
	depth := map[int]int{}
	var depthOf func(id int, seen map[int]bool) int
	depthOf = func(id int, seen map[int]bool) int {
		if d, ok := depth[id]; ok {
			return d
		}
		if seen[id] { // a cycle cannot happen; do not loop if a log says so
			return 0
		}
		seen[id] = true
		d := 0
		for _, p := range in[id].Parents {
			if _, ok := in[p]; ok {
				d = max(d, depthOf(p, seen)+1)
			}
		}
		depth[id] = d
		return d
	}
	rows := map[int]int{}
	pos := map[int][2]int{}
	var g dag
	ids := make([]int, 0, len(j.StageList))
	for _, s := range j.StageList {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s := in[id]
		d := depthOf(id, map[int]bool{})
		r := rows[d]
		rows[d]++
		x, y := dagPad+d*(dagBoxW+dagGapX), dagPad+r*(dagBoxH+dagGapY)
		pos[id] = [2]int{x, y}
		cls, detail := s.Status, fmt.Sprintf("%s · %d tasks · %s", s.Kind, s.Tasks, s.Status)
		if s.Skipped {
			cls, detail = "skipped", s.Kind+" · skipped"
		}
		if s.Attempts > 1 {
			detail += fmt.Sprintf(" · %d attempts", s.Attempts)
		}
		b := dagBox{X: x, Y: y, W: dagBoxW, H: dagBoxH, ID: id, Name: s.Name, Detail: detail, Class: cls}
		if !s.Skipped && s.Attempts > 0 {
			b.Link = fmt.Sprintf("%s/stage/%d/", appPath, id)
		}
		g.Boxes = append(g.Boxes, b)
		g.Width = max(g.Width, x+dagBoxW+dagPad)
		g.Height = max(g.Height, y+dagBoxH+dagPad)
	}
	for _, id := range ids {
		for _, p := range in[id].Parents {
			from, ok := pos[p]
			if !ok {
				continue
			}
			to := pos[id]
			g.Edges = append(g.Edges, dagEdge{X1: from[0] + dagBoxW, Y1: from[1] + dagBoxH/2, X2: to[0], Y2: to[1] + dagBoxH/2})
		}
	}
	return g
}

// timeline is the Jobs page's picture: a bar per job across the
// application's time, and a mark per worker or node event above them.
type timeline struct {
	Width, Height int
	Bars          []timelineBar
	Marks         []timelineMark
	Start, End    int64
}

type timelineBar struct {
	X, Y, W int
	Class   string
	Title   string
	Link    string
}

type timelineMark struct {
	X     int
	Class string
	Title string
}

const (
	tlWidth, tlLeft, tlRow, tlTop = 900, 10, 14, 26
)

func layoutTimeline(appPath string, app Application, jobs []Job, events []TimelineEvent) timeline {
	start, end := app.Start, max(app.End, app.Last, app.Start+1)
	span := float64(end - start)
	x := func(ts int64) int { return tlLeft + int(float64(ts-start)/span*float64(tlWidth-2*tlLeft)) }
	t := timeline{Width: tlWidth, Start: start, End: end}
	for i, j := range jobs {
		je := j.End
		if je == 0 {
			je = end
		}
		x1 := x(j.Start)
		t.Bars = append(t.Bars, timelineBar{
			X: x1, Y: tlTop + i*tlRow, W: max(x(je)-x1, 2), Class: j.Status,
			Title: fmt.Sprintf("job %d (%s): %s, %s", j.ID, j.Action, j.Status, fmtMs(j.DurationMs)),
			Link:  fmt.Sprintf("%s/job/%d/", appPath, j.ID),
		})
	}
	for _, e := range events {
		title := e.Kind + " " + e.What
		if e.Reason != "" {
			title += ": " + e.Reason
		}
		t.Marks = append(t.Marks, timelineMark{X: x(e.TS), Class: e.Kind, Title: title})
	}
	t.Height = tlTop + len(jobs)*tlRow + 6
	return t
}
