package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/internal/reach"
	"github.com/gopalm/palm/kv"
)

// fastBound is how soon a call on a connection that was never ready must
// fail: the issue's bound, which these tests hold with room to spare.
const fastBound = 2 * time.Second

// serveTCPAt serves the fake gateway and a cache at addr ("127.0.0.1:0"
// for a free port), with creds (nil: plaintext), until stop or the end of
// the test; it returns the address and stop.
func serveTCPAt(t *testing.T, addr string, creds credentials.TransportCredentials) (string, func()) {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var opts []grpc.ServerOption
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	s := grpc.NewServer(opts...)
	palmv1.RegisterGatewayServiceServer(s, newFakeGateway())
	palmv1.RegisterCacheServiceServer(s, kv.NewService(kv.NewMemory()))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	var once sync.Once
	stop := func() { once.Do(func() { s.Stop(); <-done }) }
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

// tlsOption is palm.WithTLS of files.
func tlsOption(t *testing.T, files palm.TLSFiles) palm.Option {
	t.Helper()
	cfg, err := files.Config()
	if err != nil {
		t.Fatal(err)
	}
	return palm.WithTLS(cfg)
}

// quickFailure checks that call failed within fastBound with an
// Unavailable *reach.Error of problem p whose message holds every one of
// parts.
func quickFailure(t *testing.T, what string, p reach.Problem, call func(context.Context) error, parts ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	err := call(ctx)
	took := time.Since(start)
	t.Logf("%s: %v after %v", what, err, took)
	var re *reach.Error
	switch {
	case err == nil:
		t.Fatalf("%s succeeded; want a failure", what)
	case took > fastBound:
		t.Errorf("%s failed after %v; want within %v", what, took, fastBound)
	case status.Code(err) != codes.Unavailable:
		t.Errorf("%s: code %v; want Unavailable", what, status.Code(err))
	case !errors.As(err, &re) || re.Problem != p:
		t.Errorf("%s: %v; want a reach.Error of problem %q", what, err, p.Describe())
	}
	for _, part := range parts {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("%s: %q; want it to name %q", what, err, part)
		}
	}
}

