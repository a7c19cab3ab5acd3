package test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/kv"
)

// A client that fills a server's cache with the largest values is stopped
// at the cache's default quota (64 MiB): the server's heap holds what the
// quota allows and no more, the client sees ResourceExhausted matching
// kv.ErrQuota and naming the limit, and deleting makes room again. (Case 4
// of the review: 100 values of 4 MiB used to be accepted.)
func TestHostileCacheQuota(t *testing.T) {
	l, srv := hostileServer(t)
	ctx := hostileContext(t)
	c, err := client.New("my_server", palmtest.Target, l.Option())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	live := func() int {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int(ms.HeapAlloc)
	}
	before := live()
	value := make([]byte, 4<<20) // the largest value, at the default message size limit
	const tries = 32             // 128 MiB offered
	stored, refused := 0, 0
	for i := range tries {
		_, err := c.Set(ctx, fmt.Sprintf("big/%02d", i), value)
		switch {
		case err == nil && refused == 0:
			stored++
		case errors.Is(err, kv.ErrQuota) && !errors.Is(err, kv.ErrTooLarge) && status.Code(err) == codes.ResourceExhausted:
			refused++
			if refused == 1 && (!strings.Contains(err.Error(), "limit of 64.0 MiB") || !strings.Contains(err.Error(), "--cache-max-bytes")) {
				t.Errorf("the first refusal says %q; want the limit and how to raise it", err)
			}
		default:
			t.Fatalf("Set %d, after %d stored and %d refused: %v; want nil, then kv.ErrQuota with ResourceExhausted", i, stored, refused, err)
		}
	}
	grew := live() - before
	perValue := len(value) + len("big/00") + kv.EntryOverhead
	t.Logf("%d values stored, %d refused; the heap grew by %.1f MiB", stored, refused, float64(grew)/(1<<20))
	if want := kv.DefaultMaxBytes / perValue; stored != want {
		t.Errorf("%d values of 4 MiB stored; want %d, what 64 MiB holds", stored, want)
	}
	if u := srv.Cache().(*kv.Memory).Usage(); u.Bytes > u.MaxBytes || u.MaxBytes != kv.DefaultMaxBytes {
		t.Errorf("cache usage %+v; want within the default quota", u)
	}
	if grew > 96<<20 {
		t.Errorf("the heap grew by %.1f MiB for a cache bounded at 64 MiB", float64(grew)/(1<<20))
	}

	// Deleting one value makes room for one.
	if ok, err := c.Delete(ctx, "big/00"); err != nil || !ok {
		t.Fatalf("Delete: %v, %v", ok, err)
	}
	if _, err := c.Set(ctx, "big/again", value); err != nil {
		t.Errorf("Set after a Delete: %v", err)
	}
	stillServes(t, ctx, l, "my_server")
}
