package client

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress prints one line per stage: on a terminal a bar redrawn in
// place, [Stage 3:=====>      (12 + 4) / 40]; otherwise a line when the
// stage starts and one when it ends.
type progress struct {
	w        io.Writer
	terminal bool
	last     time.Time
}

func newProgress(w io.Writer) *progress {
	if w == nil {
		return nil
	}
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) start(stage int, name string, tasks int) {
	if p == nil || p.terminal {
		return
	}
	fmt.Fprintf(p.w, "Stage %d (%s): %d tasks\n", stage, name, tasks)
}

func (p *progress) update(stage, done, running, total int) {
	if p == nil || !p.terminal || time.Since(p.last) < 100*time.Millisecond && done < total {
		return
	}
	p.last = time.Now()
	const width = 30
	fill := 0
	if total > 0 {
		fill = done * width / total
	}
	bar := strings.Repeat("=", fill)
	if fill < width {
		bar += ">" + strings.Repeat(" ", width-fill-1)
	}
	fmt.Fprintf(p.w, "\r[Stage %d:%s(%d + %d) / %d]", stage, bar, done, running, total)
}

func (p *progress) end(stage int, name string, status string, took time.Duration) {
	if p == nil {
		return
	}
	if p.terminal {
		fmt.Fprint(p.w, "\r\033[K")
		return
	}
	fmt.Fprintf(p.w, "Stage %d (%s): %s in %.2fs\n", stage, name, status, took.Seconds())
}
