package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"

	"shoal/checkpoint"
	"shoal/compute"
	"shoal/internal/miniotest"
)

// CheckpointConfig is `shoal bench checkpoint`: a checkpoint of Partitions
// partitions of PartitionBytes each written to a local MinIO, against one
// minio-go PutObject of the same bytes.
type CheckpointConfig struct {
	// MinioBinary is the MinIO server; default bin/minio/minio under the
	// module root (miniotest.FindBinary).
	MinioBinary string
	// Runs of each side; the result holds their medians. Default 5.
	Runs int
	// Partitions and PartitionBytes size the checkpoint. Default 8 × 32 MiB.
	Partitions     int
	PartitionBytes int
	// Parallelism is the number of partitions written at once, as that
	// many task slots would. Default DefaultCheckpointParallelism.
	Parallelism int
	// Random makes the data incompressible random bytes instead of
	// gensort-like records: the worst case for the checkpoint's codec.
	Random bool
	// PartSize is the multipart part size of both sides; default
	// checkpoint.DefaultPartSize.
	PartSize int64
	// Dir holds MinIO's data; default a temporary directory, removed.
	Dir  string
	Seed uint64
}

// DefaultCheckpointParallelism is the task slots of the embedded default
// (2 workers of 2 slots), which write a checkpoint's partitions at once.
const DefaultCheckpointParallelism = compute.DefaultWorkersPerNode * compute.DefaultSlots

// CheckpointResult is what RunCheckpointBench measured. Field names are the
// JSON contract of `shoal bench checkpoint --json`. MB are 1e6 bytes of
// the partitions' raw data, per second of wall time.
type CheckpointResult struct {
	Partitions     int       `json:"partitions"`
	PartitionBytes int       `json:"partition_bytes"`
	Parallelism    int       `json:"parallelism"`
	Data           string    `json:"data"` // "records" or "random"
	DataBytes      int64     `json:"data_bytes"`
	StoredBytes    int64     `json:"stored_bytes"` // the checkpoint's objects, compressed
	PartSize       int64     `json:"part_size"`
	Runs           int       `json:"runs"`
	CheckpointMBs  []float64 `json:"checkpoint_mb_per_second"` // WritePartition × P, WriteManifest
	BaselineMBs    []float64 `json:"baseline_mb_per_second"`   // one PutObject of the same bytes
	CheckpointMed  float64   `json:"checkpoint_median_mb_per_second"`
	BaselineMed    float64   `json:"baseline_median_mb_per_second"`
	Ratio          float64   `json:"ratio"` // CheckpointMed / BaselineMed
}

