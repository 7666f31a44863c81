package client_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"shoal/client"
	"shoal/objstore"
)

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts client.Options
		want []string // each a problem the error must name; none: valid
	}{
		{name: "zero value is the embedded default", opts: client.Options{}},
		{name: "every field set and consistent", opts: client.Options{
			Nodes: 3, WorkersPerNode: 2, Slots: 4, ShuffleMode: "hash", Codec: "zstd", NoShuffleService: true,
			MaxTaskFailures: 1, MaxStageAttempts: 1, LocalityWait: time.Second, HeartbeatTimeout: time.Second,
			HeapCacheBytes: 1, MaxDirectResultBytes: 1 << 10, MaxResultBytes: 1 << 10, CacheBytes: 1,
			CheckpointDir: "s3://bucket/prefix", S3Endpoint: "http://127.0.0.1:9000", CheckpointKeep: 2,
		}},
		{name: "CheckpointKeep with a local store", opts: client.Options{CheckpointDir: "/var/tmp/ckpt", CheckpointKeep: 1}},
		{name: "a small MaxResultBytes alone (MaxDirectResultBytes left to its default)", opts: client.Options{MaxResultBytes: 100 << 10}},
		{name: "negative counts", opts: client.Options{Nodes: -1, WorkersPerNode: -2, Slots: -3, MaxTaskFailures: -4, MaxStageAttempts: -5, CheckpointKeep: -6, CheckpointDir: "/d"},
			want: []string{"Nodes -1 is negative", "WorkersPerNode -2 is negative", "Slots -3 is negative", "MaxTaskFailures -4 is negative", "MaxStageAttempts -5 is negative", "CheckpointKeep -6 is negative"}},
		{name: "negative sizes", opts: client.Options{HeapCacheBytes: -1, MaxDirectResultBytes: -2, MaxResultBytes: -3, CacheBytes: -4},
			want: []string{"HeapCacheBytes -1 is negative", "MaxDirectResultBytes -2 is negative", "MaxResultBytes -3 is negative", "CacheBytes -4 is negative"}},
		{name: "negative durations", opts: client.Options{LocalityWait: -time.Millisecond, HeartbeatTimeout: -time.Second},
			want: []string{"LocalityWait -1ms is negative", "HeartbeatTimeout -1s is negative"}},
		{name: "unknown shuffle mode and codec", opts: client.Options{ShuffleMode: "merge", Codec: "gzip"},
			want: []string{`ShuffleMode "merge"`, `Codec "gzip"`}},
		{name: "direct results larger than all results", opts: client.Options{MaxDirectResultBytes: 2 << 20, MaxResultBytes: 1 << 20},
			want: []string{"MaxDirectResultBytes 2097152 exceeds MaxResultBytes 1048576"}},
		{name: "CheckpointKeep without a store", opts: client.Options{CheckpointKeep: 2},
			want: []string{"CheckpointKeep 2 without a CheckpointDir"}},
		{name: "S3Endpoint without a store (for s3:// inputs and outputs)", opts: client.Options{S3Endpoint: "http://127.0.0.1:9000"}},
		{name: "S3 options", opts: client.Options{S3: objstore.Options{Endpoint: "http://127.0.0.1:9000", AccessKey: "a", SecretKey: "b", PartSize: 8 << 20}}},
		{name: "S3Endpoint and S3.Endpoint differ", opts: client.Options{S3Endpoint: "http://127.0.0.1:9000", S3: objstore.Options{Endpoint: "http://127.0.0.1:9001"}},
			want: []string{`S3Endpoint "http://127.0.0.1:9000" and S3.Endpoint "http://127.0.0.1:9001" differ`}},
		{name: "bad S3 options", opts: client.Options{S3: objstore.Options{Endpoint: "127.0.0.1:9000", AccessKey: "only", PartSize: 1}},
			want: []string{"S3: objstore: invalid S3 options: S3 endpoint \"127.0.0.1:9000\" has no scheme", "only one of the access key and the secret key", "PartSize 1"}},
		{name: "Insecure on loopback", opts: client.Options{Insecure: true, DriverListen: "127.0.0.1:0"}},
		{name: "cluster mode without a certificate", opts: client.Options{Master: "shoal://h1:7077"},
			want: []string{"cluster mode needs the driver's certificate: TLSDir"}},
		{name: "Insecure beyond loopback", opts: client.Options{Master: "shoal://127.0.0.1:7077,10.0.0.5:7077", Insecure: true, DriverHost: "10.0.0.9"},
			want: []string{"DriverHost 10.0.0.9 is not loopback", "node 10.0.0.5:7077 is not loopback"}},
		{name: "Insecure with a resolved master", opts: client.Options{Master: "dns://shoal-node:7077", Insecure: true},
			want: []string{"Master dns://shoal-node:7077 is resolved at run time"}},
		{name: "Insecure with certificates", opts: client.Options{Master: "shoal://127.0.0.1:7077", Insecure: true, TLSDir: "/etc/shoal-tls"},
			want: []string{"Insecure with TLSDir"}},
		{name: "certificates in local mode", opts: client.Options{TLSDir: "/etc/shoal-tls", TLSServerName: "n"},
			want: []string{"TLSDir and TLSServerName are cluster mode's"}},
		{name: "every problem at once", opts: client.Options{Nodes: -1, Codec: "lz4", CheckpointKeep: 1, S3Endpoint: "x"},
			want: []string{"Nodes -1", `Codec "lz4"`, "CheckpointKeep 1 without", `S3: objstore: invalid S3 options: S3 endpoint "x" has no scheme`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v, want nil", err)
				}
				o := tc.opts
				o.EnsureDefaults()
				if o.Nodes <= 0 || o.Slots <= 0 || o.MaxResultBytes <= 0 || o.HeartbeatTimeout <= 0 || o.ShuffleMode == "" || o.Codec == "" || o.Logger == nil || o.WorkerStderr == nil {
					t.Fatalf("EnsureDefaults left a zero field: %+v", o)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want errors naming %q", tc.want)
			}
			if !errors.Is(err, client.ErrInvalidOptions) {
				t.Errorf("Validate: %v does not wrap ErrInvalidOptions", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("Validate reported %d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %v\nwant a problem naming %q", err, w)
				}
			}
		})
	}
}

