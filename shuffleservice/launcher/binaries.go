package launcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// binaries is the node's cache of executables (doc.go, "Binary cache"):
// files DIR/<sha256>, each verified, synced and executable before it gets
// its name. It keeps at most max of them: making room removes the least
// recently used one that no running worker holds.
type binaries struct {
	dir      string
	max      int
	maxBytes int64
	log      *slog.Logger
	// uploads bounds the uploads being received at once, and so the
	// disk their temporary files take.
	uploads *semaphore.Weighted

	// mu guards entries. Held across the cache's own small file
	// operations (rename, remove, chtimes), never across an upload.
	mu      sync.Mutex
	entries map[string]*binEntry
}

type binEntry struct {
	size    int64
	lastUse time.Time
	refs    int // applications running workers from it
}

// maxUploads is how many PutBinary calls may be received at once; the
// others wait.
const maxUploads = 2

// tempPrefix starts the name of a binary being received.
const tempPrefix = ".tmp-"

// openBinaries opens the cache in dir: it deletes temporary files left
// by a crash and anything that is not named by a digest, and takes each
// file's modification time as its last use.
func openBinaries(dir string, max int, maxBytes int64, log *slog.Logger) (*binaries, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("launcher: create the binary cache: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("launcher: read the binary cache: %w", err)
	}
	b := &binaries{dir: dir, max: max, maxBytes: maxBytes, log: log, uploads: semaphore.NewWeighted(maxUploads), entries: map[string]*binEntry{}}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		fi, err := e.Info()
		if err == nil && e.Type().IsRegular() && ValidDigest(e.Name()) {
			b.entries[e.Name()] = &binEntry{size: fi.Size(), lastUse: fi.ModTime()}
			continue
		}
		if strings.HasPrefix(e.Name(), tempPrefix) {
			log.Info("deleting a binary whose upload did not finish", "file", path)
		} else {
			log.Warn("deleting a file that is not a cached binary", "file", path)
		}
		if err := os.RemoveAll(path); err != nil {
			log.Warn("cannot delete", "file", path, "err", err)
		}
	}
	b.mu.Lock()
	b.makeRoomLocked("", 0)
	b.mu.Unlock()
	return b, nil
}

