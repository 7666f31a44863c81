package shuffle

import "sync"

// BufferPool recycles the sort writers' arenas and sort entries between
// map tasks, so that a worker running task after task allocates its sort
// memory once instead of growing (and the collector scanning) a fresh
// 64 MiB arena per task. It keeps at most maxIdle idle buffer sets: give a
// worker one pool with as many as it has task slots. A nil *BufferPool is
// valid and recycles nothing.
type BufferPool struct {
	mu      sync.Mutex
	maxIdle int
	idle    []sorterBuffers
}

type sorterBuffers struct {
	arena   []byte
	entries []sortEntry
}

func (b sorterBuffers) memory() int { return cap(b.arena) + sortEntrySize*cap(b.entries) }

// NewBufferPool returns a pool that keeps at most maxIdle buffer sets.
func NewBufferPool(maxIdle int) *BufferPool {
	return &BufferPool{maxIdle: maxIdle}
}

// get returns an idle buffer set that fits within limit bytes.
func (p *BufferPool) get(limit int) (sorterBuffers, bool) {
	if p == nil {
		return sorterBuffers{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.idle) - 1; i >= 0; i-- {
		if b := p.idle[i]; b.memory() <= limit && cap(b.entries) > 0 {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			return b, true
		}
	}
	return sorterBuffers{}, false
}

// put makes a buffer set idle, or drops it when the pool is full.
func (p *BufferPool) put(b sorterBuffers) {
	if p == nil || cap(b.arena) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) < p.maxIdle {
		p.idle = append(p.idle, sorterBuffers{arena: b.arena[:0], entries: b.entries[:0]})
	}
}
