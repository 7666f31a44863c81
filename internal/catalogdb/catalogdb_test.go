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

func TestBindName(t *testing.T) {
	fs := vfs.NewMem()
	log := slog.New(slog.DiscardHandler)
	db, err := Open(fs, "/d0/.catalog", []string{"/d0"}, log, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := BindName(db, "/d0/.catalog", "node-a", "test"); err != nil {
		t.Fatalf("first bind: %v", err)
	}
	if err := BindName(db, "/d0/.catalog", "node-a", "test"); err != nil {
		t.Fatalf("bind the same name again: %v", err)
	}
	err = BindName(db, "/d0/.catalog", "node-b", "test")
	var ne *NameError
	if !errors.As(err, &ne) || ne.Was != "node-a" || ne.Now != "node-b" {
		t.Fatalf("bind another name: %v, want a NameError naming node-a and node-b", err)
	}
}
