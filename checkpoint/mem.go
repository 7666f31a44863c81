package checkpoint

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemStore is a Store in this process's memory, for tests. Objects are
// copied in and out, so callers may reuse their slices.
type MemStore struct {
	name string
	now  func() time.Time // the store's clock, for ModTime

	mu   sync.Mutex
	objs map[string]memObject
}

type memObject struct {
	data    []byte
	modTime time.Time
}

// NewMem returns an empty memory store; name only appears in its URI,
// mem://name.
func NewMem(name string) (*MemStore, error) {
	if name == "" || strings.ContainsAny(name, "/\\\x00") {
		return nil, invalidf("memory store name %q must be non-empty and have no '/' (mem://name)", name)
	}
	return &MemStore{name: name, now: time.Now, objs: make(map[string]memObject)}, nil
}

func (m *MemStore) String() string { return "mem://" + m.name }

func (m *MemStore) Put(ctx context.Context, key string, data []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("checkpoint: put %s to %s: %w", key, m, err)
	}
	obj := memObject{data: slices.Clone(data), modTime: m.now()}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = obj
	return nil
}

func (m *MemStore) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("checkpoint: get %s from %s: %w", key, m, err)
	}
	m.mu.Lock()
	obj, ok := m.objs[key]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %s in %s", ErrNotFound, key, m)
	}
	return slices.Clone(obj.data), nil
}

func (m *MemStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("checkpoint: list %s: %w", m, err)
	}
	m.mu.Lock()
	var out []ObjectInfo
	for k, obj := range m.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, ObjectInfo{Key: k, Size: int64(len(obj.data)), ModTime: obj.modTime})
		}
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (m *MemStore) Delete(ctx context.Context, keys ...string) error {
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("checkpoint: delete from %s: %w", m, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.objs, k)
	}
	return nil
}
