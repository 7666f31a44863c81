package shuffle

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"shoal/shuffleservice/shufflepb"
)

// decimalSum is a CombineFunc adding decimal values.
func decimalSum(dst, a, b []byte) []byte {
	x, _ := strconv.ParseInt(string(a), 10, 64)
	y, _ := strconv.ParseInt(string(b), 10, 64)
	return strconv.AppendInt(dst, x+y, 10)
}

// TestSorter runs the sort writer through testdata/sorter. Commands:
//
//	write [limit=N] [partitions=R] [frame=N] [mode=sort|bypass|hash] [combine]
//	P KEY VALUE
//	...
//
// creates a writer when given options (else appends to the current one)
// and writes one record per line; it prints the writer's stats.
//
//	commit
//
// commits and prints every partition's records, as read back from disk,
// and the number of spilled runs. Regenerate with -rewrite.
func TestSorter(t *testing.T) {
	datadriven.Walk(t, "testdata/sorter", func(t *testing.T, path string) {
		var w Writer
		var opts WriterOptions
		t.Cleanup(func() {
			if w != nil {
				w.Discard()
			}
		})
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "write":
				if len(d.CmdArgs) > 0 || w == nil {
					if w != nil {
						w.Discard()
					}
					opts = testOptions(t.TempDir(), ModeSort, CodecS2, 1)
					for _, a := range d.CmdArgs {
						var err error
						switch a.Key {
						case "limit":
							opts.MemoryLimit, err = strconv.Atoi(a.Vals[0])
						case "partitions":
							opts.Partitions, err = strconv.Atoi(a.Vals[0])
						case "frame":
							opts.FrameSize, err = strconv.Atoi(a.Vals[0])
						case "mode":
							opts.Mode, err = ParseMode(a.Vals[0])
						case "combine":
							opts.Combine = decimalSum
						default:
							d.Fatalf(t, "unknown argument %s", a.Key)
						}
						if err != nil {
							d.Fatalf(t, "%s: %v", a.Key, err)
						}
					}
					var err error
					if w, err = NewWriter(opts); err != nil {
						return err.Error()
					}
				}
				for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
					f := strings.Fields(line)
					if len(f) == 0 {
						continue
					}
					for len(f) < 3 {
						f = append(f, "")
					}
					p, err := strconv.Atoi(f[0])
					if err != nil {
						d.Fatalf(t, "line %q: %v", line, err)
					}
					if err := w.Write(p, []byte(f[1]), []byte(f[2])); err != nil {
						return fmt.Sprintf("error: %v", err)
					}
				}
				st := w.Stats()
				return fmt.Sprintf("records=%d spills=%d\n", st.Records, st.Spills)
			case "commit":
				out, err := w.Commit(context.Background(), &memCommitter{})
				if err != nil {
					return fmt.Sprintf("error: %v", err)
				}
				var b strings.Builder
				frames := countFrames(t, opts.Layout, opts.App, out)
				for p, recs := range readMapOutput(t, opts.Layout, opts.App, out) {
					fmt.Fprintf(&b, "p%d (%d frames):", p, frames[p])
					for _, r := range recs {
						fmt.Fprintf(&b, " %s=%s", r.key, r.value)
					}
					b.WriteString("\n")
				}
				st := w.Stats()
				fmt.Fprintf(&b, "spills=%d files=%d\n", st.Spills, len(listFiles(t, opts.Layout.Dirs...)))
				w = nil
				return b.String()
			}
			d.Fatalf(t, "unknown command %s", d.Cmd)
			return ""
		})
	})
}

// countFrames returns the number of frames of each block of a sorted
// output.
func countFrames(t *testing.T, layout Layout, app string, out *shufflepb.MapOutput) []int {
	data, err := os.ReadFile(layout.DataPath(app, out.Shuffle, out.Map, out.Attempt))
	if err != nil {
		t.Fatal(err)
	}
	offsets := OffsetsOf(out.Lengths)
	n := make([]int, len(out.Lengths))
	for p := range n {
		for b := data[offsets[p]:offsets[p+1]]; len(b) > 0; n[p]++ {
			if _, b, err = NextFrame(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	return n
}
