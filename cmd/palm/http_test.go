package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gopalm/palm/internal/palmtest"
)

// palm server --http answers HTTP requests with its --exec functions, and
// palm worker --http-listen serves its --exec functions over HTTP as
// palm.v1.FunctionService, in JSON over the Connect protocol.
func TestHTTPFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command and runs processes; skipped with -short")
	}
	listen, web, workerWeb := palmtest.FreeAddr(t), palmtest.FreeAddr(t), palmtest.FreeAddr(t)
	srv := startPalm(t, "server", "my_server", "--listen", listen, "--http", web, "--exec", `foo=printf 'you sent me '; cat`)
	srv.waitFor(t, "serving HTTP")
	w := startPalm(t, "worker", "web", "--http-listen", workerWeb, "--exec", `foo=printf 'processed online: '; cat`)
	w.waitFor(t, "serving the functions over HTTP")

	hc := &http.Client{Timeout: 20 * time.Second}
	defer hc.CloseIdleConnections()
	post := func(url, contentType, body string) (int, string) {
		t.Helper()
		resp, err := hc.Post(url, contentType, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("http://"+web+"/foo", "application/octet-stream", "a message"); code != 200 || body != "you sent me a message" {
		t.Errorf("palm server --http: %d %q", code, body)
	}
	code, body := post("http://"+workerWeb+"/palm.v1.FunctionService/Call", "application/json", `{"message": {"function": "server.foo", "payload": "eA=="}}`)
	// "processed online: x" in base64.
	if code != 200 || !strings.Contains(body, `"payload":"cHJvY2Vzc2VkIG9ubGluZTogeA=="`) {
		t.Errorf("palm worker --http-listen: %d %s", code, body)
	}
}
