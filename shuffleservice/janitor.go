package shuffleservice

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"shoal/blockstore"
	"shoal/shuffleservice/shuffle"
	"shoal/shuffleservice/shufflepb"
)

// This file holds the node's housekeeping: the TTL janitor, and the
// recovery and sweep run by Open.

// janitor removes expired applications every JanitorInterval until Close.
func (s *Server) janitor() {
	defer close(s.janitorDone)
	t := time.NewTicker(s.opts.JanitorInterval)
	defer t.Stop()
	for {
		select {
		case <-s.janitorStop:
			return
		case now := <-t.C:
			s.expireApps(now)
		}
	}
}

// expireApps removes every application whose last heartbeat is older than
// its TTL at now.
func (s *Server) expireApps(now time.Time) {
	var names []string
	s.mu.RLock()
	for name, a := range s.apps {
		if a.expired(now) {
			names = append(names, name)
		}
	}
	s.mu.RUnlock()
	for _, name := range names {
		removed, err := s.removeApp(name, now)
		if removed {
			s.log.Warn("application expired: no heartbeat within its TTL", "app", name)
		}
		if err != nil && !errors.Is(err, shuffle.ErrClosed) {
			s.log.Error("cannot remove expired application", "app", name, "err", err)
		}
	}
}

// recover builds the in-memory state from the catalogue, drops committed
// outputs whose files are missing or have the wrong size, removes the
// cached blocks of applications the catalogue does not know, and sweeps
// the directories of everything that is not a committed file. Every
// application gets a fresh TTL, counted from now. The block store is open
// and has swept its own DIR/APP/blocks/ directories.
func (s *Server) recover(cc *catalogContents) error {
	now := time.Now()
	for name, r := range cc.apps {
		a := &appState{ttl: r.ttl, registered: r.registered, token: r.token, workers: cc.workers[name], outputs: map[outputKey]*output{}}
		if a.workers == nil {
			a.workers = map[string]workerRecord{}
		}
		if a.ttl <= 0 {
			a.ttl = s.opts.AppTTL
		}
		a.touch(now)
		s.apps[name] = a
		for _, pb := range cc.outputs[name] {
			if err := s.checkCommittedFiles(name, pb); err != nil {
				s.log.Warn("dropping committed map output: its files are damaged", "app", name, "shuffle", pb.Shuffle, "map", pb.Map, "attempt", pb.Attempt, "err", err)
				if err := s.cat.deleteOutput(name, pb.Shuffle, pb.Map); err != nil {
					return err
				}
				continue
			}
			o := &output{pb: pb, serial: s.nextSerial.Add(1), size: outputSize(pb)}
			k := outputKey{pb.Shuffle, pb.Map}
			a.outputs[k] = o
			s.countOutputLocked(name, k, o, 1)
		}
	}
	// Blocks of an application that is gone: the node died after a
	// PutBlock that raced its application's removal had catalogued its
	// block, before it removed it again.
	for _, app := range s.blocks.Apps() {
		if s.apps[app] != nil {
			continue
		}
		n, err := s.blocks.RemoveApp(app)
		if err != nil {
			return err
		}
		s.log.Warn("removed the cached blocks of an unknown application", "app", app, "blocks", n)
	}
	for i, d := range s.layout.Dirs {
		if err := s.sweepDir(i, d); err != nil {
			return err
		}
	}
	return nil
}

// checkCommittedFiles checks that the files of a committed output exist
// with their committed sizes. Contents are checked when served.
func (s *Server) checkCommittedFiles(app string, pb *shufflepb.MapOutput) error {
	what := fmt.Sprintf("app %s shuffle %d map %d attempt %d", app, pb.Shuffle, pb.Map, pb.Attempt)
	if pb.Kind == shufflepb.OutputKind_OUTPUT_KIND_HASH {
		for r, l := range pb.Lengths {
			if err := checkSize(what, s.layout.HashPath(app, pb.Shuffle, pb.Map, pb.Attempt, r), int64(l)); err != nil {
				return err
			}
		}
		return nil
	}
	if err := checkSize(what, s.layout.DataPath(app, pb.Shuffle, pb.Map, pb.Attempt), int64(shuffle.OffsetsOf(pb.Lengths)[len(pb.Lengths)])); err != nil {
		return err
	}
	return checkSize(what, s.layout.IndexPath(app, pb.Shuffle, pb.Map, pb.Attempt), int64(shuffle.IndexSize(len(pb.Lengths))))
}

