package kv

import (
	"context"
	"slices"
	"strings"
	"sync"
)

// Memory is a Store that keeps its keys and values in a map in memory. It
// has no size limit of its own. The zero value is not usable; call
// NewMemory.
//
// Memory is safe for concurrent use: reads share a read lock, writes take
// the lock alone. Every value is copied on the way in and on the way out, so
// callers never alias its memory. Keys is O(n + m log m) for n stored keys of
// which m match: it scans the whole map and sorts the matches.
type Memory struct {
	mu     sync.RWMutex
	values map[string][]byte
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store.
func NewMemory() *Memory {
	return &Memory{values: make(map[string][]byte)}
}

// Get returns a copy of the value under key. It returns ctx.Err() when ctx is
// done, an error wrapping ErrInvalidKey for an invalid key, and one wrapping
// ErrNotFound for a missing key. An empty value comes back as a non-nil
// empty slice.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := ValidKey(key); err != nil {
		return nil, err
	}
	m.mu.RLock()
	v, ok := m.values[key]
	m.mu.RUnlock()
	if !ok {
		return nil, notFound(key)
	}
	return clone(v), nil
}

// Set stores a copy of value under key, replacing any value there; nil is
// stored as an empty value. It returns ctx.Err() when ctx is done and an
// error wrapping ErrInvalidKey for an invalid key, including the empty key.
func (m *Memory) Set(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidKey(key); err != nil {
		return err
	}
	v := clone(value)
	m.mu.Lock()
	m.values[key] = v
	m.mu.Unlock()
	return nil
}

// Delete removes key and reports whether it was there. It returns ctx.Err()
// when ctx is done and an error wrapping ErrInvalidKey for an invalid key.
func (m *Memory) Delete(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := ValidKey(key); err != nil {
		return false, err
	}
	m.mu.Lock()
	_, ok := m.values[key]
	delete(m.values, key)
	m.mu.Unlock()
	return ok, nil
}

// Keys returns, in byte order, at most limit keys that start with prefix and
// sort after startAfter, and whether more match; limit <= 0 means no limit.
// Any prefix and startAfter are accepted. It returns ctx.Err() when ctx is
// done. It scans every key: O(n + m log m) for n keys of which m match.
func (m *Memory) Keys(ctx context.Context, prefix, startAfter string, limit int) ([]string, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	m.mu.RLock()
	var keys []string
	for k := range m.values {
		if strings.HasPrefix(k, prefix) && k > startAfter {
			keys = append(keys, k)
		}
	}
	m.mu.RUnlock()
	slices.Sort(keys)
	if limit > 0 && len(keys) > limit {
		return keys[:limit:limit], true, nil
	}
	return keys, false, nil
}

// Len returns the number of keys stored, or ctx.Err() when ctx is done.
func (m *Memory) Len(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.values), nil
}

// clone returns a copy of b that is never nil.
func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}
