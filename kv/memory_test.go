package kv_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
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

// TestMemoryManyKeys stores 200,000 small entries, checks that the store
// counts at least the heap they take and stays within its byte quota, that
// a page of keys costs its own size and not the store's, and that pages are
// right while writers fill the store to its quota and free it again.
func TestMemoryManyKeys(t *testing.T) {
	ctx := t.Context()
	const n = 200_000
	const room = 1 << 20 // for the writers, beyond the n entries
	perEntry := len(fmt.Sprintf("key-%012d", 0)) + 16 + kv.EntryOverhead
	before := heapInUse()
	m := kv.NewMemory(kv.MaxKeys(n+10_000), kv.MaxBytes(n*perEntry+room))
	fill(t, m, n)
	heap := heapInUse() - before
	u := m.Usage()
	t.Logf("%d entries of 16-byte keys and values: %.1f MiB of heap (%d bytes an entry); the store counts %.1f MiB",
		n, float64(heap)/(1<<20), heap/n, float64(u.Bytes)/(1<<20))
	if u.Keys != n || u.Bytes != n*perEntry {
		t.Fatalf("Usage() = %+v; want %d keys and %d bytes", u, n, n*perEntry)
	}
	if heap > u.Bytes {
		t.Errorf("the entries take %d bytes of heap, more than the %d the store counts: EntryOverhead is too small", heap, u.Bytes)
	}

	// A page of 10 keys from the middle allocates for 10 keys, not for
	// the 100,000 that follow: it does not walk the store.
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	const pages = 100
	for range pages {
		keys, more, err := m.Keys(ctx, "key-", "key-000000100000", 10)
		if err != nil || len(keys) != 10 || !more || keys[0] != "key-000000100001" {
			t.Fatalf("Keys(after key-000000100000, 10) = %q, %v, %v", keys, more, err)
		}
	}
	runtime.ReadMemStats(&ms1)
	if per := (ms1.TotalAlloc - ms0.TotalAlloc) / pages; per > 4<<10 {
		t.Errorf("a page of 10 keys allocated %d bytes; want under 4 KiB (it looks at the whole store)", per)
	}

	// Writers fill the room, meet the quota, delete and go on; meanwhile
	// pages over the n fixed keys stay exact, and pages over everything
	// stay sorted.
	var wg sync.WaitGroup
	done := make(chan struct{})
	var refused [2]int
	for w := range 2 {
		wg.Go(func() {
			const own = 5000
			for i := range 4 * own {
				key := fmt.Sprintf("w%d/%04d", w, i%own)
				err := m.Set(ctx, key, make([]byte, (i*7)%200))
				if errors.Is(err, kv.ErrQuota) {
					refused[w]++
					_, err = m.Delete(ctx, fmt.Sprintf("w%d/%04d", w, (i+own/2)%own))
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	passes := 0
	for running := true; running && passes < 20; passes++ {
		select {
		case <-done:
			running = false
		default:
		}
		checkPages(t, m, "key-", n)
		checkPages(t, m, "", -1)
	}
	<-done
	t.Logf("%d passes of paging while writers ran; writers refused %v times", passes, refused)
	if refused[0]+refused[1] == 0 {
		t.Errorf("the writers never met the quota")
	}

	// What the store counts is what it holds, and within its quota.
	u = m.Usage()
	all, _, err := m.Keys(ctx, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, k := range all {
		v, err := m.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		total += len(k) + len(v) + kv.EntryOverhead
	}
	if u.Keys != len(all) || u.Bytes != total || u.Bytes > u.MaxBytes {
		t.Errorf("Usage() = %+v; the store holds %d keys counting %d bytes, within %d", u, len(all), total, u.MaxBytes)
	}
}

// checkPages reads every key with prefix from m in pages of 1000 and checks
// each page is sorted, after the last key of the page before, and no longer
// than 1000; want >= 0 also checks the keys are exactly fill's first want.
func checkPages(t *testing.T, m *kv.Memory, prefix string, want int) {
	t.Helper()
	after, count := "", 0
	for page := 0; ; page++ {
		if page > 1000 {
			t.Fatalf("paging %q did not end", prefix)
		}
		keys, more, err := m.Keys(t.Context(), prefix, after, 1000)
		if err != nil || len(keys) > 1000 || (more && len(keys) == 0) {
			t.Fatalf("Keys(%q, after %q) = %d keys, %v, %v", prefix, after, len(keys), more, err)
		}
		for _, k := range keys {
			if k <= after || !strings.HasPrefix(k, prefix) {
				t.Fatalf("Keys(%q) gave %q after %q", prefix, k, after)
			}
			if want >= 0 && k != fmt.Sprintf("key-%012d", count) {
				t.Fatalf("Keys(%q) gave %q as key %d", prefix, k, count)
			}
			after = k
			count++
		}
		if !more {
			break
		}
	}
	if want >= 0 && count != want {
		t.Fatalf("pages of %q gave %d keys; want %d", prefix, count, want)
	}
}

// TestMemoryCopiesKeys checks that the store keeps a copy of each key, with
// an empty value or not, so that a key cut from a large string does not keep
// that string alive beyond what the store counts.
func TestMemoryCopiesKeys(t *testing.T) {
	for _, v := range [][]byte{nil, []byte("v")} {
		m := kv.NewMemory()
		before := heapInUse()
		for i := range 32 {
			big := fmt.Sprintf("%08d", i) + strings.Repeat("x", 1<<20)
			if err := m.Set(t.Context(), big[:8], v); err != nil {
				t.Fatal(err)
			}
		}
		if grew := heapInUse() - before; grew > 4<<20 {
			t.Errorf("value %q: 32 keys of 8 bytes keep %d bytes of heap alive; want the keys copied", v, grew)
		}
		runtime.KeepAlive(m)
	}
}
