package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gopalm/palm/internal/palmtest"
)

// runComponent runs `palm args...` in process until the test ends, and
// waits until its cache answers at addr.
func runComponent(t *testing.T, addr string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr palmtest.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, strings.NewReader(""), io.Discard, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("palm %q did not stop:\n%s", args, stderr.String())
		}
	})
	exited := -1
	palmtest.Eventually(t, 20*time.Second, fmt.Sprintf("palm %q does not answer at %s", args, addr), func() bool {
		select {
		case exited = <-done:
			return true
		default:
		}
		return run(t.Context(), []string{"kv", "--address", addr, "--timeout=1s", "keys", "ready-check"},
			strings.NewReader(""), io.Discard, io.Discard) == 0
	})
	if exited >= 0 {
		t.Fatalf("palm %q exited %d:\n%s", args, exited, stderr.String())
	}
}

// TestCacheQuotaFlags runs components with --cache-max-keys and its
// PALM_CACHE_MAX_BYTES twin and checks that a Set past the quota fails,
// saying which limit and which flag raises it.
func TestCacheQuotaFlags(t *testing.T) {
	t.Run("master --cache-max-keys", func(t *testing.T) {
		addr := palmtest.FreeAddr(t)
		runComponent(t, addr, "master", "server", "--listen", addr, "--cache-max-keys", "2")
		kv := func(args ...string) result {
			return palmCmd(t, "", append([]string{"kv", "--address", addr, timeout}, args...)...)
		}
		kv("set", "a", "1").want(t, 0, "a\n")
		kv("set", "b", "2").want(t, 0, "b\n")
		r := kv("set", "c", "3")
		r.want(t, 1, "")
		r.wantStderr(t, "ResourceExhausted", "the limit is 2 keys", "--cache-max-keys")
		kv("set", "a", "replaced").want(t, 0, "a\n")
		kv("delete", "b").want(t, 0, "deleted\n")
		kv("set", "c", "3").want(t, 0, "c\n")
	})
	t.Run("server PALM_CACHE_MAX_BYTES", func(t *testing.T) {
		t.Setenv("PALM_CACHE_MAX_BYTES", "1000")
		addr := palmtest.FreeAddr(t)
		runComponent(t, addr, "server", "s", "--listen", addr, "--exec", "foo=cat")
		palmCmd(t, strings.Repeat("x", 800), "kv", "--address", addr, timeout, "set", "big").want(t, 0, "big\n")
		r := palmCmd(t, strings.Repeat("y", 200), "kv", "--address", addr, timeout, "set", "more")
		r.want(t, 1, "")
		r.wantStderr(t, "ResourceExhausted", "limit of 1000 bytes", "--cache-max-bytes")
	})
	t.Run("invalid", func(t *testing.T) {
		r := palmCmd(t, "", "master", "server", "--listen", palmtest.FreeAddr(t), "--cache-max-bytes", "0")
		r.want(t, 2, "")
		r.wantStderr(t, "--cache-max-bytes 0: must be at least 1")
	})
}
