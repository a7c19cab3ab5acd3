package examples_test

import (
	"strings"
	"testing"
)

// The introduction: the client prints the reply, the server logs the
// function's warning.
func TestSimple(t *testing.T) {
	server := start(t, "simple/server")
	server.waitFor(t, "serving")
	out := runClient(t, "simple/client")
	if out != "Client got: you sent me a message\n" {
		t.Errorf("client printed %q", out)
	}
	server.waitFor(t, "Got a message")
	server.stop(t)
	if !strings.Contains(server.output(), "[WARN]  my_server: Got a message") {
		t.Errorf("server log:\n%s", server.output())
	}
}

// As in the original, the order in which client and server start does not
// matter: a client started first waits for the server.
func TestSimpleClientFirst(t *testing.T) {
	c := start(t, "simple/client")
	server := start(t, "simple/server")
	c.waitFor(t, "Client got: you sent me a message")
	server.stop(t)
}

// Errors: the failing function's panic is logged with its stack trace, the
// client gets an error for that message, and the next message succeeds.
func TestErrors(t *testing.T) {
	server := start(t, "errors/server")
	server.waitFor(t, "serving")
	out := runClient(t, "errors/client")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "Client got an error: ") || !strings.Contains(lines[0], "Internal") || !strings.Contains(lines[0], "assignment to entry in nil map") ||
		lines[1] != "Client got: you sent me a message" {
		t.Errorf("client printed:\n%s", out)
	}
	server.stop(t)
	log := server.output()
	for _, want := range []string{"Got a message", "user function panicked", "my_server.foo", "assignment to entry in nil map", "examples/errors/server/main.go"} {
		if !strings.Contains(log, want) {
			t.Errorf("server log lacks %q:\n%s", want, log)
		}
	}
}
