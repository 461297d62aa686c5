package cache

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// NewMemory returns a cache in this process, for one instance running without Redis.
// It holds one entry per device read, and only devices with a token can be read, so it
// needs no eviction beyond its TTL.
func NewMemory(o Options) *Realtime {
	m := &memoryBackend{entries: make(map[string]*memoryEntry)}
	c := newRealtime("memory", m, o)
	m.now = c.now
	return c
}

type memoryBackend struct {
	now     func() time.Time
	mu      sync.RWMutex
	entries map[string]*memoryEntry
}

type memoryEntry struct {
	val     []byte // nil: nothing cached
	expires time.Time
	gen     uint64
}

func (m *memoryBackend) get(_ context.Context, device string) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e := m.entries[device]
	if e == nil || e.val == nil || !m.now().Before(e.expires) {
		return nil, nil
	}
	return e.val, nil
}

func (m *memoryBackend) peek(ctx context.Context, device string) ([]byte, string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e := m.entries[device]
	if e == nil {
		return nil, "0", nil
	}
	if e.val == nil || !m.now().Before(e.expires) {
		return nil, strconv.FormatUint(e.gen, 10), nil
	}
	return e.val, strconv.FormatUint(e.gen, 10), nil
}

func (m *memoryBackend) storeIf(_ context.Context, device, gen string, val []byte, ttl time.Duration) (bool, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[device]
	if e == nil {
		e = &memoryEntry{}
		m.entries[device] = e
	}
	current := strconv.FormatUint(e.gen, 10)
	if current != gen {
		return false, current, nil
	}
	e.val, e.expires = val, m.now().Add(ttl)
	return true, current, nil
}

func (m *memoryBackend) invalidate(_ context.Context, device string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[device]
	if e == nil {
		e = &memoryEntry{}
		m.entries[device] = e
	}
	e.val = nil
	e.gen++
	return nil
}

func (m *memoryBackend) ping(context.Context) error { return nil }

func (m *memoryBackend) close() error { return nil }
