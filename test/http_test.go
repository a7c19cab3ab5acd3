package test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/compose"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/parts"
	"github.com/gopalm/palm/pipeline"
	"github.com/gopalm/palm/worker"
)

// httpFunctions registers the functions the HTTP tests call.
func httpFunctions(handle func(string, func(context.Context, []byte) ([]byte, error))) {
	handle("echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
	handle("upper", func(_ context.Context, p []byte) ([]byte, error) { return bytes.ToUpper(p), nil })
	handle("ack", func(context.Context, []byte) ([]byte, error) { return []byte("acknowledged"), nil })
	handle("none", func(context.Context, []byte) ([]byte, error) { return nil, nil })
	handle("fail", func(context.Context, []byte) ([]byte, error) { return nil, io.ErrUnexpectedEOF })
	handle("slow", func(ctx context.Context, _ []byte) ([]byte, error) { <-ctx.Done(); return nil, ctx.Err() })
}

// waitServes waits until a GET of url with header is answered.
func waitServes(t *testing.T, hc *http.Client, url string, header map[string]string) {
	t.Helper()
	palmtest.Eventually(t, 10*time.Second, "the HTTP gateway serves", func() bool {
		req, _ := http.NewRequest("GET", url, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
}

type httpCase struct {
	name   string
	method string
	path   string
	header map[string]string
	body   string
	status int
	want   string // the body, or a piece of the JSON error's message
	code   string // Palm-Status
}

// do sends tc to base and checks the answer.
func (tc httpCase) do(t *testing.T, hc *http.Client, base string) {
	t.Helper()
	req, err := http.NewRequest(tc.method, base+tc.path, strings.NewReader(tc.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range tc.header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", tc.name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != tc.status {
		t.Errorf("%s: status %d, want %d (body %s)", tc.name, resp.StatusCode, tc.status, body)
		return
	}
	if tc.code == "" {
		if string(body) != tc.want {
			t.Errorf("%s: body %q, want %q", tc.name, body, tc.want)
		}
		return
	}
	var e struct{ Code, Message string }
	if err := json.Unmarshal(body, &e); err != nil || e.Code != tc.code || !strings.Contains(e.Message, tc.want) || resp.Header.Get(parts.StatusHeader) != tc.code {
		t.Errorf("%s: %s %q (%v), want code %s saying %q", tc.name, resp.Header.Get(parts.StatusHeader), body, err, tc.code, tc.want)
	}
}

// A master with the HTTP gateway answers each kind of request with its
// status and body.
func TestHTTPGatewayMaster(t *testing.T) {
	t.Parallel()
	web := palmtest.FreeAddr(t)
	m, err := master.New("server", master.HTTP(web), palm.WithMaxMessageSize(1024), palm.WithLogger(palmtest.Logger(t, 0)))
	if err != nil {
		t.Fatal(err)
	}
	addr := palmtest.ServeTCP(t, m)
	w, err := worker.New("w", addr)
	if err != nil {
		t.Fatal(err)
	}
	httpFunctions(w.HandleFunc)
	ctx, stop := context.WithCancel(context.Background())
	worked := make(chan error, 1)
	go func() { worked <- w.Run(ctx) }()
	defer func() { stop(); <-worked }()
	palmtest.Eventually(t, 10*time.Second, "the worker joined", func() bool { return m.Workers() == 1 })

	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	base := "http://" + web
	waitServes(t, hc, base+"/ack", nil)
	for _, tc := range []httpCase{
		{"GET", "GET", "/ack", nil, "", 200, "acknowledged", ""},
		{"POST", "POST", "/echo", nil, "a message", 200, "a message", ""},
		{"dotted step", "POST", "/server.upper", nil, "a message", 200, "A MESSAGE", ""},
		{"steps header", "POST", "/echo", map[string]string{parts.StepsHeader: "server.upper"}, "x", 200, "X", ""},
		{"steps query", "POST", "/echo?steps=server.upper", nil, "y", 200, "Y", ""},
		{"empty body", "POST", "/ack", nil, "", 200, "acknowledged", ""},
		{"body over the limit", "POST", "/echo", nil, strings.Repeat("x", 2000), 413, "over 1024 bytes", "ResourceExhausted"},
		{"unknown function", "POST", "/nothing", nil, "x", 404, `serves "nothing"`, "NotFound"},
		{"another server's step", "POST", "/elsewhere.echo", nil, "x", 400, `is for server "elsewhere"`, "FailedPrecondition"},
		{"no function", "GET", "/", nil, "", 400, "name the function in the path", "InvalidArgument"},
		{"function error", "POST", "/fail", nil, "x", 500, "unexpected EOF", "Unknown"},
		{"no reply", "POST", "/none", nil, "x", 204, "", ""},
		{"deadline", "POST", "/slow", map[string]string{parts.TimeoutHeader: "200"}, "x", 504, "", "DeadlineExceeded"},
		{"bad timeout", "POST", "/echo", map[string]string{parts.TimeoutHeader: "soon"}, "x", 400, "give the milliseconds", "InvalidArgument"},
		{"method", "PUT", "/echo", nil, "x", 405, "use GET or POST", "InvalidArgument"},
	} {
		tc.do(t, hc, base)
	}
}

// A standalone server with the HTTP gateway over TLS, taking tokens:
// HTTPS and HTTP/2 work, a missing or unknown token is 401, a token that
// does not allow sending is 403.
func TestHTTPGatewayTLSAndTokens(t *testing.T) {
	t.Parallel()
	ca := palmtest.NewCA(t, "http")
	cert, key, _ := ca.Issue(t, "server")
	serverTLS, err := palm.TLSFiles{Cert: cert, Key: key}.Config()
	if err != nil {
		t.Fatal(err)
	}
	web := palmtest.FreeAddr(t)
	srv, err := pipeline.NewServer("server", pipeline.HTTP(web), palm.WithTLS(serverTLS),
		palm.WithTokens(map[string]palm.Permission{"client-secret-0123456789": palm.ClientRole, "worker-secret-0123456789": palm.WorkerRole}),
		palm.WithLogger(palmtest.Logger(t, 0)))
	if err != nil {
		t.Fatal(err)
	}
	httpFunctions(srv.HandleFunc)
	palmtest.ServeTCP(t, srv)

	clientTLS, err := palm.TLSFiles{CACert: ca.File}.Config()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS, ForceAttemptHTTP2: true}}
	defer hc.CloseIdleConnections()
	base := "https://" + web
	good := map[string]string{"Authorization": "Bearer client-secret-0123456789"}
	waitServes(t, hc, base+"/ack", good)
	for _, tc := range []httpCase{
		{"TLS with a token", "POST", "/echo", good, "secret", 200, "secret", ""},
		{"no token", "POST", "/echo", nil, "x", 401, "requires authentication", "Unauthenticated"},
		{"unknown token", "POST", "/echo", map[string]string{"Authorization": "Bearer not-a-known-token-000000"}, "x", 401, "not known", "Unauthenticated"},
		{"a worker's token", "POST", "/echo", map[string]string{"Authorization": "Bearer worker-secret-0123456789"}, "x", 403, "does not allow sending", "PermissionDenied"},
	} {
		tc.do(t, hc, base)
	}
	req, _ := http.NewRequest("POST", base+"/upper", strings.NewReader("h2"))
	req.Header.Set("Authorization", good["Authorization"])
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Errorf("served over %s, want HTTP/2", resp.Proto)
	}
	if resp, err := http.Get("http://" + web + "/ack"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("the TLS gateway answered plaintext HTTP with %s", resp.Status)
		}
	}
}

// A draining HTTP gateway answers 503 with Retry-After; one past its
// concurrency, too.
func TestHTTPGatewayDrainAndBusy(t *testing.T) {
	t.Parallel()
	web := palmtest.FreeAddr(t)
	gw, err := parts.NewHTTPGateway(parts.HTTPGatewayConfig{Address: web, MaxConcurrent: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := compose.New("server", palm.WithLogger(palmtest.Logger(t, 0)))
	if err != nil {
		t.Fatal(err)
	}
	fns := map[string]palm.Handler{}
	httpFunctions(func(name string, f func(context.Context, []byte) ([]byte, error)) { fns[name] = palm.HandlerFunc(f) })
	c.Inbound(compose.HTTP, gw, compose.Functions)
	c.Outbound(compose.Functions, &parts.Functions{Lookup: func(f string) (palm.Handler, bool) { h, ok := fns[f]; return h, ok }, Concurrency: 2}, compose.Pub)
	c.Outbound(compose.Pub, &parts.Replies{}, "")
	palmtest.ServeTCP(t, c)
	hc := &http.Client{Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	base := "http://" + web
	waitServes(t, hc, base+"/ack", nil)
	slow := make(chan struct{})
	go func() {
		defer close(slow)
		req, _ := http.NewRequest("POST", base+"/slow", nil)
		req.Header.Set(parts.TimeoutHeader, "1500")
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(200 * time.Millisecond) // the slow request takes the one place
	httpCase{"busy", "POST", "/echo", nil, "x", 503, "busy", "Unavailable"}.do(t, hc, base)
	<-slow
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := gw.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	httpCase{"draining", "POST", "/echo", nil, "x", 503, "shutting down", "Unavailable"}.do(t, hc, base)
}

// Every curl command of docs/http.md works as written, against a server at
// free ports instead of 127.0.0.1:8888, and prints what the page says.
func TestHTTPDoc(t *testing.T) {
	t.Parallel()
	web := palmtest.FreeAddr(t)
	srv, err := pipeline.NewServer("my_server", pipeline.HTTP(web), palm.WithLogger(palmtest.Logger(t, 0)))
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) { return append([]byte("you sent me "), m...), nil })
	srv.HandleFunc("quiet", func(context.Context, []byte) ([]byte, error) { return nil, nil })
	palmtest.ServeTCP(t, srv)
	palmtest.Eventually(t, 10*time.Second, "the HTTP gateway serves", func() bool {
		conn, err := net.Dial("tcp", web)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	for _, block := range markedBlocks(t, "http.md", "curl: plaintext") {
		out, failed := runDoc(t, strings.ReplaceAll(block, "127.0.0.1:8888", web), web, t.TempDir())
		for _, f := range failed {
			t.Errorf("a documented command failed: %s\n%s", f, out)
		}
		for _, want := range []string{"you sent me a message\n", "you sent me \n", "you sent me one\n", "204\n", "HTTP/1.1 404 Not Found", "Palm-Status: NotFound", `"code":"NotFound"`} {
			if !strings.Contains(out, want) {
				t.Errorf("the documented commands did not print %q:\n%s", want, out)
			}
		}
	}
}
