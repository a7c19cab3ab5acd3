// Package kvtest holds the contract suite every kv.Store implementation must
// pass, and the quota contract every Store with limits must pass too. Run
// them from a test of the implementation's package:
//
//	func TestMemory(t *testing.T) {
//		kvtest.Run(t, func(t *testing.T) kv.Store { return kv.NewMemory() })
//		kvtest.RunLimits(t, func(t *testing.T, l kvtest.Limits) kv.Store {
//			return kv.NewMemory(kv.MaxBytes(l.MaxBytes), kv.MaxKeys(l.MaxKeys))
//		})
//	}
package kvtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gopalm/palm/kv"
)

// Run runs the Store contract as subtests of t. newStore is called once per
// subtest and must return a new, empty Store; it may register clean-up with
// t.Cleanup. Subtests run one after another, but the concurrency subtest
// calls the store from many goroutines: run it under -race.
func Run(t *testing.T, newStore func(t *testing.T) kv.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s kv.Store)
	}{
		{"MissingKeyIsNotFound", testMissing},
		{"EmptyValueIsNotMissing", testEmptyValue},
		{"Overwrite", testOverwrite},
		{"ValueCopiedOnSet", testCopyOnSet},
		{"ValueCopiedOnGet", testCopyOnGet},
		{"Delete", testDelete},
		{"InvalidKeys", testInvalidKeys},
		{"LongestKey", testLongestKey},
		{"UnicodeKeys", testUnicode},
		{"KeysByPrefixSorted", testKeysPrefix},
		{"KeysPaging", testKeysPaging},
		{"Len", testLen},
		{"Concurrent", testConcurrent},
		{"CancelledContext", testCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

func set(t *testing.T, s kv.Store, key string, value []byte) {
	t.Helper()
	if err := s.Set(t.Context(), key, value); err != nil {
		t.Fatalf("Set(%q): %v", key, err)
	}
}

func get(t *testing.T, s kv.Store, key string) []byte {
	t.Helper()
	v, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

func testMissing(t *testing.T, s kv.Store) {
	v, err := s.Get(t.Context(), "missing")
	if !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get(missing) = %q, %v; want an error wrapping kv.ErrNotFound", v, err)
	}
	if !strings.Contains(err.Error(), "missing") {
		t.Errorf("Get(missing) error %q does not name the key", err)
	}
}

func testEmptyValue(t *testing.T, s kv.Store) {
	set(t, s, "empty", []byte{})
	set(t, s, "nil", nil)
	for _, key := range []string{"empty", "nil"} {
		v := get(t, s, key)
		if v == nil || len(v) != 0 {
			t.Errorf("Get(%q) = %#v; want a non-nil empty slice", key, v)
		}
	}
	if _, err := s.Get(t.Context(), "other"); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("Get(other) error = %v; want kv.ErrNotFound", err)
	}
}

func testOverwrite(t *testing.T, s kv.Store) {
	set(t, s, "k", []byte("one"))
	set(t, s, "k", []byte("two"))
	if v := get(t, s, "k"); string(v) != "two" {
		t.Errorf("Get after overwrite = %q; want %q", v, "two")
	}
	set(t, s, "k", []byte{})
	if v := get(t, s, "k"); v == nil || len(v) != 0 {
		t.Errorf("Get after overwrite with empty = %#v; want empty", v)
	}
}

func testCopyOnSet(t *testing.T, s kv.Store) {
	buf := []byte("abc")
	set(t, s, "k", buf)
	copy(buf, "xyz")
	if v := get(t, s, "k"); string(v) != "abc" {
		t.Errorf("Get after the caller changed its slice = %q; want %q", v, "abc")
	}
}

func testCopyOnGet(t *testing.T, s kv.Store) {
	set(t, s, "k", []byte("abc"))
	v := get(t, s, "k")
	copy(v, "xyz")
	_ = append(v[:1], 'Q') // in case v has spare capacity
	if v := get(t, s, "k"); string(v) != "abc" {
		t.Errorf("Get after the caller changed a returned slice = %q; want %q", v, "abc")
	}
}

func testDelete(t *testing.T, s kv.Store) {
	ctx := t.Context()
	set(t, s, "k", []byte("v"))
	if ok, err := s.Delete(ctx, "k"); err != nil || !ok {
		t.Errorf("Delete(existing) = %v, %v; want true, nil", ok, err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("Get after Delete error = %v; want kv.ErrNotFound", err)
	}
	if ok, err := s.Delete(ctx, "k"); err != nil || ok {
		t.Errorf("Delete(deleted) = %v, %v; want false, nil", ok, err)
	}
	if ok, err := s.Delete(ctx, "never"); err != nil || ok {
		t.Errorf("Delete(missing) = %v, %v; want false, nil", ok, err)
	}
}

func testInvalidKeys(t *testing.T, s kv.Store) {
	ctx := t.Context()
	bad := map[string]string{
		"empty":    "",
		"too long": strings.Repeat("x", kv.MaxKeyLen+1),
		"not UTF8": "bad\xff",
	}
	for name, key := range bad {
		if err := s.Set(ctx, key, []byte("v")); !errors.Is(err, kv.ErrInvalidKey) {
			t.Errorf("Set(%s key) error = %v; want kv.ErrInvalidKey", name, err)
		}
		if _, err := s.Get(ctx, key); !errors.Is(err, kv.ErrInvalidKey) {
			t.Errorf("Get(%s key) error = %v; want kv.ErrInvalidKey", name, err)
		}
		if _, err := s.Delete(ctx, key); !errors.Is(err, kv.ErrInvalidKey) {
			t.Errorf("Delete(%s key) error = %v; want kv.ErrInvalidKey", name, err)
		}
	}
	if n, err := s.Len(ctx); err != nil || n != 0 {
		t.Errorf("Len after invalid Sets = %d, %v; want 0, nil", n, err)
	}
}

func testLongestKey(t *testing.T, s kv.Store) {
	key := strings.Repeat("é", kv.MaxKeyLen/2) // 2 bytes each
	set(t, s, key, []byte("v"))
	if v := get(t, s, key); string(v) != "v" {
		t.Errorf("Get(longest key) = %q; want %q", v, "v")
	}
}

func testUnicode(t *testing.T, s kv.Store) {
	keys := []string{"日本語", "ключ", "emoji 🎉", "e\u0301", "é", "tab\tnew\nline", "nul\x00byte"}
	for i, k := range keys {
		set(t, s, k, []byte(fmt.Sprint(i)))
	}
	for i, k := range keys {
		if v := get(t, s, k); string(v) != fmt.Sprint(i) {
			t.Errorf("Get(%q) = %q; want %q", k, v, fmt.Sprint(i))
		}
	}
	got, more, err := s.Keys(t.Context(), "", "", 0)
	want := slices.Sorted(slices.Values(keys))
	if err != nil || more || !slices.Equal(got, want) {
		t.Errorf("Keys() = %q, %v, %v; want %q, false, nil", got, more, err, want)
	}
	got, _, err = s.Keys(t.Context(), "日本", "", 0)
	if err != nil || !slices.Equal(got, []string{"日本語"}) {
		t.Errorf("Keys(prefix 日本) = %q, %v; want [日本語]", got, err)
	}
}

func testKeysPrefix(t *testing.T, s kv.Store) {
	ctx := t.Context()
	for _, k := range []string{"b/2", "a/1", "b/10", "B/1", "b", "c", "b/1", "b/é", "b/Z"} {
		set(t, s, k, nil)
	}
	tests := []struct {
		prefix, after string
		limit         int
		want          []string
		more          bool
	}{
		{"b/", "", 0, []string{"b/1", "b/10", "b/2", "b/Z", "b/é"}, false},
		{"b", "", 0, []string{"b", "b/1", "b/10", "b/2", "b/Z", "b/é"}, false},
		{"", "", 0, []string{"B/1", "a/1", "b", "b/1", "b/10", "b/2", "b/Z", "b/é", "c"}, false},
		{"b/", "b/10", 0, []string{"b/2", "b/Z", "b/é"}, false},
		{"b/", "b/1", 2, []string{"b/10", "b/2"}, true},
		{"b/", "b/10", 3, []string{"b/2", "b/Z", "b/é"}, false},
		{"b/", "b/0", 0, []string{"b/1", "b/10", "b/2", "b/Z", "b/é"}, false},
		{"b/", "a", 1, []string{"b/1"}, true},
		{"b/", "z", 0, nil, false},
		{"d", "", 0, nil, false},
		{"", "c", 5, nil, false},
	}
	for _, tt := range tests {
		got, more, err := s.Keys(ctx, tt.prefix, tt.after, tt.limit)
		if err != nil || more != tt.more || !slices.Equal(got, tt.want) {
			t.Errorf("Keys(%q, %q, %d) = %q, %v, %v; want %q, %v, nil",
				tt.prefix, tt.after, tt.limit, got, more, err, tt.want, tt.more)
		}
	}
}

func testKeysPaging(t *testing.T, s kv.Store) {
	ctx := t.Context()
	var want []string
	for i := range 25 {
		k := fmt.Sprintf("p/%03d", i)
		want = append(want, k)
		set(t, s, k, []byte(k))
	}
	set(t, s, "other", nil)
	for _, limit := range []int{1, 2, 5, 7, 25, 26, 100} {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			if pages > len(want) {
				t.Fatalf("limit %d: paging did not end", limit)
			}
			keys, more, err := s.Keys(ctx, "p/", after, limit)
			if err != nil {
				t.Fatalf("limit %d: Keys(after %q): %v", limit, after, err)
			}
			if len(keys) > limit {
				t.Fatalf("limit %d: Keys returned %d keys", limit, len(keys))
			}
			got = append(got, keys...)
			if !more {
				break
			}
			if len(keys) == 0 {
				t.Fatalf("limit %d: Keys returned no keys and more=true", limit)
			}
			after = keys[len(keys)-1]
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: pages gave %q; want %q", limit, got, want)
		}
	}
}

func testLen(t *testing.T, s kv.Store) {
	ctx := t.Context()
	check := func(want int) {
		t.Helper()
		if n, err := s.Len(ctx); err != nil || n != want {
			t.Errorf("Len() = %d, %v; want %d, nil", n, err, want)
		}
	}
	check(0)
	set(t, s, "a", nil)
	set(t, s, "b", []byte("x"))
	set(t, s, "a", []byte("y"))
	check(2)
	if _, err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	check(1)
}

func testConcurrent(t *testing.T, s kv.Store) {
	ctx := t.Context()
	const workers, rounds = 16, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			shared := fmt.Sprintf("shared/%d", w%4)
			own := fmt.Sprintf("own/%02d", w)
			for i := range rounds {
				want := fmt.Appendf(nil, "%d-%d", w, i)
				if err := s.Set(ctx, own, want); err != nil {
					t.Errorf("Set(%q): %v", own, err)
					return
				}
				if v, err := s.Get(ctx, own); err != nil || string(v) != string(want) {
					t.Errorf("Get(%q) = %q, %v; want %q", own, v, err, want)
					return
				}
				if err := s.Set(ctx, shared, want); err != nil {
					t.Errorf("Set(%q): %v", shared, err)
					return
				}
				if _, err := s.Get(ctx, shared); err != nil && !errors.Is(err, kv.ErrNotFound) {
					t.Errorf("Get(%q): %v", shared, err)
					return
				}
				if _, err := s.Delete(ctx, shared); err != nil {
					t.Errorf("Delete(%q): %v", shared, err)
					return
				}
				if _, _, err := s.Keys(ctx, "own/", "", 5); err != nil {
					t.Errorf("Keys: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	keys, _, err := s.Keys(ctx, "own/", "", 0)
	if err != nil || len(keys) != workers {
		t.Errorf("Keys(own/) after the run = %d keys, %v; want %d", len(keys), err, workers)
	}
	for w := range workers {
		key := fmt.Sprintf("own/%02d", w)
		if v, err := s.Get(ctx, key); err != nil || string(v) != fmt.Sprintf("%d-%d", w, rounds-1) {
			t.Errorf("Get(%q) after the run = %q, %v; want %q", key, v, err, fmt.Sprintf("%d-%d", w, rounds-1))
		}
	}
}

func testCancelled(t *testing.T, s kv.Store) {
	set(t, s, "k", []byte("v"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: error = %v; want context.Canceled", op, err)
		}
	}
	_, err := s.Get(ctx, "k")
	check("Get", err)
	check("Set", s.Set(ctx, "k", []byte("w")))
	_, err = s.Delete(ctx, "k")
	check("Delete", err)
	_, _, err = s.Keys(ctx, "", "", 0)
	check("Keys", err)
	_, err = s.Len(ctx)
	check("Len", err)
	if v := get(t, s, "k"); string(v) != "v" {
		t.Errorf("Get after cancelled Set and Delete = %q; want %q", v, "v")
	}
}
