package shuffleservice

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/protobuf/proto"

	"shoal/blockstore"
	"shoal/internal/catalogdb"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// The catalogue is the node's durable memory: which applications it serves,
// their workers, their committed map outputs and their cached blocks on
// disk. It is one pebble database in Dirs[0]/.catalog, opened here and
// shared with the block store (blockstore.Options.DB), with these keys:
//
//	c/dirs                             the node's directories (catalogdb's guard)
//	a/APP                              appRecord: TTL, registration time
//	w/APP \x00 WORKER                  workerRecord: pid, registration time
//	m/APP \x00 BE32(shuffle) BE32(map) proto-marshalled shufflepb.MapOutput
//	b/...                              the block store's disk blocks (blockstore/catalog.go)
//	k/...                              the checkpoint uploader's partitions (uploader.go)
//
// This file reads and writes the a/, w/ and m/ keys; load skips the
// block store's, and the block store reads only its own. An ID never
// contains \x00 (shuffle.ValidateID), so "m/APP\x00" is exactly the prefix of APP's
// outputs. Everything is loaded into memory at Open; the hot path (Fetch)
// never reads pebble. Writes that change map outputs or applications are
// synced before they are acknowledged.
type catalog struct {
	db *pebble.DB
}

const catalogDirName = ".catalog"

func appKey(app string) []byte { return []byte("a/" + app) }

func workerKey(app, worker string) []byte { return []byte("w/" + app + "\x00" + worker) }

func workerPrefix(app string) []byte { return []byte("w/" + app + "\x00") }

func outputPrefix(app string) []byte { return []byte("m/" + app + "\x00") }

func shufflePrefix(app string, shuffle uint32) []byte {
	return binary.BigEndian.AppendUint32(outputPrefix(app), shuffle)
}

