package main

import (
	"context"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/pipeline"
)

func TestHealth(t *testing.T) {
	_, addr := startServer(t)
	palmCmd(t, "", "health", addr).want(t, 0, "SERVING\n")
	palmCmd(t, "", "health", "--address", addr, "--service", "palm.v1.GatewayService").want(t, 0, "SERVING\n")
	r := palmCmd(t, "", "health", addr, "--service", "palm.v1.NoSuchService")
	r.want(t, 1, "")
	r.wantStderr(t, "NotFound")
	closed := closedAddress(t)
	r = palmCmd(t, "", "health", closed)
	r.want(t, 1, "")
	r.wantStderr(t, closed, "nothing listens", "Unavailable")
}

// The TLS flags are grpcurl's; plaintext is only for the loopback
// interface unless asked for.
func TestTLSFlags(t *testing.T) {
	ca := palmtest.NewCA(t, "palm")
	cert, key, _ := ca.Issue(t, "my_server")
	ccert, ckey, _ := ca.Issue(t, "operator")
	cfg, err := palm.TLSFiles{CACert: ca.File, Cert: cert, Key: key, ClientAuth: true}.Config()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := pipeline.NewServer("my_server", palm.WithLogger(palmtest.Logger(t, hclog.Warn)), palm.WithTLS(cfg))
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) { return append([]byte("you sent me "), m...), nil })
	addr := palmtest.ServeTCP(t, srv)

	tlsFlags := []string{"--address", addr, "--cacert", ca.File, "--cert", ccert, "--key", ckey}
	palmCmd(t, "", append([]string{"eval", timeout}, append(tlsFlags, "my_server.foo", "a message")...)...).want(t, 0, "you sent me a message\n")
	palmCmd(t, "", append([]string{"health"}, tlsFlags...)...).want(t, 0, "SERVING\n")
	palmCmd(t, "", "kv", "set", "--address", addr, "--cacert", ca.File, "--cert", ccert, "--key", ckey, timeout, "k", "v").want(t, 0, "")

	r := palmCmd(t, "", "eval", "--timeout=1s", "--address", addr, "--cacert", ca.File, "my_server.foo", "x")
	r.want(t, 1, "")
	r = palmCmd(t, "", "eval", "--address", "10.1.2.3:5555", "my_server.foo", "x")
	r.want(t, 2, "")
	r.wantStderr(t, "refusing to talk to 10.1.2.3:5555 in plaintext", "--plaintext")
	r = palmCmd(t, "", "eval", "--plaintext", "--cacert", ca.File, "my_server.foo", "x")
	r.want(t, 2, "")
	r.wantStderr(t, "--plaintext excludes the TLS flags")
	r = palmCmd(t, "", "eval", "--token", "secret", "my_server.foo", "x")
	r.want(t, 2, "")
	r.wantStderr(t, "--token needs TLS")
	r = palmCmd(t, "", "eval", "--cacert", "/nonexistent.pem", "my_server.foo", "x")
	r.want(t, 2, "")
	r.wantStderr(t, "no such file")
}