// RunCheckpointBench starts MinIO, then runs the checkpoint write and the
// baseline alternately, Runs times each, and reports their medians. Each
// checkpoint run writes a new checkpoint, which is checked by reading it
// back and then pruned to the newest one (neither timed); each baseline
// run writes the same object again.
func RunCheckpointBench(ctx context.Context, cfg CheckpointConfig) (*CheckpointResult, error) {
	if cfg.Runs == 0 {
		cfg.Runs = 5
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 8
	}
	if cfg.PartitionBytes == 0 {
		cfg.PartitionBytes = 32 << 20
	}
	if cfg.Parallelism == 0 {
		cfg.Parallelism = DefaultCheckpointParallelism
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = checkpoint.DefaultPartSize
	}
	if cfg.Runs < 1 || cfg.Partitions < 1 || cfg.PartitionBytes < 1 || cfg.Parallelism < 1 {
		return nil, fmt.Errorf("bench checkpoint: runs %d, partitions %d, partition bytes %d and parallelism %d must be positive", cfg.Runs, cfg.Partitions, cfg.PartitionBytes, cfg.Parallelism)
	}
	dir, done, err := workDir(cfg.Dir, "bench-checkpoint")
	if err != nil {
		return nil, err
	}
	defer done()
	srv, err := miniotest.Launch(ctx, miniotest.Config{Binary: cfg.MinioBinary, Dir: dir})
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	if err := srv.MakeBucket(ctx, "bench"); err != nil {
		return nil, err
	}
	st, err := checkpoint.Open(ctx, "s3://bench/ckpt", checkpoint.Options{
		Endpoint: srv.Endpoint(), AccessKey: miniotest.AccessKey, SecretKey: miniotest.SecretKey, PartSize: cfg.PartSize,
	})
	if err != nil {
		return nil, err
	}
	s3 := st.(*checkpoint.S3Store)

	parts := checkpointData(cfg)
	all := bytes.Join(parts, nil)
	res := &CheckpointResult{
		Partitions: cfg.Partitions, PartitionBytes: cfg.PartitionBytes, Parallelism: cfg.Parallelism,
		Data: "records", DataBytes: int64(len(all)), PartSize: cfg.PartSize, Runs: cfg.Runs,
	}
	if cfg.Random {
		res.Data = "random"
	}
	mbs := func(d time.Duration) float64 { return float64(len(all)) / 1e6 / d.Seconds() }
	ckpt := func(run int) error {
		name := fmt.Sprintf("bench-%06d", run)
		d, m, err := timeCheckpoint(ctx, st, name, int64(run), parts, cfg.Parallelism)
		if err != nil {
			return err
		}
		res.CheckpointMBs = append(res.CheckpointMBs, mbs(d))
		res.StoredBytes = 0
		for _, p := range m.Partitions {
			res.StoredBytes += p.Size
		}
		if err := verifyCheckpoint(ctx, st, name, parts); err != nil {
			return err
		}
		// Keep the bucket from growing run after run.
		_, err = checkpoint.Prune(ctx, st, 1)
		return err
	}
	baseline := func() error {
		start := time.Now()
		if _, err := s3.Client().PutObject(ctx, s3.Bucket(), s3.ObjectName("baseline/blob"), bytes.NewReader(all), int64(len(all)),
			minio.PutObjectOptions{PartSize: uint64(cfg.PartSize)}); err != nil {
			return fmt.Errorf("bench checkpoint: baseline PutObject: %w", err)
		}
		res.BaselineMBs = append(res.BaselineMBs, mbs(time.Since(start)))
		return nil
	}
	// The sides take turns going first, so that neither always runs while
	// MinIO still removes what the other replaced or deleted.
	for run := range cfg.Runs {
		first, second := func() error { return ckpt(run) }, baseline
		if run%2 == 1 {
			first, second = second, first
		}
		if err := first(); err != nil {
			return nil, err
		}
		if err := second(); err != nil {
			return nil, err
		}
	}
	res.CheckpointMed = median(res.CheckpointMBs)
	res.BaselineMed = median(res.BaselineMBs)
	res.Ratio = res.CheckpointMed / res.BaselineMed
	return res, nil
}

// checkpointData makes the partitions: gensort-like records (as `shoal
// bench shuffle` writes), or random bytes.
func checkpointData(cfg CheckpointConfig) [][]byte {
	const recordBytes = 100
	parts := make([][]byte, cfg.Partitions)
	for p := range parts {
		b := make([]byte, 0, cfg.PartitionBytes+recordBytes)
		if cfg.Random {
			var seed [32]byte
			seed[0], seed[1] = byte(p), byte(cfg.Seed)
			b = b[:cfg.PartitionBytes]
			rand.NewChaCha8(seed).Read(b)
		} else {
			g := newRecordGen(cfg.Seed, uint64(p), uint64(p)<<32, recordBytes)
			for len(b) < cfg.PartitionBytes {
				k, v := g.next()
				b = append(b, k...)
				b = append(b, v...)
			}
			b = b[:cfg.PartitionBytes]
		}
		parts[p] = b
	}
	return parts
}

// timeCheckpoint writes one checkpoint, parallelism partitions at a time,
// then its manifest, and returns how long that took.
func timeCheckpoint(ctx context.Context, st checkpoint.Store, name string, seq int64, parts [][]byte, parallelism int) (time.Duration, checkpoint.Manifest, error) {
	start := time.Now()
	m := checkpoint.Manifest{Name: name, Seq: seq, NumPartitions: len(parts), Partitions: make([]checkpoint.PartInfo, len(parts))}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelism)
	for p, raw := range parts {
		g.Go(func() error {
			info, err := checkpoint.WritePartition(gctx, st, name, p, raw)
			m.Partitions[p] = info
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, m, err
	}
	if err := checkpoint.WriteManifest(ctx, st, name, m); err != nil {
		return 0, m, err
	}
	return time.Since(start), m, nil
}

func verifyCheckpoint(ctx context.Context, st checkpoint.Store, name string, parts [][]byte) error {
	m, err := checkpoint.ReadManifest(ctx, st, name)
	if err != nil {
		return err
	}
	for p, want := range parts {
		got, err := checkpoint.ReadPartition(ctx, st, m, p)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("bench checkpoint: partition %d of %s read back differs from what was written", p, name)
		}
	}
	return nil
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
