package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// `palm server --tokens` without TLS refuses to start and names both
// fixes; with --insecure-tokens (or PALM_INSECURE_TOKENS) it serves and
// checks the tokens sent in the clear. A token file's short token is
// refused naming its file and line.
func TestTokensNeedTLS(t *testing.T) {
	const token = "a-client-token-0123456789"
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("# accepted tokens\nclient "+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startRefused(t, "server", "my_server", "--listen", palmtest.FreeAddr(t), "--tokens", file, "--exec", "foo=cat")
	r.want(t, 2, "")
	r.wantStderr(t, "without TLS", "in the clear", "--cert and --key", "--insecure-tokens")

	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("client "+token+"\n\nworker short-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = startRefused(t, "server", "my_server", "--listen", palmtest.FreeAddr(t), "--insecure-tokens", "--tokens", short, "--exec", "foo=cat")
	r.want(t, 2, "")
	r.wantStderr(t, short+":3:", "at least 16 bytes")
	if strings.Contains(r.stderr, "short-token") {
		t.Errorf("the error shows the token: %q", r.stderr)
	}

	if testing.Short() {
		t.Skip("builds the command and runs processes; skipped with -short")
	}
	for _, env := range [][]string{nil, {"PALM_INSECURE_TOKENS=true"}} {
		addr := palmtest.FreeAddr(t)
		args := []string{"server", "my_server", "--listen", addr, "--tokens", file, "--exec", "foo=cat"}
		if env == nil {
			args = append(args, "--insecure-tokens")
		}
		srv := startPalmEnv(t, env, args...)
		srv.waitFor(t, "serving")
		palmCmd(t, "", "eval", timeout, "--address", addr, "--insecure-tokens", "--token", token, "my_server.foo", "x").want(t, 0, "x\n")
		r := palmCmd(t, "", "eval", timeout, "--address", addr, "--insecure-tokens", "--token", "a-wrong-token-0123456789", "my_server.foo", "x")
		r.want(t, 1, "")
		r.wantStderr(t, "Unauthenticated")
	}
}

// startRefused runs a verb that should refuse to start, in process; one
// that serves instead is stopped after a few seconds.
func startRefused(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	r := result{run(ctx, args, strings.NewReader(""), &stdout, &stderr), stdout.String(), stderr.String()}
	t.Logf("palm %q: exit %d\nstderr: %q", args, r.code, r.stderr)
	return r
}
