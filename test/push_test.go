package test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/compose"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/parts"
	"github.com/gopalm/palm/pipeline"
	"github.com/gopalm/palm/worker"
)

// serveOn serves srv on lis until the returned stop is called, which
// returns what Serve returned.
func serveOn(srv interface {
	Serve(context.Context, net.Listener) error
}, lis net.Listener) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	return func() error { cancel(); return <-done }
}

// doubler is a standalone server named far whose function double repeats
// its payload twice, and whose function hang tells hung and waits until
// its context ends.
func doubler(t *testing.T, hung chan<- struct{}) *pipeline.Server {
	t.Helper()
	far, err := pipeline.NewServer("far", palm.WithLogger(palmtest.Logger(t, 0)), palm.WithStopTimeout(300*time.Millisecond), pipeline.Concurrency(4))
	if err != nil {
		t.Fatal(err)
	}
	far.HandleFunc("double", func(_ context.Context, p []byte) ([]byte, error) { return append(p, p...), nil })
	far.HandleFunc("hang", func(ctx context.Context, p []byte) ([]byte, error) {
		hung <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	return far
}

// A component with a Push connection forwards its clients' messages into
// another component's gateway and brings the replies back; when that
// component goes, the messages out there and those that come meanwhile are
// answered Unavailable at once; when it is back, messages flow again.
func TestPushConnection(t *testing.T) {
	t.Parallel()
	farLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	farAddr := farLis.Addr().String()
	hung := make(chan struct{}, 1)
	stopFar := serveOn(doubler(t, hung), farLis)

	near, err := compose.New("near", palm.WithLogger(palmtest.Logger(t, 0)))
	if err != nil {
		t.Fatal(err)
	}
	push, err := parts.NewPush(parts.PushConfig{Address: farAddr, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	near.Inbound(compose.Pull, parts.NewGateway(parts.GatewayConfig{}), "Push")
	near.Outbound("Push", push, "")
	addr := palmtest.ServeTCP(t, near)

	cl, err := client.New("near", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	got, err := cl.Eval(ctx, "near.forward far.double", []byte("ab"))
	if err != nil || string(got) != "abab" {
		t.Fatalf("Eval through the push connection: %q, %v", got, err)
	}
	var n int
	for r, err := range cl.Job(ctx, "near.forward far.double", repeat([]byte("x"), 500)) {
		if err != nil || string(r) != "xx" {
			t.Fatalf("job reply %d: %q, %v", n, r, err)
		}
		n++
	}
	if n != 500 {
		t.Fatalf("%d replies to 500 messages", n)
	}
	if _, err := cl.Eval(ctx, "near.forward", []byte("x")); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "add a step naming the component it is pushed to") {
		t.Errorf("a message with no step to push to: %v", err)
	}

	// A message out when the far server goes is answered, not lost.
	lost := make(chan error, 1)
	go func() {
		_, err := cl.Eval(ctx, "near.forward far.hang", []byte("x"))
		lost <- err
	}()
	<-hung
	if err := stopFar(); err != nil {
		t.Fatal(err)
	}
	if err := <-lost; status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "may or may not have been handled") {
		t.Errorf("a message out when the far server stopped: %v, want Unavailable", err)
	}
	began := time.Now()
	_, err = cl.Eval(ctx, "near.forward far.double", []byte("ab"))
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), farAddr) {
		t.Errorf("with the far server gone: %v, want Unavailable naming %s", err, farAddr)
	}
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("the answer took %v", took)
	}

	farLis, err = net.Listen("tcp", farAddr)
	if err != nil {
		t.Fatal(err)
	}
	stopFar = serveOn(doubler(t, hung), farLis)
	defer stopFar()
	palmtest.Eventually(t, 10*time.Second, "the push connection is back", func() bool {
		got, err := cl.Eval(ctx, "near.forward far.double", []byte("cd"))
		return err == nil && string(got) == "cdcd"
	})
	if push.Held() != 0 {
		t.Errorf("%d messages still out", push.Held())
	}
}

// repeat yields p n times.
func repeat(p []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for range n {
			if !yield(p) {
				return
			}
		}
	}
}

// Middleware given with palm.WithMiddleware wraps the functions of a
// standalone server and those of a worker, the first given outermost.
func TestMiddleware(t *testing.T) {
	t.Parallel()
	var seen atomic.Int64
	tag := func(name string) palm.Middleware {
		return func(next palm.Handler) palm.Handler {
			return handlerFunc(func(ctx context.Context, m *palmv1.PalmMessage) ([]byte, error) {
				seen.Add(1)
				out, err := next.Handle(ctx, m)
				return append([]byte(name+"("), append(out, ')')...), err
			})
		}
	}
	mw := palm.WithMiddleware(tag("outer"), tag("inner"))

	srv, err := pipeline.NewServer("mw", mw)
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
	cl, err := client.New("mw", palmtest.ServeTCP(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if got, err := cl.Eval(ctx, "mw.echo", []byte("x")); err != nil || string(got) != "outer(inner(x))" {
		t.Errorf("server: %q, %v", got, err)
	}

	m, err := master.New("mwm")
	if err != nil {
		t.Fatal(err)
	}
	maddr := palmtest.ServeTCP(t, m)
	w, err := worker.New("w", maddr, mw)
	if err != nil {
		t.Fatal(err)
	}
	w.HandleFunc("echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
	wctx, stopWorker := context.WithCancel(context.Background())
	worked := make(chan error, 1)
	go func() { worked <- w.Run(wctx) }()
	defer func() { stopWorker(); <-worked }()
	mc, err := client.New("mwm", maddr)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	palmtest.Eventually(t, 10*time.Second, "the worker joined", func() bool { return m.Workers() == 1 })
	if got, err := mc.Eval(ctx, "mwm.echo", []byte("y")); err != nil || string(got) != "outer(inner(y))" {
		t.Errorf("worker: %q, %v", got, err)
	}
	if n := seen.Load(); n != 4 {
		t.Errorf("the middleware saw %d calls, want 4", n)
	}
}

type handlerFunc func(context.Context, *palmv1.PalmMessage) ([]byte, error)

func (f handlerFunc) Handle(ctx context.Context, m *palmv1.PalmMessage) ([]byte, error) {
	return f(ctx, m)
}
