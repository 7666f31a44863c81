package checkpoint

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"time"
	"unicode/utf8"
)

// Manifest describes a complete checkpoint. It is written last, as
// NAME/manifest.json: a checkpoint without one does not exist.
type Manifest struct {
	// Version is the manifest format, set by WriteManifest.
	Version int    `json:"version"`
	Name    string `json:"name"`
	// App and Run are the run that wrote the checkpoint (RunID); empty in
	// a checkpoint of the layout before runs. Runs and ListAll set them to
	// where they found it.
	App string `json:"app,omitempty"`
	Run string `json:"run,omitempty"`
	// Job names what the run computes (e.g. "pagerank") and Input the
	// input it read (e.g. client.InputIdentity): a restarted driver
	// resumes only from a checkpoint of the same job and input.
	Job   string `json:"job,omitempty"`
	Input string `json:"input,omitempty"`
	// Seq orders the checkpoints of a store (List, Prune): the caller's
	// choice, e.g. the iteration of the job that wrote it.
	Seq int64 `json:"seq"`
	// NumPartitions is the RDD's partition count; Partitions[i] describes
	// partition i.
	NumPartitions int        `json:"num_partitions"`
	Partitions    []PartInfo `json:"partitions"`
	// RecordEncoding is the record encoding of the engine that wrote the
	// partitions (codec.RecordEncoding; 0 before it was recorded), opaque
	// to this package: a reader whose records it encodes otherwise refuses
	// the checkpoint.
	RecordEncoding int `json:"record_encoding,omitempty"`
	// Partitioner describes the RDD's partitioner, opaque to this package
	// (empty for none).
	Partitioner string `json:"partitioner,omitempty"`
	// Lineage describes the lineage the checkpoint truncated, for people.
	Lineage string `json:"lineage,omitempty"`
	// Meta is free for the caller (PageRank keeps its iteration there).
	Meta map[string]string `json:"meta,omitempty"`
	// Created is when WriteManifest was called (UTC), if left zero.
	Created time.Time `json:"created"`
	// CRC32C is the checksum of the manifest's JSON encoding with this
	// field zero; WriteManifest sets it, ReadManifest checks it.
	CRC32C uint32 `json:"crc32c"`
}

// manifestVersion is the format WriteManifest writes. Version 2 added
// App, Run, Job and Input; ReadManifest reads 1 and 2 (a version 1
// manifest is a version 2 one with those fields empty).
const manifestVersion = 2

// validate checks that m is a manifest of checkpoint name that describes
// every partition once, in order, under its key.
func (m *Manifest) validate(name string) error {
	if m.Name != name {
		return fmt.Errorf("manifest names checkpoint %q, not %q", m.Name, name)
	}
	if m.NumPartitions < 0 || m.NumPartitions != len(m.Partitions) {
		return fmt.Errorf("manifest of %s has NumPartitions %d but %d partitions", name, m.NumPartitions, len(m.Partitions))
	}
	for i, p := range m.Partitions {
		if p.Part != i {
			return fmt.Errorf("manifest of %s lists partition %d at position %d (give Partitions in partition order, one each)", name, p.Part, i)
		}
		if p.Key != PartKey(name, i) {
			return fmt.Errorf("manifest of %s gives partition %d key %q, want %q", name, i, p.Key, PartKey(name, i))
		}
		if p.Size < partHeaderSize || p.RawSize < 0 {
			return fmt.Errorf("manifest of %s gives partition %d size %d, raw size %d", name, i, p.Size, p.RawSize)
		}
	}
	// Invalid UTF-8 would not survive a JSON round trip, nor its checksum.
	for _, s := range []string{m.Partitioner, m.Lineage, m.App, m.Run, m.Job, m.Input} {
		if !utf8.ValidString(s) {
			return fmt.Errorf("manifest of %s: Partitioner, Lineage, App, Run, Job and Input must be valid UTF-8", name)
		}
	}
	for k, v := range m.Meta {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("manifest of %s: Meta[%q] is not valid UTF-8", name, k)
		}
	}
	return nil
}

// checksum is the CRC32-C of m's JSON with CRC32C zero.
func (m Manifest) checksum() (uint32, error) {
	m.CRC32C = 0
	b, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	return crc32.Checksum(b, castagnoli), nil
}

