// Package palmtest runs palm components in memory for tests: a component
// serves on a bufconn listener, clients reach it with the dial options the
// helper gives, and logs go to the test's log.
package palmtest

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/gopalm/palm"
)

// Servable is anything with palm's server lifecycle.
type Servable interface {
	Serve(ctx context.Context, lis net.Listener) error
}

// Listener is an in-memory listener and the way to dial it.
type Listener struct {
	*bufconn.Listener
}

// Target is the address to give palm clients for l.
const Target = "passthrough:///bufnet"

// DialOptions are the gRPC dial options that reach l.
func (l *Listener) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	}
}

// Option is the palm option that makes a client or worker dial l.
func (l *Listener) Option() palm.Option { return palm.WithDialOptions(l.DialOptions()...) }

// Conn returns a raw gRPC connection to l, closed when the test ends.
func (l *Listener) Conn(t testing.TB) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(Target, l.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// Listen returns a new in-memory listener.
func Listen() *Listener { return &Listener{bufconn.Listen(1 << 20)} }

// ServeTCP runs srv on a free TCP port of the loopback interface until the
// test ends, then stops it and checks that Serve returned nil. It returns
// the address to dial.
func ServeTCP(t testing.TB, srv Servable) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, srv, lis)
	return lis.Addr().String()
}

// Serve runs srv on a new in-memory listener until the test ends, then
// stops it and checks that Serve returned nil.
func Serve(t testing.TB, srv Servable) *Listener {
	t.Helper()
	l := Listen()
	serve(t, srv, l)
	return l
}

func serve(t testing.TB, srv Servable, lis net.Listener) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// Logger returns an hclog logger that writes to the test's log at level.
func Logger(t testing.TB, level hclog.Level) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: level, Output: writer{t}, IndependentLevels: true})
}

type writer struct{ t testing.TB }

func (w writer) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

// Eventually waits until cond holds, checking it every millisecond, and
// fails the test with what when it still does not hold after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("after %v: %s", timeout, what)
		}
	}
}

// Buffer is a bytes.Buffer safe for writers and readers in several
// goroutines: a place for logs and process output that tests read while
// they are being written.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FreeAddr returns a loopback address nothing listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}
