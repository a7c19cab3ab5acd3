package kv_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/kv/kvtest"
)

func TestMemoryContract(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store { return kv.NewMemory() })
}

func TestMemoryLimitsContract(t *testing.T) {
	kvtest.RunLimits(t, func(t *testing.T, l kvtest.Limits) kv.Store {
		return kv.NewMemory(kv.MaxBytes(l.MaxBytes), kv.MaxKeys(l.MaxKeys))
	})
}

func TestValidKey(t *testing.T) {
	tests := []struct {
		key  string
		want string // "" for valid
	}{
		{"k", ""},
		{"日本語", ""},
		{strings.Repeat("x", kv.MaxKeyLen), ""},
		{"", "key is empty"},
		{strings.Repeat("x", 5000), "key is 5000 bytes; the limit is 4096 bytes"},
		{"a\xffb", `key "a\xffb" is not valid UTF-8`},
	}
	for _, tt := range tests {
		err := kv.ValidKey(tt.key)
		if tt.want == "" {
			if err != nil {
				t.Errorf("ValidKey(%.20q) = %v; want nil", tt.key, err)
			}
			continue
		}
		if !errors.Is(err, kv.ErrInvalidKey) || err.Error() != tt.want {
			t.Errorf("ValidKey(%.20q) = %v; want %q wrapping kv.ErrInvalidKey", tt.key, err, tt.want)
		}
	}
}

func TestNewKey(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		k := kv.NewKey()
		if err := kv.ValidKey(k); err != nil {
			t.Fatalf("NewKey() = %q: %v", k, err)
		}
		if len(k) < 26 || strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
			t.Fatalf("NewKey() = %q; want at least 26 base32 characters", k)
		}
		if seen[k] {
			t.Fatalf("NewKey() returned %q twice", k)
		}
		seen[k] = true
	}
}

func TestMemoryNotFoundMessage(t *testing.T) {
	_, err := kv.NewMemory().Get(t.Context(), "abc")
	if got, want := err.Error(), `key "abc" not found`; got != want {
		t.Errorf("Get(abc) error = %q; want %q", got, want)
	}
}

// heapInUse returns the bytes of live heap objects after a full collection.
func heapInUse() int {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int(ms.HeapAlloc)
}

// fill stores n entries of 16-byte keys and 16-byte values in m.
func fill(tb testing.TB, m *kv.Memory, n int) {
	tb.Helper()
	value := make([]byte, 16)
	for i := range n {
		if err := m.Set(tb.Context(), fmt.Sprintf("key-%012d", i), value); err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkMemoryHeap measures the heap 200,000 entries of 16-byte keys and
// values take, against what the store counts for them (EntryOverhead is
// chosen from it).
func BenchmarkMemoryHeap(b *testing.B) {
	const n = 200_000
	for b.Loop() {
		before := heapInUse()
		m := kv.NewMemory(kv.MaxKeys(n))
		fill(b, m, n)
		heap := heapInUse() - before
		b.ReportMetric(float64(heap)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(heap)/n, "heap-B/key")
		b.ReportMetric(float64(m.Usage().Bytes)/n, "counted-B/key")
		runtime.KeepAlive(m)
	}
}

// BenchmarkKeysPage measures a page of 1000 keys from the middle of a store
// of 200,000: the time writers wait for it.
func BenchmarkKeysPage(b *testing.B) {
	const n = 200_000
	m := kv.NewMemory(kv.MaxKeys(n))
	fill(b, m, n)
	ctx := b.Context()
	for b.Loop() {
		keys, more, err := m.Keys(ctx, "", "key-000000100000", 1000)
		if err != nil || len(keys) != 1000 || !more {
			b.Fatalf("Keys = %d keys, %v, %v", len(keys), more, err)
		}
	}
}
