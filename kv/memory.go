package kv

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/google/btree"
)

// Default quotas of a Memory store, which NewMemory uses unless told
// otherwise by MaxBytes and MaxKeys. They keep the cache of a component that
// nobody configured to a size a small machine can carry: 64 MiB holds 16
// values of the CacheService's largest size (DefaultMaxValueSize), and
// 100,000 small entries take about 10 MiB.
const (
	DefaultMaxBytes = 64 << 20
	DefaultMaxKeys  = 100_000
)

// EntryOverhead is what a Memory store counts for each entry on top of the
// bytes of its key and its value: the entry's 24 bytes in the store's index,
// the room left free in the index's nodes, and the rounding of the entry's
// allocation. Measured on 200,000 entries of 16-byte keys and values stored
// in key order (the worst case for the index's nodes), the heap beyond the
// keys and values is about 52 bytes an entry (BenchmarkMemoryHeap); 64
// keeps the count above the heap, so that many small entries cannot take
// more memory than MaxBytes says.
const EntryOverhead = 64

// btreeDegree is the degree of a Memory store's index: nodes of up to
// 2·32−1 entries.
const btreeDegree = 32

// MemoryOption configures NewMemory: MaxBytes, MaxKeys. Only this package
// makes them. A nil MemoryOption is ignored; when options conflict, the
// last one wins.
type MemoryOption interface {
	applyMemory(*Memory)
}

type memoryOption func(*Memory)

func (o memoryOption) applyMemory(m *Memory) { o(m) }

// MaxBytes sets how many bytes a Memory store may hold, counted as the
// length of every key and value plus EntryOverhead for each entry. A Set
// that would take the store past it fails with an error wrapping ErrQuota.
// Default: DefaultMaxBytes (64 MiB). MaxBytes panics if n is not positive.
func MaxBytes(n int) MemoryOption {
	if n <= 0 {
		panic(fmt.Sprintf("kv.MaxBytes(%d): the limit must be positive", n))
	}
	return memoryOption(func(m *Memory) { m.maxBytes = n })
}

// MaxKeys sets how many keys a Memory store may hold. A Set of a new key in a
// store that holds that many fails with an error wrapping ErrQuota; a Set
// that replaces the value of a key already there is not refused for it.
// Default: DefaultMaxKeys (100,000). MaxKeys panics if n is not positive.
func MaxKeys(n int) MemoryOption {
	if n <= 0 {
		panic(fmt.Sprintf("kv.MaxKeys(%d): the limit must be positive", n))
	}
	return memoryOption(func(m *Memory) { m.maxKeys = n })
}

// Memory is a Store that keeps its keys and values in memory, in a B-tree
// ordered by key, within two quotas: the bytes it holds and the number of
// keys (MaxBytes, MaxKeys). A Set past either fails with an error wrapping
// ErrQuota and changes nothing; replacing a value counts the difference in
// size, and Delete frees what the entry counted. The zero value is not
// usable; call NewMemory.
//
// Memory is safe for concurrent use: Get, Keys, Len and Usage share a read
// lock, Set and Delete take the lock alone, each for O(log n) in a store of
// n keys. Keys costs O(log n + limit) under the read lock, so a page of
// 1000 keys delays writers by that page only, whatever the size of the
// store. Every value is copied on the way in and on the way out, so callers
// never alias its memory.
type Memory struct {
	maxBytes, maxKeys int

	mu    sync.RWMutex
	index *btree.BTreeG[entry]
	bytes int // what the entries count, by cost
}

// entry is one key and its value in a Memory store's index, held in one
// string (key then value) so that an entry is one allocation and 24 bytes
// in the index.
type entry struct {
	kv     string
	keyLen int
}

// newEntry returns the entry of key and value in a new string, which
// aliases neither value nor a larger string key may have been cut from.
func newEntry(key string, value []byte) entry {
	if len(value) == 0 {
		// key + "" would be key itself.
		return entry{kv: strings.Clone(key), keyLen: len(key)}
	}
	return entry{kv: key + string(value), keyLen: len(key)}
}

// pivot returns an entry that sorts where key does, for lookups.
func pivot(key string) entry { return entry{kv: key, keyLen: len(key)} }

func (e entry) key() string   { return e.kv[:e.keyLen] }
func (e entry) value() string { return e.kv[e.keyLen:] }

// cost is what the entry counts against MaxBytes.
func (e entry) cost() int { return len(e.kv) + EntryOverhead }

func lessEntry(a, b entry) bool { return a.key() < b.key() }

var _ Store = (*Memory)(nil)

// NewMemory returns an empty Memory store with the quotas opts set, or the
// defaults (DefaultMaxBytes, DefaultMaxKeys).
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{
		maxBytes: DefaultMaxBytes,
		maxKeys:  DefaultMaxKeys,
		index:    btree.NewG(btreeDegree, lessEntry),
	}
	for _, o := range opts {
		if o != nil {
			o.applyMemory(m)
		}
	}
	return m
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
	e, ok := m.index.Get(pivot(key))
	m.mu.RUnlock()
	if !ok {
		return nil, notFound(key)
	}
	return clone(e.value()), nil
}

