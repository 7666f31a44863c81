package shuffleservice

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"shoal/blockstore"
	"shoal/internal/poll"
	"shoal/internal/testbin"
	"shoal/shuffleservice/internal/nodetest"
	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/nodeclient"
	"shoal/shuffleservice/shufflepb"
)

// honestFetchBound is the latency the suite states for the honest
// application's fetches while the node is attacked (they take
// milliseconds on an idle machine).
const honestFetchBound = 5 * time.Second

// TestHostileClients attacks a real node process through its gRPC API
// while an honest application fetches its committed shuffle in a loop
// and checks every byte. Each attack must get its clear status; the
// honest fetches must stay right and within honestFetchBound; the node
// must still be the same process at the end.
func TestHostileClients(t *testing.T) {
	bin := testbin.Shoal(t)
	root := t.TempDir()
	const secret = "hostile suite cluster secret"
	secretFile := filepath.Join(root, "secret")
	if err := os.WriteFile(secretFile, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	node, _ := nodetest.StartProcess(t, bin, []string{filepath.Join(root, "d")}, "--cluster-secret-file", secretFile)
	addr := node.Addr()
	ctx := context.Background()
	dial := func(opts ...nodeclient.DialOption) *nodeclient.Client {
		c, err := nodeclient.Dial(addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	honest := dial(nodeclient.WithClusterSecret(secret), nodeclient.WithAppToken("honest-token"))
	attacker := dial(nodeclient.WithClusterSecret(secret), nodeclient.WithAppToken("attacker-token"))
	outsider := dial(nodeclient.WithAppToken("honest-token")) // knows a token, not the cluster secret

	// The honest application's shuffle, and the attacker's own.
	const R = 16
	commit := func(c *nodeclient.Client, app string, maps uint32) ([]*shufflepb.BlockRange, map[blockID][]byte) {
		if err := c.RegisterApp(ctx, app, time.Hour); err != nil {
			t.Fatal(err)
		}
		layout, err := c.RegisterWorker(ctx, app, "w0", os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		want := map[blockID][]byte{}
		var ranges []*shufflepb.BlockRange
		for m := range maps {
			out, blocks := writeSortedOutput(t, layout, app, 0, m, 0, genFixtureBlocks(uint64(m)+100, R))
			mustCommit(t, c, app, out)
			for r, b := range blocks {
				want[blockID{m, uint32(r)}] = b
			}
			ranges = append(ranges, &shufflepb.BlockRange{Map: m, ReduceEnd: R})
		}
		return ranges, want
	}
	honestRanges, honestWant := commit(honest, "honest", 4)
	commit(attacker, "attacker", 1)

	// The honest application, all along.
	stop := make(chan struct{})
	var honestRuns atomic.Int64
	var honestWG sync.WaitGroup
	honestWG.Add(1)
	go func() {
		defer honestWG.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			start := time.Now()
			got, err := fetchBlocks(t, honest, "honest", 0, DefaultChunkSize, honestRanges...)
			if d := time.Since(start); d > honestFetchBound {
				t.Errorf("an honest fetch took %v under attack, above the stated %v", d, honestFetchBound)
			}
			if err != nil {
				t.Errorf("honest fetch: %v", err)
				return
			}
			for id, b := range honestWant {
				if !bytes.Equal(got[id], b) {
					t.Errorf("honest fetch: block %v differs", id)
					return
				}
			}
			honestRuns.Add(1)
		}
	}()

	expect := func(what string, err error, code codes.Code, says string) {
		t.Helper()
		if status.Code(err) != code || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: %v, want %v %q", what, err, code, says)
		}
	}
	drain := func(*shufflepb.FetchChunk) error { return nil }

	// No cluster secret, another application's token.
	expect("fetch without the cluster secret", outsider.Fetch(ctx, &shufflepb.FetchRequest{App: "honest", Blocks: honestRanges}, drain), codes.Unauthenticated, "cluster secret required")
	expect("fetch of another application", attacker.Fetch(ctx, &shufflepb.FetchRequest{App: "honest", Blocks: honestRanges}, func(ch *shufflepb.FetchChunk) error {
		t.Errorf("the attacker received %d bytes of the honest shuffle", len(ch.GetData()))
		return nil
	}), codes.PermissionDenied, "another application token")
	expect("RemoveApp of another application", attacker.RemoveApp(ctx, "honest"), codes.PermissionDenied, "another application token")
	expect("RegisterApp of another application", attacker.RegisterApp(ctx, "honest", time.Second), codes.PermissionDenied, "another application token")

	// Path elements in IDs.
	expect("RegisterApp ../../etc", attacker.RegisterApp(ctx, "../../etc", 0), codes.InvalidArgument, "application ID")
	_, err := attacker.RegisterWorker(ctx, "attacker", "../w", 1)
	expect("RegisterWorker ../w", err, codes.InvalidArgument, "worker ID")
	expect("Fetch of app a/../honest", attacker.Fetch(ctx, &shufflepb.FetchRequest{App: "a/../honest", Blocks: honestRanges}, drain), codes.InvalidArgument, "application ID")
	_, _, _, err = attacker.GetBlock(ctx, blockstore.BlockID{App: "..", RDD: 1})
	expect("GetBlock of app ..", err, codes.InvalidArgument, "")

	// Out of range, reversed, too many.
	expect("Fetch beyond R", attacker.Fetch(ctx, &shufflepb.FetchRequest{App: "attacker", Blocks: []*shufflepb.BlockRange{{Map: 0, ReduceEnd: R + 1}}}, drain), codes.OutOfRange, "not below R")
	expect("Fetch of a reversed range", attacker.Fetch(ctx, &shufflepb.FetchRequest{App: "attacker", Blocks: []*shufflepb.BlockRange{{Map: 0, ReduceStart: 5, ReduceEnd: 2}}}, drain), codes.InvalidArgument, "reversed")
	expect("Fetch of 2^32-1 blocks", attacker.Fetch(ctx, &shufflepb.FetchRequest{App: "attacker", Blocks: []*shufflepb.BlockRange{{Map: 0, ReduceEnd: 1<<32 - 1}}}, drain), codes.InvalidArgument, "exceeds")
	_, _, _, err = attacker.GetBlock(ctx, blockstore.BlockID{App: "attacker", RDD: 1, Partition: -1})
	expect("GetBlock of partition -1", err, codes.InvalidArgument, "")

	// Oversized and malformed messages, on a raw connection.
	raw, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20), grpc.ForceCodec(rawCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	rctx := metadata.AppendToOutgoingContext(ctx, nodewire.SecretMetadataKey, secret, nodewire.AppTokenMetadataKey, "attacker-token")
	var reply []byte
	huge := make([]byte, nodewire.MaxMessageSize+1)
	expect("a message above the node's maximum", raw.Invoke(rctx, shufflepb.Shuffle_Heartbeat_FullMethodName, &huge, &reply), codes.ResourceExhausted, "larger than max")
	whole, err := proto.Marshal(&shufflepb.HeartbeatRequest{App: "attacker"})
	if err != nil {
		t.Fatal(err)
	}
	cut := whole[:len(whole)-3]
	expect("a truncated message", raw.Invoke(rctx, shufflepb.Shuffle_Heartbeat_FullMethodName, &cut, &reply), codes.Internal, "unmarshal")
	if err := raw.Invoke(rctx, shufflepb.Shuffle_Heartbeat_FullMethodName, &whole, &reply); err != nil {
		t.Errorf("the same message whole, on the same connection: %v", err)
	}

	// Streams that end early, a binary that lies about its digest.
	expect("a PutBlock stream shorter than its header", rawPutBlock(rctx, raw, "attacker", 100, []byte("only this")), codes.InvalidArgument, "ended after")
	lie := []byte("#!/bin/sh\necho pwned\n")
	claimed := sha256.Sum256([]byte("something else"))
	expect("a binary whose digest is not its content's", attacker.PutBinary(ctx, hex.EncodeToString(claimed[:]), int64(len(lie)), bytes.NewReader(lie)), codes.InvalidArgument, "")
	if has, err := attacker.HasBinary(ctx, hex.EncodeToString(claimed[:])); err != nil || has {
		t.Errorf("the lying binary is in the cache: %v, %v", has, err)
	}

	// A flood: the attacker opens more PutBlock streams than it may and
	// never finishes them, and an outsider opens streams it may not.
	const flood = DefaultMaxStreamsPerApp + 64
	fctx, cancelFlood := context.WithCancel(rctx)
	var refused atomic.Int64
	var floodWG sync.WaitGroup
	for i := range flood {
		floodWG.Add(1)
		go func() {
			defer floodWG.Done()
			stream, err := shufflepb.NewShuffleClient(raw).PutBlock(fctx, grpc.ForceCodec(protoCodec{}))
			if err != nil {
				return
			}
			h := header("attacker", 2, int64(i), shufflepb.BlockLevel_BLOCK_LEVEL_DISK_ONLY, make([]byte, 1024))
			if stream.Send(&shufflepb.PutBlockChunk{Header: h}) != nil {
				return
			}
			// Never the data, never the end: the stream is held until
			// the node refuses it or the flood ends.
			if err := stream.RecvMsg(new(shufflepb.PutBlockResponse)); status.Code(err) == codes.ResourceExhausted {
				refused.Add(1)
			}
		}()
		floodWG.Add(1)
		go func() {
			defer floodWG.Done()
			outsider.Fetch(fctx, &shufflepb.FetchRequest{App: "honest", Blocks: honestRanges}, drain)
		}()
	}
	// The refusals come back as the node receives the headers; the
	// honest fetches go on meanwhile.
	poll.WaitFor(t, 30*time.Second, "the PutBlock streams beyond MaxStreamsPerApp refused", func() bool {
		return refused.Load() >= flood-DefaultMaxStreamsPerApp
	})
	before := honestRuns.Load()
	poll.WaitFor(t, 30*time.Second, "3 honest fetches while the flood holds its streams", func() bool {
		return honestRuns.Load() >= before+3
	})
	if got := refused.Load(); got != flood-DefaultMaxStreamsPerApp {
		t.Errorf("%d of %d PutBlock streams refused, want the %d beyond MaxStreamsPerApp", got, flood, flood-DefaultMaxStreamsPerApp)
	}
	cancelFlood()
	floodWG.Wait()

	// The flood's slots are given back (as the node sees its streams
	// cancelled): the attacker may stream again.
	var lastErr error
	poll.WaitFor(t, 30*time.Second, "a put of the attacker's once its flood is over", func() bool {
		_, _, lastErr = attacker.PutBlock(ctx, blockstore.BlockID{App: "attacker", RDD: 3}, blockstore.DiskOnly, 0, []byte("after"))
		if lastErr != nil && status.Code(lastErr) != codes.ResourceExhausted {
			t.Fatalf("a put after the flood: %v", lastErr)
		}
		return lastErr == nil
	})
	close(stop)
	honestWG.Wait()
	if honestRuns.Load() == 0 {
		t.Fatal("the honest application never fetched")
	}
	st, err := honest.Status(ctx)
	if err != nil || st.GetPid() != int64(node.Pid()) {
		t.Fatalf("the node after the attacks: %v, %v (pid %d)", st, err, node.Pid())
	}
	t.Logf("%d honest fetches, all right, during the attacks", honestRuns.Load())
}

// rawPutBlock sends a PutBlock header announcing size bytes, then data,
// and closes the stream.
func rawPutBlock(ctx context.Context, conn *grpc.ClientConn, app string, size int, data []byte) error {
	stream, err := shufflepb.NewShuffleClient(conn).PutBlock(ctx, grpc.ForceCodec(protoCodec{}))
	if err != nil {
		return err
	}
	h := header(app, 4, 0, shufflepb.BlockLevel_BLOCK_LEVEL_DISK_ONLY, make([]byte, size))
	if err := stream.Send(&shufflepb.PutBlockChunk{Header: h, Data: data}); err != nil {
		return err
	}
	_, err = stream.CloseAndRecv()
	return err
}

// rawCodec sends and receives *[]byte as they are: messages no protobuf
// encoder would write.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// protoCodec is the ordinary protobuf codec, for typed calls on the raw
// connection.
type protoCodec struct{}

func (protoCodec) Marshal(v any) ([]byte, error) { return proto.Marshal(v.(proto.Message)) }
func (protoCodec) Unmarshal(data []byte, v any) error {
	return proto.Unmarshal(data, v.(proto.Message))
}
func (protoCodec) Name() string { return "proto" }
