package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/kv"
)

func TestCache(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t)
	c := ts.newClient(t)

	if key, err := c.Set(ctx, "k", []byte("v")); err != nil || key != "k" {
		t.Fatalf("Set(k) = %q, %v; want k", key, err)
	}
	if v, err := c.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get(k) = %q, %v; want v", v, err)
	}
	if v, err := ts.store.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("store.Get(k) = %q, %v; want v", v, err)
	}
	if _, err := c.Set(ctx, "empty", nil); err != nil {
		t.Fatalf("Set(empty): %v", err)
	}
	if v, err := c.Get(ctx, "empty"); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("Get(empty) = %#v, %v; want an empty, non-nil value", v, err)
	}
	if deleted, err := c.Delete(ctx, "k"); err != nil || !deleted {
		t.Fatalf("Delete(k) = %v, %v; want true", deleted, err)
	}
	if deleted, err := c.Delete(ctx, "k"); err != nil || deleted {
		t.Fatalf("second Delete(k) = %v, %v; want false", deleted, err)
	}
	_, err := c.Get(ctx, "k")
	if !errors.Is(err, kv.ErrNotFound) || status.Code(err) != codes.NotFound {
		t.Fatalf("Get of a deleted key = %v; want kv.ErrNotFound with code NotFound", err)
	}
}

func TestCacheErrors(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t)
	c := ts.newClient(t, palm.WithMaxMessageSize(100))

	if _, err := c.Get(ctx, ""); !errors.Is(err, kv.ErrInvalidKey) {
		t.Errorf("Get(\"\") = %v; want kv.ErrInvalidKey", err)
	}
	if _, err := c.Delete(ctx, ""); !errors.Is(err, kv.ErrInvalidKey) {
		t.Errorf("Delete(\"\") = %v; want kv.ErrInvalidKey", err)
	}
	if _, err := c.Get(ctx, strings.Repeat("k", kv.MaxKeyLen+1)); !errors.Is(err, kv.ErrInvalidKey) {
		t.Errorf("Get(overlong key) = %v; want kv.ErrInvalidKey", err)
	}
	if _, err := c.Set(ctx, "\xff", nil); !errors.Is(err, kv.ErrInvalidKey) || status.Code(err) != codes.InvalidArgument {
		t.Errorf("Set(non-UTF-8 key) = %v; want kv.ErrInvalidKey with InvalidArgument", err)
	}
	_, err := c.Set(ctx, "big", make([]byte, 101))
	if !errors.Is(err, kv.ErrTooLarge) || status.Code(err) != codes.ResourceExhausted {
		t.Errorf("Set(101 bytes) = %v; want kv.ErrTooLarge with ResourceExhausted", err)
	}
	if n, _ := ts.store.Len(ctx); n != 0 {
		t.Errorf("the store holds %d keys; want none", n)
	}
}

// TestCacheQuota checks that a Set past the server cache's quota comes back
// as kv.ErrQuota, not kv.ErrTooLarge, with ResourceExhausted and the
// server's message.
func TestCacheQuota(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t, kv.MaxKeys(1))
	c := ts.newClient(t)
	if _, err := c.Set(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	_, err := c.Set(ctx, "b", []byte("2"))
	if !errors.Is(err, kv.ErrQuota) || errors.Is(err, kv.ErrTooLarge) || status.Code(err) != codes.ResourceExhausted ||
		!strings.Contains(err.Error(), "the limit is 1 key") {
		t.Errorf("Set past the quota = %v; want kv.ErrQuota (only) with ResourceExhausted naming the limit", err)
	}
}

func TestSetEmptyKey(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t)
	c := ts.newClient(t)
	key, err := c.Set(ctx, "", []byte("chosen"))
	if err != nil || key == "" {
		t.Fatalf("Set(\"\") = %q, %v; want a new key", key, err)
	}
	if v, err := ts.store.Get(ctx, key); err != nil || string(v) != "chosen" {
		t.Fatalf("store.Get(%q) = %q, %v; want chosen", key, v, err)
	}
	if v, err := c.Get(ctx, key); err != nil || string(v) != "chosen" {
		t.Fatalf("Get(%q) = %q, %v; want chosen", key, v, err)
	}
}

