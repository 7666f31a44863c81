package shuffle

import (
	"fmt"
	"path/filepath"

	"github.com/cespare/xxhash/v2"

	"shoal/internal/ident"
)

// ValidateID reports whether id may name an application or a worker
// (what): the syntax of package ident, which makes an ID one safe path
// element that never escapes the node's directories. The error wraps
// ErrInvalidArgument.
func ValidateID(what, id string) error {
	if err := ident.Check(what+" ID", id); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return nil
}

// Layout names the files of map outputs inside a node's local directories.
// The node service, the writers on its machine and the local path of the
// reader all derive paths from it, so a path is never sent over the wire.
//
//	DIR/APP/shuffle-S/map-M-A.data        sorted data (sort, bypass-merge)
//	DIR/APP/shuffle-S/map-M-A.index       its R+1 offsets
//	DIR/APP/shuffle-S/map-M-A.r-R.data    hash output, one file per reduce R
//
// DIR is chosen among Dirs by a hash of (APP, S, M), spreading map outputs
// over disks. Temporary files carry a ".tmp-" suffix after the final name.
type Layout struct {
	Dirs []string
}

// Dir returns the local directory (one of Dirs) holding map output (app,
// shuffle, mapID).
func (l Layout) Dir(app string, shuffle, mapID uint32) string {
	h := xxhash.Sum64String(app) + uint64(shuffle)*0x9e3779b97f4a7c15 + uint64(mapID)
	return l.Dirs[h%uint64(len(l.Dirs))]
}

// AppDirs returns the application's directory in every local directory.
func (l Layout) AppDirs(app string) []string {
	out := make([]string, len(l.Dirs))
	for i, d := range l.Dirs {
		out[i] = filepath.Join(d, app)
	}
	return out
}

// ShuffleDirs returns the shuffle's directory in every local directory.
func (l Layout) ShuffleDirs(app string, shuffle uint32) []string {
	out := make([]string, len(l.Dirs))
	for i, d := range l.Dirs {
		out[i] = shuffleDir(d, app, shuffle)
	}
	return out
}

func shuffleDir(dir, app string, shuffle uint32) string {
	return filepath.Join(dir, app, fmt.Sprintf("shuffle-%d", shuffle))
}

// MapDir returns the directory that holds the files of a map output.
func (l Layout) MapDir(app string, shuffle, mapID uint32) string {
	return shuffleDir(l.Dir(app, shuffle, mapID), app, shuffle)
}

// DataPath is the data file of a sorted map output.
func (l Layout) DataPath(app string, shuffle, mapID, attempt uint32) string {
	return filepath.Join(l.MapDir(app, shuffle, mapID), fmt.Sprintf("map-%d-%d.data", mapID, attempt))
}

// IndexPath is the index file of a sorted map output.
func (l Layout) IndexPath(app string, shuffle, mapID, attempt uint32) string {
	return filepath.Join(l.MapDir(app, shuffle, mapID), fmt.Sprintf("map-%d-%d.index", mapID, attempt))
}

// HashPath is the file of reduce partition reduce of a hash map output.
func (l Layout) HashPath(app string, shuffle, mapID, attempt uint32, reduce int) string {
	return filepath.Join(l.MapDir(app, shuffle, mapID), fmt.Sprintf("map-%d-%d.r-%d.data", mapID, attempt, reduce))
}

// TempSuffix marks a file that is not yet under its final name: a
// writer's temporary files are FINAL + TempSuffix + a random suffix.
const TempSuffix = ".tmp-"
