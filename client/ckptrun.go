package client

import (
	"context"
	"fmt"
	"os"
	"time"

	"shoal/checkpoint"
)

// ckptRun is a context's run in the checkpoint store (checkpoint.RunID):
// its ID is made on first use; it is begun (its marker written) when it
// completes its first checkpoint or reads another run's, and ended (its
// end marker written) by Close. Guarded by Context.mu.
type ckptRun struct {
	id      checkpoint.RunID
	started time.Time
	begun   bool
	ended   bool
	uses    map[checkpoint.Ref]bool // other runs' checkpoints it recorded reading
}

// endRunTimeout bounds the write of the end marker by Close.
const endRunTimeout = 30 * time.Second

// CheckpointRun is this context's run in the checkpoint store: its
// checkpoints are written under APP/RUN/ of Options.CheckpointDir, where
// APP is Options.App and RUN an ID made on first use (the UTC time and
// random bits, checkpoint.NewRunID). Retention (Options.CheckpointKeep)
// sees only this prefix. An App that cannot name a run (one path element
// of letters, digits, '.', '_', '-') is an error.
func (c *Context) CheckpointRun() (checkpoint.RunID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runLocked()
}

func (c *Context) runLocked() (checkpoint.RunID, error) {
	if c.ckptRun == nil {
		now := time.Now().UTC()
		id, err := checkpoint.NewRunID(c.app, now)
		if err != nil {
			return checkpoint.RunID{}, fmt.Errorf("client: %w", err)
		}
		c.ckptRun = &ckptRun{id: id, started: now, uses: map[checkpoint.Ref]bool{}}
	}
	return c.ckptRun.id, nil
}

// runStore opens the checkpoint store and returns it and this run's part
// of it.
func (c *Context) runStore(ctx context.Context) (root, run checkpoint.Store, id checkpoint.RunID, err error) {
	if root, err = c.checkpointStore(ctx); err != nil {
		return nil, nil, id, err
	}
	if id, err = c.CheckpointRun(); err != nil {
		return nil, nil, id, err
	}
	run, err = checkpoint.RunStore(root, id)
	return root, run, id, err
}

// beginRun writes this run's marker once.
func (c *Context) beginRun(ctx context.Context, root checkpoint.Store) error {
	c.mu.Lock()
	id, err := c.runLocked()
	var begun bool
	var started time.Time
	if err == nil {
		begun, started = c.ckptRun.begun, c.ckptRun.started
	}
	c.mu.Unlock()
	if err != nil || begun {
		return err
	}
	host, _ := os.Hostname()
	m := checkpoint.RunMarker{App: id.App, Run: id.Run, Started: started, Host: host, PID: os.Getpid()}
	if err := checkpoint.BeginRun(ctx, root, m); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	c.mu.Lock()
	c.ckptRun.begun = true
	c.mu.Unlock()
	c.log.Info("checkpoint run begun", "run", id.String(), "store", root.String())
	return nil
}

// recordUse records, once, that this run reads another run's
// checkpoint, so that `shoal checkpoints prune` keeps it while this run
// has not ended.
func (c *Context) recordUse(ctx context.Context, root checkpoint.Store, ref checkpoint.Ref) error {
	if err := c.beginRun(ctx, root); err != nil {
		return err
	}
	c.mu.Lock()
	id, done := c.ckptRun.id, c.ckptRun.uses[ref]
	c.mu.Unlock()
	if done {
		return nil
	}
	if err := checkpoint.RecordUse(ctx, root, id, ref); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	c.mu.Lock()
	c.ckptRun.uses[ref] = true
	c.mu.Unlock()
	return nil
}

// endCheckpointRun writes the end marker of a run that was begun; Close
// calls it. From then on `shoal checkpoints prune` may delete the run's
// checkpoints.
func (c *Context) endCheckpointRun() error {
	c.mu.Lock()
	r, st := c.ckptRun, c.ckptStore
	end := r != nil && r.begun && !r.ended && st != nil
	if end {
		r.ended = true
	}
	c.mu.Unlock()
	if !end {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), endRunTimeout)
	defer cancel()
	if err := checkpoint.EndRun(ctx, st, r.id, checkpoint.RunEnd{Status: "closed"}); err != nil {
		c.log.Warn("checkpoint run not marked ended", "run", r.id.String(), "err", err)
		return fmt.Errorf("client: %w (the run's checkpoints stay until pruned with --abandoned-after)", err)
	}
	return nil
}