// ValidDigest reports whether s is a SHA-256 as the cache names binaries:
// 64 lower-case hex digits.
func ValidDigest(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func checkDigest(s string) error {
	if !ValidDigest(s) {
		return fmt.Errorf("%w: binary digest %q is not a SHA-256 in 64 lower-case hex digits", ErrInvalidArgument, s)
	}
	return nil
}

func (b *binaries) path(digest string) string { return filepath.Join(b.dir, digest) }

// has reports whether the cache holds digest, and counts the question as
// a use (a StartWorkers is likely to follow).
func (b *binaries) has(digest string) (bool, error) {
	if err := checkDigest(digest); err != nil {
		return false, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entries[digest]
	if e == nil {
		return false, nil
	}
	b.touchLocked(digest, e)
	return true, nil
}

// touchLocked makes digest the most recently used, in memory and in the
// file's modification time (which a restarted node reads back).
func (b *binaries) touchLocked(digest string, e *binEntry) {
	e.lastUse = time.Now()
	_ = os.Chtimes(b.path(digest), time.Time{}, e.lastUse)
}

// put receives a binary of size bytes from data, verifies its size,
// digest and that the node can run it, and gives it its name. A binary
// the cache holds already is not received again.
func (b *binaries) put(ctx context.Context, digest string, size uint64, data io.Reader) error {
	if err := checkDigest(digest); err != nil {
		return err
	}
	switch {
	case size == 0:
		return fmt.Errorf("%w: binary %s: size 0 (the header must give the binary's size)", ErrInvalidArgument, digest)
	case size > uint64(b.maxBytes):
		return fmt.Errorf("%w: binary %s of %d bytes is larger than this node accepts (--max-binary-bytes %d)", ErrTooLarge, digest, size, b.maxBytes)
	}
	b.mu.Lock()
	if e := b.entries[digest]; e != nil {
		b.touchLocked(digest, e)
		b.mu.Unlock()
		if e.size != int64(size) {
			return fmt.Errorf("%w: size mismatch: the cached binary %s has %d bytes, the header says %d", ErrInvalidArgument, digest, e.size, size)
		}
		return nil
	}
	if !b.roomLocked(digest) {
		b.mu.Unlock()
		return b.fullError()
	}
	b.mu.Unlock()

	if err := b.uploads.Acquire(ctx, 1); err != nil {
		return err
	}
	defer b.uploads.Release(1)
	tmp, err := b.receive(digest, size, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // once renamed, a no-op
	if err := CheckRunnable(tmp); err != nil {
		return err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.makeRoomLocked(digest, 1) {
		return b.fullError()
	}
	// Concurrent uploads of one digest: each renames its own file, the
	// last wins, with the same bytes.
	if err := os.Rename(tmp, b.path(digest)); err != nil {
		return fmt.Errorf("launcher: name the binary %s: %w", digest, err)
	}
	syncDir(b.dir)
	e := b.entries[digest]
	if e == nil {
		e = &binEntry{size: int64(size)}
		b.entries[digest] = e
	}
	b.touchLocked(digest, e)
	b.log.Info("binary cached", "sha256", digest, "bytes", size, "binaries", len(b.entries))
	return nil
}

func (b *binaries) fullError() error {
	return fmt.Errorf("%w: the binary cache is full: its %d binaries are all in use by running workers (remove an application, or raise the node's limit)", ErrTooLarge, b.max)
}

// receive writes size bytes of data to a temporary file in the cache,
// checks their digest, syncs it and makes it executable. It returns the
// file's path; on an error it leaves nothing behind.
func (b *binaries) receive(digest string, size uint64, data io.Reader) (path string, err error) {
	f, err := os.CreateTemp(b.dir, tempPrefix+"*")
	if err != nil {
		return "", fmt.Errorf("launcher: receive binary %s: %w", digest, err)
	}
	name := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			os.Remove(name)
		}
	}()
	h := sha256.New()
	n, err := io.CopyN(io.MultiWriter(f, h), data, int64(size))
	switch {
	case errors.Is(err, io.EOF):
		return "", fmt.Errorf("%w: binary %s: the stream ended after %d of the %d bytes announced", ErrInvalidArgument, digest, n, size)
	case err != nil:
		return "", fmt.Errorf("launcher: receive binary %s: %w", digest, err)
	}
	var one [1]byte
	switch m, err := data.Read(one[:]); {
	case m > 0:
		return "", fmt.Errorf("%w: binary %s: the stream carries more than the %d bytes announced", ErrInvalidArgument, digest, size)
	case err != nil && !errors.Is(err, io.EOF):
		return "", fmt.Errorf("launcher: receive binary %s: %w", digest, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return "", fmt.Errorf("%w: digest mismatch: got %s for the %d bytes received, the header says %s", ErrInvalidArgument, got, size, digest)
	}
	if err := f.Chmod(0o755); err != nil {
		return "", fmt.Errorf("launcher: receive binary %s: %w", digest, err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("launcher: receive binary %s: %w", digest, err)
	}
	cerr := f.Close()
	f = nil
	if cerr != nil {
		return "", fmt.Errorf("launcher: receive binary %s: %w", digest, cerr)
	}
	return name, nil
}

// roomLocked reports whether the cache could take digest: it holds it,
// or holds fewer than max, or one it holds is in no use.
func (b *binaries) roomLocked(digest string) bool {
	if b.entries[digest] != nil || len(b.entries) < b.max {
		return true
	}
	for _, e := range b.entries {
		if e.refs == 0 {
			return true
		}
	}
	return false
}

// makeRoomLocked removes least recently used binaries in no use (never
// keep) until the cache holds at most max, counting extra binaries about
// to be added (if keep is not held yet). It reports whether it could.
func (b *binaries) makeRoomLocked(keep string, extra int) bool {
	if b.entries[keep] != nil {
		extra = 0
	}
	for len(b.entries)+extra > b.max {
		var victim string
		var oldest time.Time
		for d, e := range b.entries {
			if e.refs > 0 || d == keep {
				continue
			}
			if victim == "" || e.lastUse.Before(oldest) {
				victim, oldest = d, e.lastUse
			}
		}
		if victim == "" {
			return false
		}
		if err := os.Remove(b.path(victim)); err != nil && !errors.Is(err, os.ErrNotExist) {
			b.log.Warn("cannot delete a cached binary", "sha256", victim, "err", err)
		}
		delete(b.entries, victim)
		b.log.Info("binary removed from the cache (least recently used)", "sha256", victim)
	}
	return true
}

// acquire returns the path of binary digest and holds it in the cache
// until release is called.
func (b *binaries) acquire(digest string) (path string, release func(), err error) {
	if err := checkDigest(digest); err != nil {
		return "", nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entries[digest]
	if e == nil {
		return "", nil, fmt.Errorf("%w: binary %s is not in this node's cache (upload it with PutBinary first; the cache keeps %d)", ErrUnknownBinary, digest, b.max)
	}
	e.refs++
	b.touchLocked(digest, e)
	var once sync.Once
	return b.path(digest), func() {
		once.Do(func() {
			b.mu.Lock()
			e.refs--
			b.touchLocked(digest, e)
			b.mu.Unlock()
		})
	}, nil
}

// list returns the digests the cache holds.
func (b *binaries) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.entries))
	for d := range b.entries {
		out = append(out, d)
	}
	return out
}

// syncDir syncs a directory, so that a rename in it survives a crash.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