// Every kind of call fails at once, saying so, when nothing listens.
func TestNothingListensFailsFast(t *testing.T) {
	addr := palmtest.FreeAddr(t)
	c, err := New(fakeServer, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	parts := []string{addr, "nothing listens", "WaitForServer"}
	quickFailure(t, "Eval", reach.Refused, func(ctx context.Context) error {
		_, err := c.Eval(ctx, "srv.echo", []byte("x"))
		return err
	}, parts...)
	quickFailure(t, "Job", reach.Refused, func(ctx context.Context) error {
		for _, err := range c.Job(ctx, "srv.echo", Repeat([]byte("x"), 3)) {
			if err != nil {
				return err
			}
		}
		return nil
	}, parts...)
	quickFailure(t, "Get", reach.Refused, func(ctx context.Context) error {
		_, err := c.Get(ctx, "k")
		return err
	}, parts...)

	// The SubAddress is dialled the same way.
	first, _ := serveTCPAt(t, "127.0.0.1:0", nil)
	sub := palmtest.FreeAddr(t)
	cs, err := New(fakeServer, first, SubAddress(sub))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	quickFailure(t, "Eval with a dead SubAddress", reach.Refused, func(ctx context.Context) error {
		_, err := cs.Eval(ctx, "srv.echo", []byte("x"))
		return err
	}, sub, "nothing listens")
}

// TLS on one side and plaintext on the other, and a missing client
// certificate, are named with their fix.
func TestTLSMismatchNamed(t *testing.T) {
	ca := palmtest.NewCA(t, "palm")
	cert, key, _ := ca.Issue(t, "srv")
	serverTLS := func(clientAuth bool) credentials.TransportCredentials {
		cfg, err := palm.TLSFiles{CACert: ca.File, Cert: cert, Key: key, ClientAuth: clientAuth}.Config()
		if err != nil {
			t.Fatal(err)
		}
		return credentials.NewTLS(cfg)
	}
	tlsAddr, _ := serveTCPAt(t, "127.0.0.1:0", serverTLS(false))
	mtlsAddr, _ := serveTCPAt(t, "127.0.0.1:0", serverTLS(true))
	plainAddr, _ := serveTCPAt(t, "127.0.0.1:0", nil)
	trust := tlsOption(t, palm.TLSFiles{CACert: ca.File})
	tests := []struct {
		name    string
		addr    string
		opts    []Option
		problem reach.Problem
		parts   []string
	}{
		{"plaintext to TLS", tlsAddr, nil, reach.WantsTLS, []string{"speaks TLS", "palm.WithTLS"}},
		{"TLS to plaintext", plainAddr, []Option{trust}, reach.NoTLS, []string{"does not speak TLS", "without palm.WithTLS"}},
		{"no client certificate", mtlsAddr, []Option{trust}, reach.CertRequired, []string{"requires a client certificate", "Cert and Key"}},
		{"untrusted server", tlsAddr, []Option{tlsOption(t, palm.TLSFiles{CACert: palmtest.NewCA(t, "other").File})}, reach.ServerUntrusted, []string{"not trusted", "CACert"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Waiting would not cure it: WaitForServer fails at once too.
			for _, opts := range [][]Option{tt.opts, append(tt.opts, WaitForServer(time.Minute), palm.WithLogger(hclog.NewNullLogger()))} {
				c, err := New(fakeServer, tt.addr, opts...)
				if err != nil {
					t.Fatal(err)
				}
				quickFailure(t, "Eval", tt.problem, func(ctx context.Context) error {
					_, err := c.Eval(ctx, "srv.echo", []byte("x"))
					return err
				}, append([]string{tt.addr}, tt.parts...)...)
				c.Close()
			}
		})
	}
}

// With WaitForServer, a call made before the server is up waits for it,
// saying so in the log, and succeeds once it comes.
func TestWaitForServer(t *testing.T) {
	addr := palmtest.FreeAddr(t)
	logs := &palmtest.Buffer{}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info})
	c, err := New(fakeServer, addr, WaitForServer(20*time.Second), palm.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type result struct {
		reply []byte
		err   error
	}
	done := make(chan result, 1)
	go func() {
		reply, err := c.Eval(context.Background(), "srv.echo", []byte("late"))
		done <- result{reply, err}
	}()
	palmtest.Eventually(t, 10*time.Second, "the client logs that it waits", func() bool {
		return strings.Contains(logs.String(), "waiting for "+addr+"…")
	})
	select {
	case r := <-done:
		t.Fatalf("Eval ended before the server came up: %q, %v", r.reply, r.err)
	default:
	}
	serveTCPAt(t, addr, nil)
	select {
	case r := <-done:
		if r.err != nil || string(r.reply) != "LATE" {
			t.Fatalf("Eval = %q, %v; want LATE", r.reply, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Eval did not end after the server came up")
	}
}

// WaitForServer is bounded: past it, the call fails with the reason.
func TestWaitForServerBounded(t *testing.T) {
	addr := palmtest.FreeAddr(t)
	c, err := New(fakeServer, addr, WaitForServer(300*time.Millisecond), palm.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Eval(context.Background(), "srv.echo", []byte("x"))
	took := time.Since(start)
	var re *reach.Error
	if !errors.As(err, &re) || re.Problem != reach.Refused || !strings.Contains(err.Error(), "did not come up within 300ms") {
		t.Fatalf("Eval = %v; want a refusal after the wait", err)
	}
	if took < 300*time.Millisecond || took > 300*time.Millisecond+fastBound {
		t.Errorf("Eval failed after %v; want after the 300ms wait, and soon after", took)
	}
	if _, err := New(fakeServer, addr, WaitForServer(0)); err == nil || !strings.Contains(err.Error(), "WaitForServer(0s)") {
		t.Errorf("New with WaitForServer(0) = %v; want an error naming it", err)
	}
}

// Once the connection has been ready, a call made while the server is
// away waits for it to come back rather than fail: a restart loses
// nothing.
func TestRestartedServerAwaited(t *testing.T) {
	addr, stop := serveTCPAt(t, "127.0.0.1:0", nil)
	c, err := New(fakeServer, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Eval(ctx, "srv.echo", []byte("before")); err != nil {
		t.Fatal(err)
	}
	stop()
	palmtest.Eventually(t, 10*time.Second, "the client notices the server left", func() bool {
		return c.conn.GetState() != connectivity.Ready
	})
	done := make(chan error, 1)
	go func() {
		_, err := c.Eval(ctx, "srv.echo", []byte("during"))
		done <- err
	}()
	// The call must still be waiting a while later, not failed.
	select {
	case err := <-done:
		t.Fatalf("Eval while the server was away ended with %v; want it to wait", err)
	case <-time.After(500 * time.Millisecond):
	}
	serveTCPAt(t, addr, nil)
	if err := <-done; err != nil {
		t.Fatalf("Eval across the restart: %v", err)
	}
}