// WriteManifest completes checkpoint name: it checks that m describes
// every partition and that each partition's object is in the store with
// the size m gives, then writes the manifest. Call it once every
// WritePartition has returned, with their PartInfos in m.Partitions in
// partition order. It sets m's Version, and Name and Created if zero.
func WriteManifest(ctx context.Context, st Store, name string, m Manifest) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	m.Version = manifestVersion
	if m.Name == "" {
		m.Name = name
	}
	if m.Created.IsZero() {
		m.Created = time.Now().UTC()
	}
	if err := m.validate(name); err != nil {
		return invalidf("%v", err)
	}
	objs, err := st.List(ctx, name+"/")
	if err != nil {
		return fmt.Errorf("checkpoint %s: checking its partitions before writing the manifest: %w", name, err)
	}
	sizes := make(map[string]int64, len(objs))
	for _, o := range objs {
		sizes[o.Key] = o.Size
	}
	for _, p := range m.Partitions {
		size, ok := sizes[p.Key]
		switch {
		case !ok:
			return fmt.Errorf("%w: checkpoint %s: partition %d is not in %s (was it written, or deleted by Prune?); no manifest written", ErrIncomplete, name, p.Part, st)
		case size != p.Size:
			return fmt.Errorf("%w: checkpoint %s: partition %d in %s is %d bytes, the manifest says %d (written twice with different bytes?); no manifest written", ErrCorrupt, name, p.Part, st, size, p.Size)
		}
	}
	if m.CRC32C, err = m.checksum(); err != nil {
		return invalidf("checkpoint %s manifest: %v", name, err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return invalidf("checkpoint %s manifest: %v", name, err)
	}
	if err := st.Put(ctx, ManifestKey(name), b); err != nil {
		return fmt.Errorf("checkpoint %s manifest: %w", name, err)
	}
	return nil
}

// ReadManifest reads and verifies the manifest of checkpoint name. A
// checkpoint without a manifest is an error wrapping ErrIncomplete; a
// manifest that fails its checksum or does not describe the checkpoint,
// one wrapping ErrCorrupt.
func ReadManifest(ctx context.Context, st Store, name string) (Manifest, error) {
	if err := ValidateName(name); err != nil {
		return Manifest{}, err
	}
	b, err := st.Get(ctx, ManifestKey(name))
	if errors.Is(err, ErrNotFound) {
		return Manifest{}, fmt.Errorf("%w: checkpoint %s in %s has no manifest: it was never completed and cannot be read", ErrIncomplete, name, st)
	} else if err != nil {
		return Manifest{}, fmt.Errorf("checkpoint %s manifest: %w", name, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return Manifest{}, corruptf("checkpoint %s manifest in %s does not parse: %v", name, st, err)
	}
	if c, err := m.checksum(); err != nil || c != m.CRC32C {
		return Manifest{}, corruptf("checkpoint %s manifest in %s fails its checksum (computed %08x, stored %08x)", name, st, c, m.CRC32C)
	}
	if m.Version < 1 || m.Version > manifestVersion {
		return Manifest{}, corruptf("checkpoint %s manifest in %s has version %d, this build reads 1 to %d", name, st, m.Version, manifestVersion)
	}
	if err := m.validate(name); err != nil {
		return Manifest{}, corruptf("checkpoint %s manifest in %s: %v", name, st, err)
	}
	return m, nil
}

// List returns the manifests of the complete checkpoints in st, by Seq
// (then Created, then Name). Checkpoints without a manifest are left out;
// a manifest that cannot be read is an error naming it.
func List(ctx context.Context, st Store) ([]Manifest, error) {
	objs, err := st.List(ctx, "")
	if err != nil {
		return nil, err
	}
	var out []Manifest
	for _, c := range groupCheckpoints(objs) {
		if !c.complete {
			continue
		}
		m, err := ReadManifest(ctx, st, c.name)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	sortManifests(out)
	return out, nil
}

func sortManifests(ms []Manifest) {
	slices.SortFunc(ms, func(a, b Manifest) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), a.Created.Compare(b.Created), cmp.Compare(a.Name, b.Name))
	})
}

// storedCheckpoint is what a store holds of one checkpoint name.
type storedCheckpoint struct {
	name     string
	keys     []string
	complete bool      // it has a manifest
	bytes    int64     // the size of its objects
	oldest   time.Time // ModTime of its oldest object
	newest   time.Time // ModTime of its newest object
}

// groupCheckpoints groups a store's objects by checkpoint, in name order.
// Keys outside any checkpoint are left out.
func groupCheckpoints(objs []ObjectInfo) []*storedCheckpoint {
	var out []*storedCheckpoint
	byName := make(map[string]*storedCheckpoint)
	for _, o := range objs {
		name := checkpointOf(o.Key)
		if name == "" {
			continue
		}
		c := byName[name]
		if c == nil {
			c = &storedCheckpoint{name: name, oldest: o.ModTime, newest: o.ModTime}
			byName[name] = c
			out = append(out, c)
		}
		c.keys = append(c.keys, o.Key)
		c.bytes += o.Size
		if o.Key == ManifestKey(name) {
			c.complete = true
		}
		if o.ModTime.Before(c.oldest) {
			c.oldest = o.ModTime
		}
		if o.ModTime.After(c.newest) {
			c.newest = o.ModTime
		}
	}
	slices.SortFunc(out, func(a, b *storedCheckpoint) int { return cmp.Compare(a.name, b.name) })
	return out
}
