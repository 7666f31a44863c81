package objstore

import (
	"strings"
	"testing"
)

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		in     string
		host   string
		secure bool
		errHas string
	}{
		{in: "http://127.0.0.1:9000", host: "127.0.0.1:9000"},
		{in: "http://127.0.0.1:9000/", host: "127.0.0.1:9000"},
		{in: "https://s3.us-east-1.amazonaws.com", host: "s3.us-east-1.amazonaws.com", secure: true},
		{in: "127.0.0.1:9000", errHas: "no scheme: write http://127.0.0.1:9000"},
		{in: "localhost:9000", errHas: "no scheme"},
		{in: "ftp://h", errHas: "neither http nor https"},
		{in: "http://", errHas: "no host"},
		{in: "http://h/bucket", errHas: "only a scheme and a host"},
		{in: "http://user:pw@h", errHas: "only a scheme and a host"},
	} {
		host, secure, err := ParseEndpoint(tc.in)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("ParseEndpoint(%q) = %v; want an error mentioning %q", tc.in, err, tc.errHas)
			}
			continue
		}
		if err != nil || host != tc.host || secure != tc.secure {
			t.Errorf("ParseEndpoint(%q) = %q, %v, %v; want %q, %v", tc.in, host, secure, err, tc.host, tc.secure)
		}
	}
}