// EnsureDefaults fills zero fields only: a negative one is left for
// Validate to report, not replaced by the default.
func TestOptionsEnsureDefaultsKeepsNegatives(t *testing.T) {
	o := client.Options{Nodes: -1, HeartbeatTimeout: -time.Second, MaxResultBytes: -1}
	o.EnsureDefaults()
	if o.Nodes != -1 || o.HeartbeatTimeout != -time.Second || o.MaxResultBytes != -1 {
		t.Fatalf("EnsureDefaults replaced negative fields: Nodes %d, HeartbeatTimeout %v, MaxResultBytes %d", o.Nodes, o.HeartbeatTimeout, o.MaxResultBytes)
	}
	if o.WorkersPerNode != client.DefaultWorkersPerNode || o.MaxTaskFailures != client.DefaultMaxTaskFailures {
		t.Fatalf("EnsureDefaults: WorkersPerNode %d, MaxTaskFailures %d", o.WorkersPerNode, o.MaxTaskFailures)
	}
}

// NewContext refuses invalid options before it starts any process.
func TestNewContextRefusesInvalidOptions(t *testing.T) {
	start := time.Now()
	c, err := client.NewContext(context.Background(), client.Options{Slots: -1, Binary: "/nonexistent/shoal"})
	if err == nil {
		c.Close()
		t.Fatal("NewContext with Slots -1 succeeded")
	}
	if !errors.Is(err, client.ErrInvalidOptions) || !strings.Contains(err.Error(), "Slots -1") {
		t.Fatalf("NewContext: %v, want the Slots problem", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("NewContext took %v to refuse its options", d)
	}
}
