package blockstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"shoal/internal/catalogdb"
)

// The catalogue records every block on disk, so that a restarted store
// serves them again. It lives in a pebble database: in a node service, the
// node's one catalogue (Options.DB, Dirs[0]/.catalog, shared with the
// shuffle service's applications, workers and map outputs); standalone, a
// database of the store's own in Dirs[0]/.blocks-catalog. Its keys are
//
//	c/dirs                                   the directories (catalogdb's guard)
//	b/APP \x00 BE32(rdd) BE32(partition)     diskRecord
//
// The store reads and writes only keys under "b/" (and, for a database
// of its own, catalogdb's guard). An application ID never contains \x00,
// so "b/APP\x00" is exactly the prefix of APP's blocks and
// "b/APP\x00"+BE32(rdd) that of one RDD's. Memory blocks are not
// catalogued. Records are written unsynced under Store.mu and synced
// (Store.syncCatalog) before the Put that wrote them returns, without the
// lock; a record lost anyway (a failed sync) leaves a file that the next
// Open deletes as a stray. Block files are not fsynced: a block is a
// cache, and a file damaged by a power loss fails its checksum.
type catalog struct {
	db    *pebble.DB
	owned bool // opened by the store, closed by it
}

const catalogDirName = ".blocks-catalog"

// CatalogPrefix starts every key the store writes into a shared catalogue
// (Options.DB). The database's other users keep their keys out of it and
// skip it when they read the whole database.
const CatalogPrefix = "b/"

func appPrefix(app string) []byte { return []byte(CatalogPrefix + app + "\x00") }

func rddPrefix(app string, rdd int) []byte {
	return binary.BigEndian.AppendUint32(appPrefix(app), uint32(rdd))
}

func blockKey(id BlockID) []byte {
	return binary.BigEndian.AppendUint32(rddPrefix(id.App, id.RDD), uint32(id.Partition))
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
	return nil
}

// diskRecord is the catalogue's value for a block on disk.
type diskRecord struct {
	dir  int    // index in Dirs
	seq  uint64 // the file's sequence number (blockFileName)
	size int64  // block bytes, without the file header
	prio int
}

func (r diskRecord) marshal() []byte {
	b := []byte{1}
	b = binary.AppendUvarint(b, uint64(r.dir))
	b = binary.AppendUvarint(b, r.seq)
	b = binary.AppendUvarint(b, uint64(r.size))
	return binary.AppendVarint(b, int64(r.prio))
}

func unmarshalDiskRecord(b []byte) (diskRecord, error) {
	if len(b) < 1 || b[0] != 1 {
		return diskRecord{}, errors.New("block record version unknown")
	}
	b = b[1:]
	var vals [3]uint64
	for i := range vals {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return diskRecord{}, errors.New("block record unreadable")
		}
		vals[i] = v
		b = b[n:]
	}
	prio, n := binary.Varint(b)
	if n <= 0 || n != len(b) || vals[2] > 1<<62 {
		return diskRecord{}, errors.New("block record unreadable")
	}
	return diskRecord{dir: int(vals[0]), seq: vals[1], size: int64(vals[2]), prio: int(prio)}, nil
}

func openCatalog(fs vfs.FS, dir string, dirs []string, logger *slog.Logger) (*catalog, error) {
	db, err := catalogdb.Open(fs, dir, dirs, logger, "blockstore")
	var de *catalogdb.DirsError
	if errors.As(err, &de) {
		return nil, fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	if err != nil {
		return nil, err
	}
	return &catalog{db: db, owned: true}, nil
}

// load calls fn for every block record. Records that do not parse are
// logged and deleted, as are those fn rejects.
func (c *catalog) load(logger *slog.Logger, fn func(BlockID, diskRecord) error) error {
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: []byte(CatalogPrefix), UpperBound: prefixEnd([]byte(CatalogPrefix))})
	if err != nil {
		return fmt.Errorf("blockstore: read catalogue: %w", err)
	}
	var bad [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		k, v := it.Key(), it.Value()
		err := func() error {
			app, rest, ok := strings.Cut(string(k[2:]), "\x00")
			if !ok || len(rest) != 8 || validateApp(app) != nil {
				return errors.New("bad block key")
			}
			id := BlockID{App: app,
				RDD:       int(binary.BigEndian.Uint32([]byte(rest[:4]))),
				Partition: int(binary.BigEndian.Uint32([]byte(rest[4:])))}
			if err := id.Validate(); err != nil {
				return err
			}
			r, err := unmarshalDiskRecord(v)
			if err != nil {
				return err
			}
			return fn(id, r)
		}()
		if err != nil {
			logger.Warn("dropping catalogue record", "key", fmt.Sprintf("%q", k), "err", err)
			bad = append(bad, bytes.Clone(k))
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("blockstore: read catalogue: %w", err)
	}
	if len(bad) > 0 {
		b := c.db.NewBatch()
		for _, k := range bad {
			_ = b.Delete(k, nil)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("blockstore: clean catalogue: %w", err)
		}
	}
	return nil
}

func (c *catalog) put(id BlockID, r diskRecord) error {
	return c.wrap(c.db.Set(blockKey(id), r.marshal(), pebble.NoSync))
}

func (c *catalog) delete(id BlockID) error {
	return c.wrap(c.db.Delete(blockKey(id), pebble.NoSync))
}

func (c *catalog) deletePrefix(p []byte) error {
	return c.wrap(c.db.DeleteRange(p, prefixEnd(p), pebble.NoSync))
}

// sync makes every write so far durable: an empty synced record flushes
// and syncs pebble's log, the unsynced records before it included.
func (c *catalog) sync() error {
	if err := c.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("blockstore: sync catalogue: %w", err)
	}
	return nil
}

func (c *catalog) wrap(err error) error {
	if err != nil {
		return fmt.Errorf("blockstore: write catalogue: %w", err)
	}
	return nil
}

// close closes the database if the store opened it.
func (c *catalog) close() error {
	if !c.owned {
		return nil
	}
	return c.db.Close()
}
