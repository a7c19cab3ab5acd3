package examples_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Turning a master into a web server with the HTTP gateway: a Go HTTP
// client and curl get the worker's reply through the composed master.
func TestHTTPGateway(t *testing.T) {
	m := start(t, "http-gateway/master")
	m.waitFor(t, "serving HTTP")
	w := start(t, "http-gateway/worker", "worker1")
	m.waitFor(t, "worker joined")
	if out := lines(runClient(t, "http-gateway/client")); len(out) != 1 || out[0] != "acknowledged" {
		t.Errorf("the client printed %q, want acknowledged", out)
	}
	var web string
	for _, kv := range addresses(t) {
		if v, ok := strings.CutPrefix(kv, "PALM_HTTP="); ok {
			web = v
		}
	}
	out, err := exec.Command("curl", "-s", "--max-time", "10", "http://"+web+"/function").CombinedOutput()
	if err != nil || string(out) != "acknowledged" {
		t.Errorf("curl: %q, %v", out, err)
	}
	w.stop(t)
	m.stop(t)
}