func TestSession(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t)
	c := ts.newClient(t, Session("s1"))
	other := ts.newClient(t, Session("s2"))

	if key, err := c.Set(ctx, "k", []byte("v1")); err != nil || key != "k" {
		t.Fatalf("Set(k) = %q, %v; want k", key, err)
	}
	if _, err := other.Set(ctx, "k", []byte("v2")); err != nil {
		t.Fatalf("other.Set(k): %v", err)
	}
	if v, err := ts.store.Get(ctx, "s1.k"); err != nil || string(v) != "v1" {
		t.Fatalf("store.Get(s1.k) = %q, %v; want v1", v, err)
	}
	if v, err := c.Get(ctx, "k"); err != nil || string(v) != "v1" {
		t.Fatalf("Get(k) = %q, %v; want v1 (the session's own)", v, err)
	}

	key, err := c.Set(ctx, "", []byte("chosen"))
	if err != nil || key == "" || strings.HasPrefix(key, "s1.") {
		t.Fatalf("Set(\"\") = %q, %v; want a new key without the session prefix", key, err)
	}
	if v, err := ts.store.Get(ctx, "s1."+key); err != nil || string(v) != "chosen" {
		t.Fatalf("store.Get(s1.%s) = %q, %v; want chosen", key, v, err)
	}
	if v, err := c.Get(ctx, key); err != nil || string(v) != "chosen" {
		t.Fatalf("Get(%q) = %q, %v; want chosen", key, v, err)
	}

	if deleted, err := c.Delete(ctx, "k"); err != nil || !deleted {
		t.Fatalf("Delete(k) = %v, %v; want true", deleted, err)
	}
	if _, err := ts.store.Get(ctx, "s1.k"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("store.Get(s1.k) after Delete = %v; want not found", err)
	}
	if _, err := ts.store.Get(ctx, "s2.k"); err != nil {
		t.Fatalf("store.Get(s2.k) = %v; the other session's key must stay", err)
	}
	_, err = c.Get(ctx, "k")
	if !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("Get(k) after Delete = %v; want kv.ErrNotFound", err)
	}
}

func TestKeysPaging(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t)
	c := ts.newClient(t, Session("s"))
	const n = 2500
	var want []string
	for i := range n {
		key := fmt.Sprintf("k%04d", i)
		want = append(want, key)
		if err := ts.store.Set(ctx, "s."+key, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Keys outside the session, around it in byte order.
	for _, k := range []string{"r.k", "s", "s-k", "s2.k", "t.k", "k0001"} {
		if err := ts.store.Set(ctx, k, nil); err != nil {
			t.Fatal(err)
		}
	}

	var got []string
	for k, err := range c.Keys(ctx, "") {
		if err != nil {
			t.Fatalf("Keys: %v", err)
		}
		got = append(got, k)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Keys gave %d keys (first %q); want the session's %d keys in order", len(got), got[:min(3, len(got))], n)
	}

	got = got[:0]
	for k, err := range c.Keys(ctx, "k1") {
		if err != nil {
			t.Fatalf("Keys(k1): %v", err)
		}
		got = append(got, k)
	}
	if len(got) != 1000 || got[0] != "k1000" || got[999] != "k1999" {
		t.Fatalf("Keys(k1) gave %d keys; want k1000 to k1999", len(got))
	}

	n2 := 0
	for range c.Keys(ctx, "") {
		if n2++; n2 == 1500 {
			break
		}
	}

	all := ts.newClient(t)
	count := 0
	for _, err := range all.Keys(ctx, "") {
		if err != nil {
			t.Fatalf("Keys without session: %v", err)
		}
		count++
	}
	if count != n+6 {
		t.Errorf("Keys without a session gave %d keys; want %d", count, n+6)
	}
}

func TestKeysError(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	n := 0
	for k, err := range c.Keys(context.Background(), "\xff") {
		n++
		if k != "" || status.Code(err) != codes.InvalidArgument {
			t.Errorf("Keys(invalid prefix) yielded %q, %v; want an InvalidArgument error", k, err)
		}
	}
	if n != 1 {
		t.Errorf("Keys(invalid prefix) yielded %d times; want once", n)
	}
}
