package dockertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SweepAge is how old a leftover must be for Sweep to remove it: older
// than any test that may still be running.
const SweepAge = time.Hour

// Sweep removes the containers, then the networks and volumes, labelled
// shoal-test=1 and created more than SweepAge ago: what test binaries
// that were killed (and so ran no cleanup) left behind. Require runs it.
func Sweep(ctx context.Context) error {
	return sweep(ctx, Label, time.Now().Add(-SweepAge))
}

// sweep removes the resources with the label (KEY=VALUE) created before
// cutoff, containers first (a network or volume in use cannot be
// removed). A resource removed meanwhile by its own test is no error.
func sweep(ctx context.Context, label string, cutoff time.Time) error {
	kinds := []struct {
		list    []string
		inspect []string
		remove  []string
	}{
		{[]string{"ps", "-aq", "--no-trunc"}, []string{"container", "inspect", "--format", "{{.ID}} {{json .Created}}"}, []string{"rm", "-f", "-v"}},
		{[]string{"network", "ls", "-q", "--no-trunc"}, []string{"network", "inspect", "--format", "{{.ID}} {{json .Created}}"}, []string{"network", "rm"}},
		{[]string{"volume", "ls", "-q"}, []string{"volume", "inspect", "--format", "{{.Name}} {{json .CreatedAt}}"}, []string{"volume", "rm"}},
	}
	var errs []error
	for _, k := range kinds {
		out, err := docker(ctx, append(k.list, "--filter", "label="+label)...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids := strings.Fields(out)
		if len(ids) == 0 {
			continue
		}
		old, err := createdBefore(ctx, k.inspect, ids, cutoff)
		if err != nil {
			errs = append(errs, err)
		}
		for _, id := range old {
			if _, err := docker(ctx, append(k.remove, id)...); err != nil && !isNotFound(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// createdBefore inspects resources (one docker command for all of them)
// and returns those created before cutoff. The inspect format prints
// "ID JSON-TIME" per resource. Resources removed since they were listed
// are left out.
func createdBefore(ctx context.Context, inspect, ids []string, cutoff time.Time) ([]string, error) {
	out, err := docker(ctx, append(inspect, ids...)...)
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	if err != nil && len(ids) == 1 {
		return nil, nil // it vanished
	}
	if err != nil {
		// Some vanished: docker printed the others, but the error dropped
		// its stdout; inspect them one by one.
		var old []string
		for _, id := range ids {
			o, err := createdBefore(ctx, inspect, []string{id}, cutoff)
			if err != nil {
				return old, err
			}
			old = append(old, o...)
		}
		return old, nil
	}
	var old []string
	for _, line := range strings.Split(out, "\n") {
		id, created, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		var s string
		if err := json.Unmarshal([]byte(created), &s); err != nil {
			return old, fmt.Errorf("dockertest: the creation time of %s: %v (%q)", id, err, created)
		}
		at, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return old, fmt.Errorf("dockertest: the creation time of %s: %v", id, err)
		}
		if at.Before(cutoff) {
			old = append(old, id)
		}
	}
	return old, nil
}
