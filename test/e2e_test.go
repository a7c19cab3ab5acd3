package test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/pipeline"
)

// serveTCP serves the introduction's server, my_server with its function
// foo, on a free TCP port of the loopback interface until the test ends, and
// returns its address and the server.
func serveTCP(t *testing.T, opts ...pipeline.ServerOption) (string, *pipeline.Server) {
	t.Helper()
	srv, err := pipeline.NewServer("my_server", append([]pipeline.ServerOption{palm.WithLogger(palmtest.Logger(t, 0))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) {
		return append([]byte("you sent me "), m...), nil
	})
	return palmtest.ServeTCP(t, srv), srv
}

// The original loses over half of the replies to an eval made the instant a
// client is created (its subscription is not in place yet). In palm the
// reply comes back on the call itself: 2,000 fresh clients, 2,000 replies.
func TestEvalFromAFreshClient(t *testing.T) {
	addr, _ := serveTCP(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 2000 {
		c, err := client.New("my_server", addr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Eval(ctx, "my_server.foo", []byte(fmt.Sprint(i)))
		c.Close()
		if err != nil {
			t.Fatalf("eval %d: %v", i, err)
		}
		if want := fmt.Sprint("you sent me ", i); string(got) != want {
			t.Fatalf("eval %d: %q, want %q", i, got, want)
		}
	}
}

// The original server dies on an unknown function name and on deleting a
// missing key. palm answers both with a precise code and keeps serving.
func TestOriginalCrashesAnswered(t *testing.T) {
	addr, _ := serveTCP(t, palm.WithMaxMessageSize(1<<10))
	c, err := client.New("my_server", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	good := func() {
		t.Helper()
		got, err := c.Eval(ctx, "my_server.foo", []byte("again"))
		if err != nil || string(got) != "you sent me again" {
			t.Fatalf("the next good request: %q, %v", got, err)
		}
	}

	_, err = c.Eval(ctx, "my_server.unknown", []byte("x"))
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), `no function "unknown"`) {
		t.Errorf("unknown function: %v", err)
	}
	good()

	deleted, err := c.Delete(ctx, "never-set")
	if err != nil || deleted {
		t.Errorf("deleting a missing key: %v, %v; want false, nil", deleted, err)
	}
	good()

	if _, err := c.Get(ctx, "never-set"); !errors.Is(err, kv.ErrNotFound) || status.Code(err) != codes.NotFound {
		t.Errorf("getting a missing key: %v", err)
	}
	good()

	// A payload over the server's limit, from a client whose own limit is
	// higher so that it reaches the server.
	big, err := client.New("my_server", addr, palm.WithMaxMessageSize(1<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	_, err = big.Eval(ctx, "my_server.foo", make([]byte, 2<<10))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "limit is 1024 bytes") {
		t.Errorf("oversize payload: %v", err)
	}
	good()

	// In a job, the bad message gets its error and the others go on.
	payloads := func(yield func([]byte) bool) {
		for _, p := range []string{"a", strings.Repeat("x", 2<<10), "b"} {
			if !yield([]byte(p)) {
				return
			}
		}
	}
	var replies, failures int
	for reply, err := range big.Job(ctx, "my_server.foo", payloads) {
		var me *client.MessageError
		switch {
		case errors.As(err, &me) && status.Code(err) == codes.ResourceExhausted && me.Sequence == 2:
			failures++
		case err != nil:
			t.Fatalf("job: %v", err)
		case strings.HasPrefix(string(reply), "you sent me "):
			replies++
		}
	}
	if replies != 2 || failures != 1 {
		t.Errorf("job: %d replies and %d failures; want 2 and 1", replies, failures)
	}
}

// A job ends by itself once every message has been answered, with no
// message count given, even when some messages produce no reply.
func TestJobEndsByItself(t *testing.T) {
	addr, srv := serveTCP(t)
	srv.HandleFunc("odd", func(_ context.Context, m []byte) ([]byte, error) {
		var n int
		fmt.Sscan(string(m), &n)
		if n%2 == 0 {
			return nil, nil // nothing for even numbers
		}
		return m, nil
	})
	c, err := client.New("my_server", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	numbers := func(yield func([]byte) bool) {
		for i := range 10000 {
			if !yield([]byte(fmt.Sprint(i))) {
				return
			}
		}
	}
	n := 0
	for _, err := range c.Job(ctx, "my_server.odd", numbers) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 5000 {
		t.Fatalf("%d replies, want 5000", n)
	}
}
