package test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/pipeline"
	"github.com/gopalm/palm/worker"
)

// tlsOption builds palm.WithTLS from files, failing the test on error.
func tlsOption(t *testing.T, f palm.TLSFiles) palm.Option {
	t.Helper()
	cfg, err := f.Config()
	if err != nil {
		t.Fatal(err)
	}
	return palm.WithTLS(cfg)
}

func quietLog(t *testing.T) palm.Option { return palm.WithLogger(palmtest.Logger(t, hclog.Warn)) }

func shortCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startWorkers runs n in-process workers serving foo on addr until the
// test ends.
func startWorkers(t *testing.T, addr string, n int, opts ...worker.Option) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, n)
	for i := range n {
		w, err := worker.New([]string{"worker1", "worker2", "worker3"}[i], addr, append([]worker.Option{quietLog(t)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		w.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) {
			return append([]byte(w.Name()+" processed "), m...), nil
		})
		go func() { w.Run(ctx); done <- struct{}{} }()
	}
	t.Cleanup(func() {
		cancel()
		for range n {
			<-done
		}
	})
}

// A whole cluster over TLS: a pipelined master with two workers, a
// pipeline after it, and a client that sends to the master and takes its
// replies from the pipeline. Every component has a certificate of its own.
func TestTLSCluster(t *testing.T) {
	ca := palmtest.NewCA(t, "palm")
	files := func(name string) palm.TLSFiles {
		cert, key, _ := ca.Issue(t, name)
		return palm.TLSFiles{CACert: ca.File, Cert: cert, Key: key}
	}
	m, err := master.New("server", quietLog(t), master.Pipelined(), tlsOption(t, files("master")))
	if err != nil {
		t.Fatal(err)
	}
	maddr := palmtest.ServeTCP(t, m)
	startWorkers(t, maddr, 2, tlsOption(t, files("worker")))

	p, err := pipeline.NewPipeline("my_pipeline", pipeline.Upstream{Address: maddr, Topic: "server"}, quietLog(t), tlsOption(t, files("pipeline")))
	if err != nil {
		t.Fatal(err)
	}
	p.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) {
		return append([]byte("and I pipelined "), m...), nil
	})
	paddr := palmtest.ServeTCP(t, p)
	palmtest.Eventually(t, 10*time.Second, "a cluster over TLS is up", func() bool { return m.Workers() == 2 && p.Subscribed() == 1 })

	c, err := client.New("server", maddr, quietLog(t), client.SubAddress(paddr), tlsOption(t, palm.TLSFiles{CACert: ca.File}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := 0
	for r, err := range c.Job(shortCtx(t, 20*time.Second), client.Steps("server.foo", "my_pipeline.foo"), client.Repeat([]byte("x"), 100)) {
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(r), "and I pipelined worker") {
			t.Fatalf("reply %q", r)
		}
		n++
	}
	if n != 100 {
		t.Fatalf("%d replies, want 100", n)
	}
	if _, err := c.Set(shortCtx(t, 5*time.Second), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
}

// tlsServer serves a standalone server named my_server with opts and
// returns its address.
func tlsServer(t *testing.T, opts ...pipeline.ServerOption) string {
	t.Helper()
	srv, err := pipeline.NewServer("my_server", append([]pipeline.ServerOption{quietLog(t)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) { return append([]byte("you sent me "), m...), nil })
	return palmtest.ServeTCP(t, srv)
}

func evalWith(t *testing.T, addr string, opts ...client.Option) error {
	t.Helper()
	return evalWithin(t, 3*time.Second, addr, opts...)
}

func evalWithin(t *testing.T, d time.Duration, addr string, opts ...client.Option) error {
	t.Helper()
	c, err := client.New("my_server", addr, append([]client.Option{quietLog(t)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Eval(shortCtx(t, d), "my_server.foo", []byte("x"))
	if err == nil && string(got) != "you sent me x" {
		t.Fatalf("reply %q", got)
	}
	return err
}

// refused checks that err is the failure of a connection that could not
// be made: the call waits for a connection that never becomes ready.
func refused(t *testing.T, what string, err error) {
	t.Helper()
	refusedCode(t, what, err)
}

func refusedCode(t *testing.T, what string, err error) {
	t.Helper()
	if c := status.Code(err); c != codes.Unavailable && c != codes.DeadlineExceeded {
		t.Errorf("%s: got %v, want the connection refused", what, err)
	}
}

func TestTLSRefusals(t *testing.T) {
	ca := palmtest.NewCA(t, "palm")
	other := palmtest.NewCA(t, "other")
	cert, key, _ := ca.Issue(t, "my_server")
	addr := tlsServer(t, tlsOption(t, palm.TLSFiles{Cert: cert, Key: key}))

	if err := evalWith(t, addr, tlsOption(t, palm.TLSFiles{CACert: ca.File})); err != nil {
		t.Fatalf("a client trusting the CA: %v", err)
	}
	refused(t, "a plaintext client", evalWithin(t, time.Second, addr))
	refused(t, "a client trusting another CA", evalWithin(t, time.Second, addr, tlsOption(t, palm.TLSFiles{CACert: other.File})))
	refused(t, "a client expecting another name", evalWithin(t, time.Second, addr, tlsOption(t, palm.TLSFiles{CACert: ca.File, ServerName: "elsewhere"})))
	if err := evalWith(t, addr, tlsOption(t, palm.TLSFiles{Insecure: true})); err != nil {
		t.Errorf("an insecure client is encrypted but unverified, and works: %v", err)
	}
}

func TestMutualTLS(t *testing.T) {
	ca := palmtest.NewCA(t, "palm")
	other := palmtest.NewCA(t, "other")
	cert, key, _ := ca.Issue(t, "my_server")
	addr := tlsServer(t, tlsOption(t, palm.TLSFiles{CACert: ca.File, Cert: cert, Key: key, ClientAuth: true}))

	ccert, ckey, _ := ca.Issue(t, "a-client")
	if err := evalWith(t, addr, tlsOption(t, palm.TLSFiles{CACert: ca.File, Cert: ccert, Key: ckey})); err != nil {
		t.Fatalf("a client with a valid certificate: %v", err)
	}
	refused(t, "a client without a certificate", evalWithin(t, time.Second, addr, tlsOption(t, palm.TLSFiles{CACert: ca.File})))
	ocert, okey, _ := other.Issue(t, "stranger")
	refused(t, "a client with a certificate of another CA", evalWithin(t, time.Second, addr, tlsOption(t, palm.TLSFiles{CACert: ca.File, Cert: ocert, Key: okey})))
}

// A certificate replaced on disk is the one new connections get.
func TestCertificateRotation(t *testing.T) {
	ca := palmtest.NewCA(t, "palm")
	cert, key, first := ca.Issue(t, "my_server")
	addr := tlsServer(t, tlsOption(t, palm.TLSFiles{Cert: cert, Key: key}))
	pem, err := os.ReadFile(ca.File)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	serving := func() string {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	if got := serving(); got != first.String() {
		t.Fatalf("serving %s, want %s", got, first)
	}
	_, _, second := ca.Issue(t, "my_server") // the same files, a new certificate
	if got := serving(); got != second.String() {
		t.Fatalf("after rotation serving %s, want %s", got, second)
	}
	if err := evalWith(t, addr, tlsOption(t, palm.TLSFiles{CACert: ca.File})); err != nil {
		t.Fatal(err)
	}
}

func TestTLSFilesErrors(t *testing.T) {
	ca := palmtest.NewCA(t, "palm")
	cert, _, _ := ca.Issue(t, "x")
	for _, tc := range []struct {
		files palm.TLSFiles
		want  string
	}{
		{palm.TLSFiles{Cert: cert}, "a certificate needs its key"},
		{palm.TLSFiles{Cert: cert, Key: "/nonexistent/key.pem"}, "no such file"},
		{palm.TLSFiles{CACert: cert + ".missing"}, "no such file"},
		{palm.TLSFiles{CACert: ca.Dir + "/x-key.pem"}, "holds no PEM certificate"},
		{palm.TLSFiles{Cert: cert, Key: cert}, "certificate"},
		{palm.TLSFiles{ClientAuth: true}, "needs the CA"},
	} {
		if _, err := tc.files.Config(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error containing %q", tc.files, err, tc.want)
		}
	}
}
