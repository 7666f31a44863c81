package dockertest

import (
	"context"
)

// Volume is a named volume of a test: a host's disk that outlives its
// container (a node restarted on its volume).
type Volume struct {
	name string
}

// NewVolume creates a named volume with a unique name for t and removes
// it with t.Cleanup (after any container still using it).
func NewVolume(t TB) *Volume {
	t.Helper()
	v := &Volume{name: uniqueName("vol")}
	t.Cleanup(func() {
		ctx, cancel := cleanupContext()
		defer cancel()
		if err := removeVolume(ctx, v.name); err != nil {
			t.Errorf("dockertest: removing volume %s: %v", v.name, err)
		}
	})
	args := append([]string{"volume", "create"}, labelArgs(t, nil)...)
	if _, err := docker(context.Background(), append(args, v.name)...); err != nil {
		t.Fatalf("dockertest: %v", err)
	}
	return v
}

// Name is the volume's name, the Source of a Mount.
func (v *Volume) Name() string { return v.name }

func removeVolume(ctx context.Context, name string) error {
	if err := removeContainersUsing(ctx, "volume="+name); err != nil {
		return err
	}
	if _, err := docker(ctx, "volume", "rm", name); err != nil && !isNotFound(err) {
		return err
	}
	return nil
}
