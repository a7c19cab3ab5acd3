package kvtest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gopalm/palm/kv"
)

// Limits are the quotas RunLimits asks of a Store: at most MaxBytes bytes,
// counted as each entry's key and value plus the Store's own per-entry
// overhead (kv.EntryOverhead for kv.Memory), and at most MaxKeys keys.
type Limits struct {
	MaxBytes int
	MaxKeys  int
}

// RunLimits runs the quota contract as subtests of t, for a Store that
// limits what it holds. newStore is called once per subtest and must return
// a new, empty Store with the given limits. The contract: a Set past a
// limit fails with an error wrapping kv.ErrQuota (and not kv.ErrTooLarge)
// whose message names the limit, and changes nothing; replacing a value
// counts only the difference in size; deleting a key frees what it held;
// the limits hold under concurrent writers. It expects a Store's per-entry
// overhead to be under 1 KiB.
func RunLimits(t *testing.T, newStore func(t *testing.T, l Limits) kv.Store) {
	t.Helper()
	tests := []struct {
		name   string
		limits Limits
		fn     func(t *testing.T, s kv.Store, l Limits)
	}{
		{"KeysQuota", Limits{MaxBytes: 1 << 20, MaxKeys: 3}, testKeysQuota},
		{"BytesQuota", Limits{MaxBytes: 64 << 10, MaxKeys: 1 << 20}, testBytesQuota},
		{"ValueOverWholeQuota", Limits{MaxBytes: 16 << 10, MaxKeys: 10}, testValueOverQuota},
		{"ConcurrentQuota", Limits{MaxBytes: 1 << 20, MaxKeys: 50}, testConcurrentQuota},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t, tt.limits), tt.limits)
		})
	}
}

// wantQuota fails t unless err wraps kv.ErrQuota (and not kv.ErrTooLarge)
// with a message that holds each of words.
func wantQuota(t *testing.T, op string, err error, words ...string) {
	t.Helper()
	if !errors.Is(err, kv.ErrQuota) || errors.Is(err, kv.ErrTooLarge) {
		t.Fatalf("%s: error = %v; want one wrapping kv.ErrQuota (and not kv.ErrTooLarge)", op, err)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not say %q", op, err, w)
		}
	}
}

func wantLen(t *testing.T, s kv.Store, want int) {
	t.Helper()
	if n, err := s.Len(t.Context()); err != nil || n != want {
		t.Fatalf("Len() = %d, %v; want %d, nil", n, err, want)
	}
}

func testKeysQuota(t *testing.T, s kv.Store, l Limits) {
	ctx := t.Context()
	for _, k := range []string{"a", "b", "c"} {
		set(t, s, k, []byte(k))
	}
	wantQuota(t, "Set(d) into a full store", s.Set(ctx, "d", []byte("d")), fmt.Sprint(l.MaxKeys))
	if _, err := s.Get(ctx, "d"); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("Get(d) after a refused Set: error = %v; want kv.ErrNotFound", err)
	}
	wantLen(t, s, 3)
	// Replacing a value adds no key.
	set(t, s, "a", []byte("a2"))
	if v := get(t, s, "a"); string(v) != "a2" {
		t.Errorf("Get(a) after a replacing Set in a full store = %q; want a2", v)
	}
	// Deleting frees a key's place, once.
	if ok, err := s.Delete(ctx, "b"); err != nil || !ok {
		t.Fatalf("Delete(b) = %v, %v", ok, err)
	}
	set(t, s, "d", []byte("d"))
	wantQuota(t, "Set(e) into a full store", s.Set(ctx, "e", nil))
	wantLen(t, s, 3)
}

func testBytesQuota(t *testing.T, s kv.Store, l Limits) {
	ctx := t.Context()
	const size = 1 << 10
	value := func(b byte) []byte { return []byte(strings.Repeat(string(b), size)) }
	key := func(i int) string { return fmt.Sprintf("k%03d", i) }
	n := 0
	for ; ; n++ {
		if n > l.MaxBytes/size {
			t.Fatalf("%d values of %d bytes were accepted under a quota of %d bytes", n, size, l.MaxBytes)
		}
		err := s.Set(ctx, key(n), value('a'))
		if err != nil {
			wantQuota(t, fmt.Sprintf("Set(%s) into a full store", key(n)), err, fmt.Sprint(l.MaxBytes))
			break
		}
	}
	if n < l.MaxBytes/(2*size) {
		t.Fatalf("only %d values of %d bytes fit in %d bytes: each entry counts over 1 KiB more than its key and value", n, size, l.MaxBytes)
	}
	if _, err := s.Get(ctx, key(n)); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("Get(%s) after a refused Set: error = %v; want kv.ErrNotFound", key(n), err)
	}
	wantLen(t, s, n)

	// A value of the same size replaces the old one in a full store: only
	// the difference counts.
	set(t, s, key(0), value('b'))
	// A larger one does not fit, and the old value stays.
	wantQuota(t, "Set(k000, 4 KiB) into a full store", s.Set(ctx, key(0), make([]byte, 4*size)))
	if v := get(t, s, key(0)); string(v) != string(value('b')) {
		t.Errorf("Get(k000) after a refused replacing Set = %d bytes %.1q…; want the value before", len(v), v)
	}
	// Shrinking a value frees the difference: it can grow back.
	set(t, s, key(1), nil)
	set(t, s, key(1), value('c'))
	// Deleting frees the entry: another of the same size fits, and no more.
	if ok, err := s.Delete(ctx, key(2)); err != nil || !ok {
		t.Fatalf("Delete(%s) = %v, %v", key(2), ok, err)
	}
	set(t, s, key(n), value('d'))
	wantQuota(t, "Set after the freed room was taken", s.Set(ctx, key(n+1), value('e')))
	wantLen(t, s, n)
}

func testValueOverQuota(t *testing.T, s kv.Store, l Limits) {
	wantQuota(t, "Set(a value the size of the whole quota)", s.Set(t.Context(), "big", make([]byte, l.MaxBytes)))
	wantLen(t, s, 0)
	set(t, s, "small", []byte("fits"))
}

func testConcurrentQuota(t *testing.T, s kv.Store, l Limits) {
	ctx := t.Context()
	const writers, each = 8, 20 // 160 keys tried for 50 places
	var stored atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				key := fmt.Sprintf("w%d/%02d", w, i)
				err := s.Set(ctx, key, []byte(key))
				switch {
				case err == nil:
					stored.Add(1)
				case !errors.Is(err, kv.ErrQuota):
					t.Errorf("Set(%s): %v; want nil or kv.ErrQuota", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := stored.Load(); got != int64(l.MaxKeys) {
		t.Errorf("%d of %d concurrent Sets of new keys succeeded; want exactly MaxKeys, %d", got, writers*each, l.MaxKeys)
	}
	wantLen(t, s, l.MaxKeys)
}
