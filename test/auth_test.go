package test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
)

// A master that requires tokens: clients and workers each need theirs, and
// neither can do the other's part.
func TestTokens(t *testing.T) {
	ca := palmtest.NewCA(t, "palm")
	cert, key, _ := ca.Issue(t, "master")
	tokens := palm.WithTokens(map[string]palm.Permission{"client-secret-0123456789": palm.ClientRole, "worker-secret-0123456789": palm.WorkerRole})
	m, err := master.New("server", quietLog(t), tokens, tlsOption(t, palm.TLSFiles{Cert: cert, Key: key}))
	if err != nil {
		t.Fatal(err)
	}
	addr := palmtest.ServeTCP(t, m)
	trust := tlsOption(t, palm.TLSFiles{CACert: ca.File})

	// A worker without the token, or with a client's, never gets to work.
	for _, tc := range []struct {
		name string
		opts []palm.Option
		code codes.Code
		msg  string
	}{
		{"no token", nil, codes.Unauthenticated, "requires authentication"},
		{"an unknown token", []palm.Option{palm.WithToken("a-guess-0123456789")}, codes.Unauthenticated, "not known"},
		{"a client's token", []palm.Option{palm.WithToken("client-secret-0123456789")}, codes.PermissionDenied, "DispatchService"},
	} {
		conn, err := grpc.NewClient(addr, dialTLS(t, ca, tc.opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		stream, err := palmv1.NewDispatchServiceClient(conn).Work(shortCtx(t, 5*time.Second))
		if err == nil {
			_, err = stream.Recv()
		}
		if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
			t.Errorf("worker with %s: got %v, want %s mentioning %q", tc.name, err, tc.code, tc.msg)
		}
		conn.Close()
	}
	startWorkers(t, addr, 1, trust, palm.WithToken("worker-secret-0123456789"))
	palmtest.Eventually(t, 10*time.Second, "the worker joined", func() bool { return m.Workers() == 1 })

	c, err := client.New("server", addr, quietLog(t), trust, palm.WithToken("client-secret-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.Eval(shortCtx(t, 10*time.Second), "server.foo", []byte("x")); err != nil || string(got) != "worker1 processed x" {
		t.Fatalf("a client with its token: %q, %v", got, err)
	}
	w, err := client.New("server", addr, quietLog(t), trust, palm.WithToken("worker-secret-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Eval(shortCtx(t, 5*time.Second), "server.foo", []byte("x")); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a worker's token sending messages: got %v, want PermissionDenied", err)
	}
	if _, err := w.Set(shortCtx(t, 5*time.Second), "k", []byte("v")); err != nil {
		t.Errorf("a worker's token using the cache: %v", err)
	}

	// Probes stay open.
	conn, err := grpc.NewClient(addr, dialTLS(t, ca)...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := healthpb.NewHealthClient(conn).Check(shortCtx(t, 5*time.Second), &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health without a token: %v", err)
	}
}

// dialTLS are the dial options of a raw connection trusting ca, with the
// palm options' token if any.
func dialTLS(t *testing.T, ca *palmtest.CA, opts ...palm.Option) []grpc.DialOption {
	t.Helper()
	cfg, err := palm.TLSFiles{CACert: ca.File}.Config()
	if err != nil {
		t.Fatal(err)
	}
	dial, err := palm.DialOptions(append([]palm.Option{palm.WithTLS(cfg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return dial
}

// With mutual TLS, the certificate's name is the identity: no token needed.
func TestIdentities(t *testing.T) {
	ca := palmtest.NewCA(t, "palm")
	cert, key, _ := ca.Issue(t, "my_server")
	addr := tlsServer(t,
		tlsOption(t, palm.TLSFiles{CACert: ca.File, Cert: cert, Key: key, ClientAuth: true}),
		palm.WithIdentities(map[string]palm.Permission{"reporting": palm.UseCache, "frontend": palm.ClientRole}),
		palm.WithClosedProbes())
	as := func(name string) palm.Option {
		c, k, _ := ca.Issue(t, name)
		return tlsOption(t, palm.TLSFiles{CACert: ca.File, Cert: c, Key: k})
	}
	if err := evalWith(t, addr, as("frontend")); err != nil {
		t.Errorf("frontend: %v", err)
	}
	if err := evalWith(t, addr, as("reporting")); status.Code(err) != codes.PermissionDenied {
		t.Errorf("reporting sending a message: got %v, want PermissionDenied", err)
	}
	if err := evalWith(t, addr, as("nobody")); status.Code(err) != codes.Unauthenticated {
		t.Errorf("an unknown name: got %v, want Unauthenticated", err)
	}
	dial, err := palm.DialOptions(as("nobody"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("closed probes: got %v, want Unauthenticated", err)
	}
}
