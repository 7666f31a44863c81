package shuffleservice

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"shoal/checkpoint"
	"shoal/internal/fuzzmsg"
	"shoal/shuffleservice/internal/nodetest"
	"shoal/shuffleservice/internal/nodewire"
	"shoal/shuffleservice/shufflepb"
)

// FuzzNodeCall drives every RPC of the node service in process, through
// the same admission and isolation interceptors as over the network, with
// requests decoded from the fuzzer's bytes: method picks the RPC (unary
// or streaming, in Shuffle_ServiceDesc's order), who the caller (the
// owner's token, another application's, none), and payload the messages
// (for a stream, several, each prefixed by its length as a uvarint). The
// node holds an application "app" with a committed map output, so calls
// reach past the lookups. A call must never panic, and must fail only
// with a status that names what was wrong: never Unknown or Internal.
func FuzzNodeCall(f *testing.F) {
	for i, m := range nodeCallSeeds() {
		b, err := proto.Marshal(m.msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m.method, uint8(i%3), fuzzmsg.Frame(b))
	}
	root := f.TempDir()
	s, err := Open(Options{
		Dirs:          []string{filepath.Join(root, "d0"), filepath.Join(root, "d1")},
		CatalogFS:     vfs.NewMem(),
		Logger:        slog.New(slog.DiscardHandler),
		MaxBlockBytes: 1 << 20,
		Name:          "fuzz",
		CheckpointDir: fuzzCkptStore,
		OpenCheckpointStore: func(context.Context) (checkpoint.Store, error) {
			return checkpoint.NewMem("fuzz")
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	owner := tokenCtx(nodetest.AppToken)
	if err := s.registerApp("app", 0, testToken(), true); err != nil {
		f.Fatal(err)
	}
	out, _ := writeSortedOutput(f, s.Layout(), "app", 1, 0, 0, genFixtureBlocks(1, 4))
	mustCommit(f, s.Committer(), "app", out)
	callers := []context.Context{owner, tokenCtx("another-application"), context.Background()}
	desc := shufflepb.Shuffle_ServiceDesc
	f.Fuzz(func(t *testing.T, method uint8, who uint8, payload []byte) {
		ctx := callers[int(who)%len(callers)]
		msgs := fuzzmsg.Split(payload)
		n := int(method) % (len(desc.Methods) + len(desc.Streams))
		var err error
		var decodeErr bool
		if n < len(desc.Methods) {
			m := desc.Methods[n]
			dec := func(v any) error {
				if len(msgs) == 0 {
					return nil
				}
				if err := proto.Unmarshal(msgs[0], v.(proto.Message)); err != nil {
					decodeErr = true
					return err
				}
				return nil
			}
			_, err = m.Handler(s, ctx, dec, s.authUnary)
		} else {
			sd := desc.Streams[n-len(desc.Methods)]
			st := &fuzzStream{ctx: ctx, msgs: msgs}
			err = s.authStream(s, st, &grpc.StreamServerInfo{FullMethod: "/" + desc.ServiceName + "/" + sd.StreamName}, sd.Handler)
			decodeErr = st.decodeErr
		}
		if err == nil || decodeErr || errors.Is(err, io.EOF) {
			return
		}
		switch status.Code(err) {
		case codes.Unknown, codes.Internal:
			t.Fatalf("method %d: an error that names no cause: %v", n, err)
		}
	})
}

type nodeCallSeed struct {
	method uint8
	msg    proto.Message
}

// nodeCallSeeds are a well-formed request of each RPC, in
// Shuffle_ServiceDesc's order (unary methods, then streams).
func nodeCallSeeds() []nodeCallSeed {
	index := map[string]uint8{}
	desc := shufflepb.Shuffle_ServiceDesc
	for i, m := range desc.Methods {
		index[m.MethodName] = uint8(i)
	}
	for i, sd := range desc.Streams {
		index[sd.StreamName] = uint8(len(desc.Methods) + i)
	}
	id := &shufflepb.BlockId{App: "app", Rdd: 1, Partition: 2}
	ckObj, ckInfo, err := checkpoint.EncodePartition("ck", 0, []byte("abc"))
	if err != nil {
		panic(err) // a valid name and partition
	}
	ckKey := "app/r/" + ckInfo.Key
	return []nodeCallSeed{
		{index["RegisterApp"], &shufflepb.RegisterAppRequest{App: "app", TtlMs: 1000}},
		{index["RegisterWorker"], &shufflepb.RegisterWorkerRequest{App: "app", Worker: "w1", Pid: 1}},
		{index["Heartbeat"], &shufflepb.HeartbeatRequest{App: "app"}},
		{index["CommitMapOutput"], &shufflepb.CommitRequest{App: "app", Output: &shufflepb.MapOutput{Shuffle: 1, Map: 1, Kind: shufflepb.OutputKind_OUTPUT_KIND_SORTED, Lengths: []uint64{1, 2}}}},
		{index["Fetch"], &shufflepb.FetchRequest{App: "app", Shuffle: 1, Blocks: []*shufflepb.BlockRange{{Map: 0, ReduceEnd: 4}}}},
		{index["RemoveShuffle"], &shufflepb.RemoveShuffleRequest{App: "app", Shuffle: 2}},
		{index["Status"], &shufflepb.StatusRequest{}},
		{index["PutBlock"], &shufflepb.PutBlockChunk{Header: &shufflepb.PutBlockHeader{Id: id, Level: shufflepb.BlockLevel_BLOCK_LEVEL_DISK_ONLY, Size: 3, Crc32C: nodewire.Checksum([]byte("abc"))}, Data: []byte("abc")}},
		{index["GetBlock"], &shufflepb.GetBlockRequest{Id: id}},
		{index["RemoveBlocks"], &shufflepb.RemoveBlocksRequest{App: "app", Rdd: 1}},
		{index["PutBinary"], &shufflepb.PutBinaryChunk{Sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Size: 3, Data: []byte("abc")}},
		{index["HasBinary"], &shufflepb.HasBinaryRequest{Sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}},
		{index["StartWorkers"], &shufflepb.StartWorkersRequest{App: "app", BinarySha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", Workers: 1}},
		{index["StopWorker"], &shufflepb.StopWorkerRequest{App: "app", Worker: "w-fuzz-0"}},
		{index["Workers"], &shufflepb.WorkersRequest{App: "app"}},
		{index["PutCheckpoint"], &shufflepb.PutCheckpointChunk{Header: &shufflepb.PutCheckpointHeader{App: "app", Part: &shufflepb.CheckpointPart{Store: fuzzCkptStore, Key: ckKey, Size: uint64(len(ckObj)), Crc32C: ckInfo.CRC32C}}, Data: ckObj}},
		{index["CheckpointStatus"], &shufflepb.CheckpointStatusRequest{App: "app", Store: fuzzCkptStore, Keys: []string{ckKey}}},
		{index["GetCheckpoint"], &shufflepb.GetCheckpointRequest{App: "app", Part: &shufflepb.CheckpointPart{Store: fuzzCkptStore, Key: ckKey, Size: uint64(len(ckObj)), Crc32C: ckInfo.CRC32C}}},
		{index["RemoveApp"], &shufflepb.RemoveAppRequest{App: "gone"}},
	}
}

// fuzzCkptStore is the checkpoint store of FuzzNodeCall's node (a
// memory store behind it).
const fuzzCkptStore = "s3://fuzz/ckpt"

// tokenCtx is an incoming call's context carrying an application token.
func tokenCtx(token string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs(nodewire.AppTokenMetadataKey, token))
}

// fuzzStream is a server stream whose client sends msgs and then ends;
// what the server sends is dropped.
type fuzzStream struct {
	ctx       context.Context
	msgs      [][]byte
	decodeErr bool
}

func (s *fuzzStream) SetHeader(metadata.MD) error  { return nil }
func (s *fuzzStream) SendHeader(metadata.MD) error { return nil }
func (s *fuzzStream) SetTrailer(metadata.MD)       {}
func (s *fuzzStream) Context() context.Context     { return s.ctx }
func (s *fuzzStream) SendMsg(m any) error          { _, err := proto.Marshal(m.(proto.Message)); return err }

func (s *fuzzStream) RecvMsg(m any) error {
	if len(s.msgs) == 0 {
		return io.EOF
	}
	b := s.msgs[0]
	s.msgs = s.msgs[1:]
	if err := proto.Unmarshal(b, m.(proto.Message)); err != nil {
		s.decodeErr = true
		return err
	}
	return nil
}
