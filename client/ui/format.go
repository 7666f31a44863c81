package ui

import (
	"fmt"
	"html/template"
	"strings"
	"time"
)

// templateFuncs are the helpers the templates use.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"ms":      fmtMs,
		"bytes":   fmtBytes,
		"time":    fmtTime,
		"metric":  fmtMetric,
		"keys":    sortedKeys[int],
		"keys64":  sortedKeys[int64],
		"keysStr": sortedKeys[string],
		"add":     func(a, b int) int { return a + b },
		"pct": func(a, b int64) string {
			if b <= 0 {
				return "-"
			}
			return fmt.Sprintf("%.0f%%", 100*float64(a)/float64(b))
		},
	}
}

// fmtMs shows a duration in milliseconds the way a person reads it.
func fmtMs(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case ms < 1000:
		return fmt.Sprintf("%d ms", ms)
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%.1f min", d.Minutes())
	}
	return fmt.Sprintf("%.1f h", d.Hours())
}

// fmtBytes shows a size in binary units.
func fmtBytes(b int64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := int64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTP"[exp])
}

func fmtTime(ts int64) string {
	if ts == 0 {
		return "-"
	}
	return time.UnixMilli(ts).Format("2006-01-02 15:04:05.000")
}

// fmtMetric shows a task metric by its unit, read from its name.
func fmtMetric(name string, v int64) string {
	switch {
	case strings.HasSuffix(name, "_ms"):
		return fmtMs(v)
	case strings.HasSuffix(name, "_us"):
		if v < 10000 {
			return fmt.Sprintf("%.1f ms", float64(v)/1000)
		}
		return fmtMs(v / 1000)
	case strings.Contains(name, "bytes"):
		return fmtBytes(v)
	}
	return fmt.Sprint(v)
}