// Set stores a copy of value under key, replacing any value there; nil is
// stored as an empty value. It returns ctx.Err() when ctx is done, an error
// wrapping ErrInvalidKey for an invalid key, including the empty key, and
// one wrapping ErrQuota when the store would go past MaxKeys or MaxBytes;
// the message then says which limit, how much is used and how to raise it.
func (m *Memory) Set(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidKey(key); err != nil {
		return err
	}
	e := newEntry(key, value)
	m.mu.Lock()
	defer m.mu.Unlock()
	old, exists := m.index.Get(pivot(key))
	grow := e.cost()
	if exists {
		grow -= old.cost()
	} else if m.index.Len() >= m.maxKeys {
		return m.keysQuota()
	}
	if grow > 0 && m.bytes+grow > m.maxBytes {
		return m.bytesQuota(key, grow)
	}
	m.index.ReplaceOrInsert(e)
	m.bytes += grow
	return nil
}

// Delete removes key and reports whether it was there; what the entry
// counted against MaxBytes and MaxKeys is free again. It returns ctx.Err()
// when ctx is done and an error wrapping ErrInvalidKey for an invalid key.
func (m *Memory) Delete(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if err := ValidKey(key); err != nil {
		return false, err
	}
	m.mu.Lock()
	old, ok := m.index.Delete(pivot(key))
	if ok {
		m.bytes -= old.cost()
	}
	m.mu.Unlock()
	return ok, nil
}

// Keys returns, in byte order, at most limit keys that start with prefix and
// sort after startAfter, and whether more match; limit <= 0 means no limit.
// Any prefix and startAfter are accepted. It returns ctx.Err() when ctx is
// done. It walks the index from the first key that can match: O(log n + k)
// under the read lock for n stored keys and k returned.
func (m *Memory) Keys(ctx context.Context, prefix, startAfter string, limit int) ([]string, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	// The keys with prefix are one run of the order, from prefix on. When
	// startAfter is past prefix, the page starts at it instead, less
	// startAfter itself.
	start := prefix
	if startAfter > prefix {
		start = startAfter
	}
	var (
		keys []string
		more bool
	)
	m.mu.RLock()
	m.index.AscendGreaterOrEqual(pivot(start), func(e entry) bool {
		k := e.key()
		switch {
		case !strings.HasPrefix(k, prefix):
			return false // past the run of the prefix
		case k <= startAfter:
			return true
		case limit > 0 && len(keys) == limit:
			more = true
			return false
		}
		// A copy: the key shares its string with the value, which the
		// caller must not keep alive.
		keys = append(keys, strings.Clone(k))
		return true
	})
	m.mu.RUnlock()
	return keys, more, nil
}

// Len returns the number of keys stored, or ctx.Err() when ctx is done.
func (m *Memory) Len(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.index.Len(), nil
}

// Usage is what a Memory store holds, against its quotas.
type Usage struct {
	Bytes    int // the keys' and values' bytes, plus EntryOverhead for each entry
	MaxBytes int // the quota of Bytes (MaxBytes)
	Keys     int // the number of keys
	MaxKeys  int // the quota of Keys (MaxKeys)
}

// Usage returns what the store holds now and its quotas.
func (m *Memory) Usage() Usage {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return Usage{Bytes: m.bytes, MaxBytes: m.maxBytes, Keys: m.index.Len(), MaxKeys: m.maxKeys}
}

// keysQuota is the error of a Set of a new key into a store that holds
// MaxKeys keys. It is called with m.mu held.
func (m *Memory) keysQuota() error {
	return &kvError{sentinel: ErrQuota, msg: fmt.Sprintf(
		"cache is full: the limit is %s and it holds %d; delete keys, or raise the limit "+
			"(kv.MaxKeys, palm --cache-max-keys)", countKeys(m.maxKeys), m.index.Len())}
}

// bytesQuota is the error of a Set of key that would add grow bytes to a
// store without room for them. It is called with m.mu held.
func (m *Memory) bytesQuota(key string, grow int) error {
	return &kvError{sentinel: ErrQuota, msg: fmt.Sprintf(
		"cache is full: storing key %.64q needs %s more, but %s of the limit of %s are in use, by %s; "+
			"delete keys, or raise the limit (kv.MaxBytes, palm --cache-max-bytes)",
		key, size(grow), size(m.bytes), size(m.maxBytes), countKeys(m.index.Len()))}
}

// countKeys writes n keys for a person: "1 key", "3 keys".
func countKeys(n int) string {
	if n == 1 {
		return "1 key"
	}
	return fmt.Sprintf("%d keys", n)
}

// size writes n bytes for a person: "512 bytes", "3.5 MiB (3670016 bytes)".
func size(n int) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d bytes", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB (%d bytes)", float64(n)/(1<<10), n)
	default:
		return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n)
	}
}

// clone returns a copy of s that is never nil.
func clone(s string) []byte {
	return append(make([]byte, 0, len(s)), s...)
}