func outputKeyBytes(app string, shuffle, mapID uint32) []byte {
	return binary.BigEndian.AppendUint32(shufflePrefix(app, shuffle), mapID)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// appRecord is the catalogue's value for an application. token is the
// SHA-256 of the application's token (admission.go, "Per-application
// isolation"); a version-1 record, written before tokens, has none and is
// bound by the application's next RegisterApp.
type appRecord struct {
	ttl        time.Duration
	registered time.Time
	token      tokenSum
}

func (r appRecord) marshal() []byte {
	b := []byte{2}
	b = binary.AppendUvarint(b, uint64(r.ttl/time.Millisecond))
	b = binary.AppendVarint(b, r.registered.UnixMilli())
	if r.token.bound() {
		b = append(b, r.token[:]...)
	}
	return b
}

func unmarshalAppRecord(b []byte) (appRecord, error) {
	if len(b) < 1 || (b[0] != 1 && b[0] != 2) {
		return appRecord{}, fmt.Errorf("application record version unknown")
	}
	version := b[0]
	ttl, n := binary.Uvarint(b[1:])
	if n <= 0 || ttl > uint64(maxTTL/time.Millisecond) {
		return appRecord{}, fmt.Errorf("application record TTL unreadable")
	}
	reg, m := binary.Varint(b[1+n:])
	if m <= 0 {
		return appRecord{}, fmt.Errorf("application record time unreadable")
	}
	r := appRecord{ttl: time.Duration(ttl) * time.Millisecond, registered: time.UnixMilli(reg)}
	rest := b[1+n+m:]
	switch {
	case version == 2 && len(rest) == len(r.token):
		copy(r.token[:], rest)
	case len(rest) != 0:
		return appRecord{}, fmt.Errorf("application record token unreadable")
	}
	return r, nil
}

// workerRecord is the catalogue's value for a worker.
type workerRecord struct {
	pid        int64
	registered time.Time
}

func (r workerRecord) marshal() []byte {
	b := []byte{1}
	b = binary.AppendVarint(b, r.pid)
	return binary.AppendVarint(b, r.registered.UnixMilli())
}

func unmarshalWorkerRecord(b []byte) (workerRecord, error) {
	if len(b) < 1 || b[0] != 1 {
		return workerRecord{}, fmt.Errorf("worker record version unknown")
	}
	pid, n := binary.Varint(b[1:])
	if n <= 0 {
		return workerRecord{}, fmt.Errorf("worker record pid unreadable")
	}
	reg, m := binary.Varint(b[1+n:])
	if m <= 0 {
		return workerRecord{}, fmt.Errorf("worker record time unreadable")
	}
	return workerRecord{pid: pid, registered: time.UnixMilli(reg)}, nil
}

func openCatalog(fs vfs.FS, dir string, dirs []string, logger *slog.Logger) (*catalog, error) {
	db, err := catalogdb.Open(fs, dir, dirs, logger, "shuffle")
	var de *catalogdb.DirsError
	if errors.As(err, &de) {
		return nil, fmt.Errorf("%w: %w", shuffle.ErrInvalidArgument, err)
	}
	if err != nil {
		return nil, err
	}
	return &catalog{db: db}, nil
}

// catalogContents is everything the catalogue holds.
type catalogContents struct {
	apps    map[string]appRecord
	workers map[string]map[string]workerRecord
	outputs map[string][]*shufflepb.MapOutput
}

// load reads the whole catalogue. Records that do not parse, and workers
// or outputs of unknown applications, are logged and deleted.
func (c *catalog) load(logger *slog.Logger) (*catalogContents, error) {
	cc := &catalogContents{
		apps:    map[string]appRecord{},
		workers: map[string]map[string]workerRecord{},
		outputs: map[string][]*shufflepb.MapOutput{},
	}
	it, err := c.db.NewIter(nil)
	if err != nil {
		return nil, fmt.Errorf("shuffle: read catalogue: %w", err)
	}
	var bad [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		if err := cc.add(k, v); err != nil {
			logger.Warn("dropping unreadable catalogue record", "key", fmt.Sprintf("%q", k), "err", err)
			bad = append(bad, bytes.Clone(k))
		}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("shuffle: read catalogue: %w", err)
	}
	// Orphans: a crash between the deletes of RemoveApp cannot leave them
	// (one batch), but be liberal in what we accept.
	for app := range cc.workers {
		if _, ok := cc.apps[app]; !ok {
			for w := range cc.workers[app] {
				bad = append(bad, workerKey(app, w))
			}
			delete(cc.workers, app)
		}
	}
	for app, outs := range cc.outputs {
		if _, ok := cc.apps[app]; !ok {
			logger.Warn("dropping map outputs of an unknown application", "app", app, "outputs", len(outs))
			for _, o := range outs {
				bad = append(bad, outputKeyBytes(app, o.Shuffle, o.Map))
			}
			delete(cc.outputs, app)
		}
	}
	if len(bad) > 0 {
		b := c.db.NewBatch()
		for _, k := range bad {
			_ = b.Delete(k, nil)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return nil, fmt.Errorf("shuffle: clean catalogue: %w", err)
		}
	}
	return cc, nil
}

func (cc *catalogContents) add(k, v []byte) error {
	switch {
	case catalogdb.Reserved(k), bytes.HasPrefix(k, []byte(blockstore.CatalogPrefix)), bytes.HasPrefix(k, []byte(ckptPrefix)):
		return nil // catalogdb's guard, the block store's and the checkpoint uploader's records
	case bytes.HasPrefix(k, []byte("a/")):
		app := string(k[2:])
		if shuffle.ValidateID("application", app) != nil {
			return fmt.Errorf("bad application ID")
		}
		r, err := unmarshalAppRecord(v)
		if err != nil {
			return err
		}
		cc.apps[app] = r
	case bytes.HasPrefix(k, []byte("w/")):
		app, worker, ok := strings.Cut(string(k[2:]), "\x00")
		if !ok || shuffle.ValidateID("application", app) != nil || shuffle.ValidateID("worker", worker) != nil {
			return fmt.Errorf("bad worker key")
		}
		r, err := unmarshalWorkerRecord(v)
		if err != nil {
			return err
		}
		if cc.workers[app] == nil {
			cc.workers[app] = map[string]workerRecord{}
		}
		cc.workers[app][worker] = r
	case bytes.HasPrefix(k, []byte("m/")):
		app, rest, ok := strings.Cut(string(k[2:]), "\x00")
		if !ok || len(rest) != 8 || shuffle.ValidateID("application", app) != nil {
			return fmt.Errorf("bad map output key")
		}
		out := &shufflepb.MapOutput{}
		if err := proto.Unmarshal(v, out); err != nil {
			return fmt.Errorf("map output: %w", err)
		}
		shuffle := binary.BigEndian.Uint32([]byte(rest[:4]))
		mapID := binary.BigEndian.Uint32([]byte(rest[4:]))
		if out.Shuffle != shuffle || out.Map != mapID {
			return fmt.Errorf("map output record names shuffle %d map %d", out.Shuffle, out.Map)
		}
		if err := validateMapOutput(out); err != nil {
			return err
		}
		cc.outputs[app] = append(cc.outputs[app], out)
	default:
		return fmt.Errorf("unknown key")
	}
	return nil
}

func (c *catalog) putApp(app string, r appRecord) error {
	return c.wrap(c.db.Set(appKey(app), r.marshal(), pebble.Sync))
}

func (c *catalog) putWorker(app, worker string, r workerRecord) error {
	return c.wrap(c.db.Set(workerKey(app, worker), r.marshal(), pebble.NoSync))
}

func (c *catalog) deleteWorker(app, worker string) error {
	return c.wrap(c.db.Delete(workerKey(app, worker), pebble.NoSync))
}

func (c *catalog) putOutput(app string, out *shufflepb.MapOutput) error {
	v, err := proto.Marshal(out)
	if err != nil {
		return err
	}
	return c.wrap(c.db.Set(outputKeyBytes(app, out.Shuffle, out.Map), v, pebble.Sync))
}

func (c *catalog) deleteOutput(app string, shuffle, mapID uint32) error {
	return c.wrap(c.db.Delete(outputKeyBytes(app, shuffle, mapID), pebble.Sync))
}

func (c *catalog) deleteShuffle(app string, shuffle uint32) error {
	p := shufflePrefix(app, shuffle)
	return c.wrap(c.db.DeleteRange(p, prefixEnd(p), pebble.Sync))
}

// deleteApp deletes an application and everything under it in one batch.
func (c *catalog) deleteApp(app string) error {
	b := c.db.NewBatch()
	_ = b.Delete(appKey(app), nil)
	for _, p := range [][]byte{workerPrefix(app), outputPrefix(app)} {
		_ = b.DeleteRange(p, prefixEnd(p), nil)
	}
	return c.wrap(b.Commit(pebble.Sync))
}

func (c *catalog) wrap(err error) error {
	if err != nil {
		return fmt.Errorf("shuffle: write catalogue: %w", err)
	}
	return nil
}

func (c *catalog) close() error { return c.db.Close() }
