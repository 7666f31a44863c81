package bench

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/minio/minio-go/v7"

	"shoal/checkpoint"
	"shoal/internal/miniotest"
)

// TestCheckpointBench runs `shoal bench checkpoint` small, checking that
// it measures both sides and reads the checkpoints back.
func TestCheckpointBench(t *testing.T) {
	res, err := RunCheckpointBench(context.Background(), CheckpointConfig{
		Runs: 2, Partitions: 3, PartitionBytes: 1 << 20, Dir: t.TempDir(), Seed: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.CheckpointMBs) != 2 || len(res.BaselineMBs) != 2 || res.CheckpointMed <= 0 || res.BaselineMed <= 0 || res.Ratio <= 0 {
		t.Fatalf("result %+v", res)
	}
	if res.DataBytes != 3<<20 || res.StoredBytes <= 0 || res.StoredBytes >= res.DataBytes {
		t.Errorf("data %d bytes, stored %d: want 3 MiB of records, compressed", res.DataBytes, res.StoredBytes)
	}
}

// The check: a checkpoint written to a local MinIO at no less than
// 60% of the throughput of one PutObject of the same bytes. Both write 8
// partitions of 32 MiB, data=records (gensort-like, compressible) or
// data=random (incompressible); the checkpoint writes 4 partitions at once,
// as the embedded default's 4 task slots would.
//
//	go test -run '^$' -bench 'CheckpointWrite|PutObjectBaseline' -benchtime 3x -count 5 ./bench/

func BenchmarkCheckpointWrite(b *testing.B) {
	srv := miniotest.Start(b, "bench")
	for _, random := range []bool{false, true} {
		cfg := CheckpointConfig{Partitions: 8, PartitionBytes: 32 << 20, Random: random, Seed: 1}
		b.Run(benchDataName(random), func(b *testing.B) {
			st := openBenchStore(b, srv)
			parts := checkpointData(cfg)
			b.SetBytes(int64(cfg.Partitions * cfg.PartitionBytes))
			b.ReportAllocs()
			run := 0
			for b.Loop() {
				run++
				if _, _, err := timeCheckpoint(context.Background(), st, fmt.Sprintf("b-%06d", run), int64(run), parts, DefaultCheckpointParallelism); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := checkpoint.Prune(context.Background(), st, 1); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

func BenchmarkPutObjectBaseline(b *testing.B) {
	srv := miniotest.Start(b, "bench")
	for _, random := range []bool{false, true} {
		cfg := CheckpointConfig{Partitions: 8, PartitionBytes: 32 << 20, Random: random, Seed: 1}
		b.Run(benchDataName(random), func(b *testing.B) {
			s3 := openBenchStore(b, srv)
			all := bytes.Join(checkpointData(cfg), nil)
			b.SetBytes(int64(len(all)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s3.Client().PutObject(context.Background(), s3.Bucket(), s3.ObjectName("baseline/blob"), bytes.NewReader(all), int64(len(all)),
					minio.PutObjectOptions{PartSize: checkpoint.DefaultPartSize}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchDataName(random bool) string {
	if random {
		return "data=random"
	}
	return "data=records"
}

func openBenchStore(b *testing.B, srv *miniotest.Server) *checkpoint.S3Store {
	st, err := checkpoint.Open(context.Background(), "s3://bench/"+b.Name(), checkpoint.Options{
		Endpoint: srv.Endpoint(), AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey,
	})
	if err != nil {
		b.Fatal(err)
	}
	return st.(*checkpoint.S3Store)
}
