package launcher

import (
	"fmt"
	"strings"
	"testing"
)

func TestRingKeepsTheEnd(t *testing.T) {
	var r ring
	var all strings.Builder
	for i, n := range []int{0, 1, 100, tailBytes - 1, 3, tailBytes, 2*tailBytes + 5, 7, 4000, 200} {
		chunk := strings.Repeat(string(rune('a'+i)), n)
		r.write([]byte(chunk))
		all.WriteString(chunk)
		want := all.String()
		if len(want) > tailBytes {
			want = want[len(want)-tailBytes:]
		}
		if got := r.String(); got != want {
			t.Fatalf("after write %d (%d bytes): kept %d bytes, want the last %d", i, n, len(got), len(want))
		}
	}
}

func TestLineWriter(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	for _, tc := range []struct {
		name   string
		writes []string
		want   []string
	}{
		{"lines", []string{"a\nb\n"}, []string{"a", "b"}},
		{"split across writes", []string{"he", "llo\nwor", "ld\n"}, []string{"hello", "world"}},
		{"last line without newline", []string{"a\nb"}, []string{"a", "b"}},
		{"empty lines", []string{"\n\n"}, []string{"", ""}},
		{"a long line is cut", []string{long + "\nnext\n"}, []string{long[:maxLine], "next"}},
		{"a long line over writes", []string{long[:maxLine-1], long[maxLine-1:], "\nnext"}, []string{long[:maxLine], "next"}},
		{"exactly maxLine", []string{long[:maxLine] + "\n"}, []string{long[:maxLine]}},
	} {
		var got []string
		w := &lineWriter{emit: func(l []byte) { got = append(got, string(l)) }}
		for _, s := range tc.writes {
			if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
				t.Fatalf("%s: Write = %d, %v", tc.name, n, err)
			}
		}
		w.flush()
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("%s: lines %q, want %q", tc.name, abbreviate(got), abbreviate(tc.want))
		}
	}
}

// abbreviate shows lines by their length and start.
func abbreviate(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = fmt.Sprintf("%d bytes: %.12q", len(l), l)
	}
	return out
}

func TestCheckEnv(t *testing.T) {
	for _, tc := range []struct {
		env, args []string
		bad       string // "" if valid; else a word of the error
	}{
		{[]string{"SHOAL_DRIVER=h:1", "SHOAL_SLOTS=2", "SHOAL_X="}, []string{"a", ""}, ""},
		{nil, nil, ""},
		{[]string{"AWS_ENDPOINT_URL=http://m:9000", "AWS_ACCESS_KEY_ID=k", "AWS_SECRET_ACCESS_KEY=s", "AWS_REGION=r"}, nil, ""},
		{[]string{"AWS_PROFILE=p"}, nil, "AWS_PROFILE"},
		{[]string{"PATH=/bin"}, nil, "PATH"},
		{[]string{"shoal_x=1"}, nil, "shoal_x"},
		{[]string{"SHOAL_=1"}, nil, "SHOAL_"},
		{[]string{"SHOAL_A-B=1"}, nil, "SHOAL_A-B"},
		{[]string{"SHOAL_DRIVER"}, nil, "KEY=VALUE"},
		{[]string{"SHOAL_ROLE=secret-value"}, nil, "set by the node"},
		{[]string{"SHOAL_APP=x"}, nil, "set by the node"},
		{[]string{"SHOAL_NODE=x"}, nil, "set by the node"},
		{[]string{"SHOAL_WORKER_ID=x"}, nil, "set by the node"},
		{[]string{"SHOAL_CLUSTER_SECRET=x"}, nil, "set by the node"},
		{[]string{"SHOAL_A=1", "SHOAL_A=2"}, nil, "twice"},
		{[]string{"SHOAL_A=a\x00b"}, nil, "NUL"},
		{nil, []string{"a\x00"}, "NUL"},
		{make([]string, maxEnvVars+1), nil, "environment variables"},
		{nil, make([]string, maxArgs+1), "arguments"},
		{[]string{"SHOAL_A=" + strings.Repeat("v", maxEnvBytes)}, nil, "bytes"},
		{nil, []string{strings.Repeat("v", maxEnvBytes+1)}, "bytes"},
	} {
		err := CheckEnv(tc.env, tc.args)
		switch {
		case tc.bad == "" && err != nil:
			t.Errorf("CheckEnv(%.40q, %.40q) = %v, want nil", tc.env, tc.args, err)
		case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
			t.Errorf("CheckEnv(%.40q, %.40q) = %v, want an error about %s", tc.env, tc.args, err, tc.bad)
		}
		if err != nil && strings.Contains(err.Error(), "secret-value") {
			t.Errorf("the error quotes a value: %v", err)
		}
	}
}
