package catalogdb

import (
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestOpenChecksDirs(t *testing.T) {
	fs := vfs.NewMem()
	log := slog.New(slog.DiscardHandler)
	dirs := []string{"/d0", "/d1"}
	db, err := Open(fs, "/d0/.catalog", dirs, log, "test")
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = Open(fs, "/d0/.catalog", dirs, log, "test"); err != nil {
		t.Fatalf("reopen with the same dirs: %v", err)
	}
	db.Close()
	for _, other := range [][]string{{"/d1", "/d0"}, {"/d0"}, {"/d0", "/d2"}} {
		_, err := Open(fs, "/d0/.catalog", other, log, "test")
		var de *DirsError
		if !errors.As(err, &de) || len(de.Was) != 2 || de.Was[0] != filepath.Clean("/d0") {
			t.Errorf("reopen with %v: %v, want a DirsError naming the first dirs", other, err)
		}
	}
}
