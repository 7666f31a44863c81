package client_test

import (
	"context"
	"slices"
	"testing"

	"shoal/client"
	"shoal/shuffleservice/nodeclient"
)

// squares runs a job with a shuffle on c and checks its answer.
func squares(t *testing.T, c *client.Context) {
	t.Helper()
	ctx := context.Background()
	kv := client.Map(client.Parallelize(c, []int64{1, 2, 3, 4}, 2), func2kv)
	got, err := client.Collect(ctx, client.ReduceByKey(kv, add, 2))
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, func(a, b client.KV[string, int64]) int { return int(a.Value - b.Value) })
	if len(got) != 2 || got[0] != (client.KV[string, int64]{Key: "odd", Value: 4}) || got[1] != (client.KV[string, int64]{Key: "even", Value: 6}) {
		t.Fatalf("got %v, want odd 4, even 6", got)
	}
}

func func2kv(x int64) client.KV[string, int64] {
	if isEven(x) {
		return client.KV[string, int64]{Key: "even", Value: x}
	}
	return client.KV[string, int64]{Key: "odd", Value: x}
}

// nodeStatus calls Status on the local cluster's first node with creds.
func nodeStatus(t *testing.T, c *client.Context, creds nodeclient.Credentials) error {
	t.Helper()
	cl, err := nodeclient.Dial(c.Local().Nodes()[0].Addr, nodeclient.WithCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, err = cl.Status(context.Background())
	return err
}

// TestLocalModeMutualTLS: local mode runs its job over mutual TLS (an
// ephemeral CA): its nodes refuse a client that has the cluster secret
// but no certificate, and serve one with the driver's.
func TestLocalModeMutualTLS(t *testing.T) {
	c, _ := newContext(t, 1, 2)
	squares(t, c)
	creds := c.Local().Credentials()
	if creds.TLS == nil {
		t.Fatal("local mode has no certificate")
	}
	if err := nodeStatus(t, c, creds); err != nil {
		t.Fatalf("the driver's credentials: %v", err)
	}
	if err := nodeStatus(t, c, nodeclient.Credentials{Secret: creds.Secret}); err == nil {
		t.Fatal("a node served a client without a certificate")
	}
}

// TestLocalModeInsecure: Options.Insecure runs the same job on plain TCP.
func TestLocalModeInsecure(t *testing.T) {
	c, _ := newContextWith(t, client.Options{Nodes: 1, WorkersPerNode: 2, Insecure: true})
	squares(t, c)
	creds := c.Local().Credentials()
	if creds.TLS != nil {
		t.Fatal("an insecure local cluster has a certificate")
	}
	if err := nodeStatus(t, c, creds); err != nil {
		t.Fatalf("plain TCP with the secret: %v", err)
	}
}
