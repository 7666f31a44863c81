package catalogdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// dirsKey holds the absolute directories, joined by \x00.
const dirsKey = reservedPrefix + "dirs"

// nameKey holds the name of the node the catalogue belongs to.
const nameKey = reservedPrefix + "name"

// reservedPrefix starts the keys this package writes; callers keep theirs
// out of it.
const reservedPrefix = "c/"

// Reserved reports whether k is one of this package's keys, which a
// caller reading its catalogue skips.
func Reserved(k []byte) bool { return bytes.HasPrefix(k, []byte(reservedPrefix)) }

// DirsError says that a catalogue was made for other directories.
type DirsError struct {
	Catalogue string
	Was, Now  []string
}

func (e *DirsError) Error() string {
	return fmt.Sprintf("the node's directories were %q and are now %q; restart with the same --dir list in the same order, or delete the catalogue %s to start empty",
		e.Was, e.Now, e.Catalogue)
}

// Open opens (creating if needed) the pebble database in dir, with
// pebble's log routed to logger, and checks that it belongs to dirs; a
// mismatch is a *DirsError. owner prefixes error messages ("shuffle").
func Open(fs vfs.FS, dir string, dirs []string, logger *slog.Logger, owner string) (*pebble.DB, error) {
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, Logger: pebbleLogger{logger, owner}})
	if err != nil {
		return nil, fmt.Errorf("%s: open catalogue %s: %w (is another node running on this directory?)", owner, dir, err)
	}
	if err := checkDirs(db, dir, dirs, owner); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func checkDirs(db *pebble.DB, dir string, dirs []string, owner string) error {
	abs := make([]string, len(dirs))
	for i, d := range dirs {
		a, err := filepath.Abs(d)
		if err != nil {
			return fmt.Errorf("%s: directory %q: %w", owner, d, err)
		}
		abs[i] = a
	}
	want := strings.Join(abs, "\x00")
	v, closer, err := db.Get([]byte(dirsKey))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := db.Set([]byte(dirsKey), []byte(want), pebble.Sync); err != nil {
			return fmt.Errorf("%s: write catalogue: %w", owner, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("%s: read catalogue: %w", owner, err)
	}
	got := string(v)
	closer.Close()
	if got != want {
		return &DirsError{Catalogue: dir, Was: strings.Split(got, "\x00"), Now: abs}
	}
	return nil
}

// NameError says that a catalogue belongs to another node.
type NameError struct {
	Catalogue string
	Was, Now  string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("the directories of catalogue %s belong to node %q, and this node is named %q: a directory is one node's; start node %q on them (--name %s), or give this node directories of its own",
		e.Catalogue, e.Was, e.Now, e.Was, e.Was)
}

// BindName records name as the node the catalogue db (in dir) belongs to
// if it names none yet, and otherwise checks that it is that node's; a
// mismatch is a *NameError. owner prefixes error messages.
func BindName(db *pebble.DB, dir, name, owner string) error {
	v, closer, err := db.Get([]byte(nameKey))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := db.Set([]byte(nameKey), []byte(name), pebble.Sync); err != nil {
			return fmt.Errorf("%s: write catalogue: %w", owner, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("%s: read catalogue: %w", owner, err)
	}
	was := string(v)
	closer.Close()
	if was != name {
		return &NameError{Catalogue: dir, Was: was, Now: name}
	}
	return nil
}

// pebbleLogger routes pebble's log to a slog.Logger: informational
// messages at debug level, errors at error level.
type pebbleLogger struct {
	l     *slog.Logger
	owner string
}

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l.Enabled(context.Background(), slog.LevelDebug) {
		p.l.Debug(fmt.Sprintf(format, args...), "source", "pebble")
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "source", "pebble")
}

// Fatalf is called by pebble on an invariant violation it cannot continue
// from; pebble expects it not to return.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "source", "pebble", "fatal", true)
	panic(p.owner + ": catalogue: " + msg)
}

// DirsProblems lists what is wrong with a node's directory list (the
// --dir list that Open binds a catalogue to): none given, an empty one, one
// given twice. Nil means none.
func DirsProblems(dirs []string) []string {
	if len(dirs) == 0 {
		return []string{"Dirs is empty (give at least one local directory, e.g. --dir /var/lib/shoal)"}
	}
	var out []string
	seen := make(map[string]bool, len(dirs))
	for i, d := range dirs {
		switch {
		case d == "":
			out = append(out, fmt.Sprintf("Dirs[%d] is empty", i))
		case seen[d]:
			out = append(out, fmt.Sprintf("Dirs[%d] %q is listed twice", i, d))
		}
		seen[d] = true
	}
	return out
}
