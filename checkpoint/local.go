package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// DirStore is a Store in a local directory: the object under key a/b is
// the file ROOT/a/b. Put writes a temporary file beside the final one
// (name starting with ".tmp-"), fsyncs it, renames it into place and
// fsyncs the directory, so a crash leaves the old object or the new one,
// never part of one. Temporary files are invisible to List and Get.
type DirStore struct {
	root string
}

// OpenDir opens the local directory root (absolute), creating it if need
// be.
func OpenDir(root string) (*DirStore, error) {
	if !filepath.IsAbs(root) {
		return nil, invalidf("checkpoint directory %q is not absolute", root)
	}
	root = filepath.Clean(root)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint: cannot create the checkpoint directory: %w", err)
	}
	if fi, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("checkpoint: checkpoint directory: %w", err)
	} else if !fi.IsDir() {
		return nil, invalidf("checkpoint directory %s is a file", root)
	}
	return &DirStore{root: root}, nil
}

func (d *DirStore) String() string { return "file://" + filepath.ToSlash(d.root) }

func (d *DirStore) path(key string) string {
	return filepath.Join(d.root, filepath.FromSlash(key))
}

func (d *DirStore) Put(ctx context.Context, key string, data []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("checkpoint: put %s to %s: %w", key, d, err)
	}
	if err := d.put(key, data); err != nil {
		return fmt.Errorf("checkpoint: put %s to %s: %w", key, d, err)
	}
	return nil
}

func (d *DirStore) put(key string, data []byte) (err error) {
	final := d.path(key)
	dir := filepath.Dir(final)
	var f *os.File
	// A Delete may remove the directory between MkdirAll and CreateTemp
	// (it removes directories it empties): try again once.
	for range 2 {
		if err = os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		f, err = os.CreateTemp(dir, tmpPrefix+filepath.Base(final)+"-*")
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) { // some file systems cannot sync a directory
		return err
	}
	return nil
}

func (d *DirStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("checkpoint: get %s from %s: %w", key, d, err)
	}
	b, err := os.ReadFile(d.path(key))
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.EISDIR):
		return nil, fmt.Errorf("%w: %s in %s", ErrNotFound, key, d)
	case err != nil:
		return nil, fmt.Errorf("checkpoint: get %s from %s: %w", key, d, err)
	}
	return b, nil
}

func (d *DirStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	// Walk only the deepest directory the prefix names.
	start := d.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = d.path(prefix[:i])
	}
	var out []ObjectInfo
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) { // the start, or a directory removed meanwhile
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) || checkKey(key) != nil {
			return nil
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) { // deleted meanwhile
			return nil
		} else if err != nil {
			return err
		}
		out = append(out, ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint: list %s: %w", d, err)
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// staleTempAge is how old a temporary file of the local store must be for
// Prune to remove it: its writer crashed, since no write takes this long.
const staleTempAge = time.Hour

// removeStaleTemps removes the temporary files last modified before
// before, and the directories that leaves empty.
func (d *DirStore) removeStaleTemps(ctx context.Context, before time.Time) error {
	dirs := map[string]bool{}
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		switch {
		case errors.Is(err, fs.ErrNotExist): // removed meanwhile
			return nil
		case err != nil:
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case e.IsDir() || !strings.HasPrefix(e.Name(), tmpPrefix):
			return nil
		}
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(before) {
			return nil // gone meanwhile, or a write in progress
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		dirs[filepath.Dir(p)] = true
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove stale temporary files of %s: %w", d, err)
	}
	d.removeEmptyDirs(dirs)
	return nil
}

// removeEmptyDirs removes dirs, and their parents up to the root, while
// they are empty; one that still holds something stays.
func (d *DirStore) removeEmptyDirs(dirs map[string]bool) {
	for dir := range dirs {
		for dir != d.root && strings.HasPrefix(dir, d.root) {
			if os.Remove(dir) != nil {
				break
			}
			dir = filepath.Dir(dir)
		}
	}
}

func (d *DirStore) Delete(ctx context.Context, keys ...string) error {
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
	}
	dirs := make(map[string]bool)
	var errs []error
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("checkpoint: delete from %s: %w", d, err)
		}
		p := d.path(k)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		dirs[filepath.Dir(p)] = true
	}
	d.removeEmptyDirs(dirs)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("checkpoint: delete from %s: %w", d, err)
	}
	return nil
}