var shuffleDirPattern = regexp.MustCompile(`^shuffle-(0|[1-9][0-9]{0,9})$`)

// sweepDir deletes from local directory d (Dirs[i]) the trash, the
// directories of unknown applications and, in known ones, every file that
// is not a committed output's final file: temporary files (".tmp-") and
// finals that were never committed.
//
// A directory of an unknown application is deleted only if it looks like
// one (a valid ID holding nothing but shuffle-N directories and an empty
// blocks directory, which the block store has emptied by then), so that a
// mistaken --dir does not wipe unrelated data. The blocks directories of
// known applications are the block store's: it sweeps them itself.
func (s *Server) sweepDir(i int, d string) error {
	entries, err := os.ReadDir(d)
	if err != nil {
		return fmt.Errorf("shuffle: sweep local directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case name == ".trash":
			s.removeAll(filepath.Join(d, name))
		case i == 0 && name == catalogDirName, !e.IsDir(), shuffle.ValidateID("application", name) != nil:
		case s.apps[name] != nil:
			s.sweepAppDir(d, name)
		case looksLikeAppDir(filepath.Join(d, name)):
			s.log.Warn("deleting the directory of an unknown application", "dir", filepath.Join(d, name))
			s.removeAll(filepath.Join(d, name))
		}
	}
	return nil
}

func looksLikeAppDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		return false
	}
	for _, e := range entries {
		switch {
		case !e.IsDir():
			return false
		case e.Name() == blockstore.BlocksDirName:
			if sub, err := os.ReadDir(filepath.Join(dir, e.Name())); err != nil || len(sub) > 0 {
				return false
			}
		case !shuffleDirPattern.MatchString(e.Name()):
			return false
		}
	}
	return true
}

func (s *Server) sweepAppDir(d, app string) {
	a := s.apps[app]
	entries, _ := os.ReadDir(filepath.Join(d, app))
	for _, e := range entries {
		m := shuffleDirPattern.FindStringSubmatch(e.Name())
		if m == nil || !e.IsDir() {
			continue
		}
		shuffle, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil {
			continue
		}
		sdir := filepath.Join(d, app, e.Name())
		files, _ := os.ReadDir(sdir)
		var removed int
		for _, f := range files {
			path := filepath.Join(sdir, f.Name())
			if s.isCommittedFile(a, app, uint32(shuffle), path) {
				continue
			}
			if err := os.RemoveAll(path); err != nil {
				s.log.Warn("cannot delete uncommitted file", "file", path, "err", err)
				continue
			}
			removed++
		}
		if removed > 0 {
			s.log.Info("deleted uncommitted files", "dir", sdir, "files", removed)
		}
	}
}

// isCommittedFile reports whether path is a final file of a committed
// output of app's shuffle.
func (s *Server) isCommittedFile(a *appState, app string, shuffleID uint32, path string) bool {
	name := filepath.Base(path)
	if strings.Contains(name, shuffle.TempSuffix) {
		return false
	}
	rest, ok := strings.CutPrefix(name, "map-")
	if !ok {
		return false
	}
	mapStr, rest, _ := strings.Cut(rest, "-")
	mapID, err := strconv.ParseUint(mapStr, 10, 32)
	if err != nil {
		return false
	}
	o := a.outputs[outputKey{shuffleID, uint32(mapID)}]
	if o == nil {
		return false
	}
	p := o.pb
	if p.Kind == shufflepb.OutputKind_OUTPUT_KIND_SORTED {
		return path == s.layout.DataPath(app, shuffleID, p.Map, p.Attempt) || path == s.layout.IndexPath(app, shuffleID, p.Map, p.Attempt)
	}
	// map-M-A.r-R.data
	_, rest, _ = strings.Cut(rest, ".r-")
	rStr, _, _ := strings.Cut(rest, ".")
	r, err := strconv.Atoi(rStr)
	if err != nil || r < 0 || r >= len(p.Lengths) {
		return false
	}
	return path == s.layout.HashPath(app, shuffleID, p.Map, p.Attempt, r)
}
