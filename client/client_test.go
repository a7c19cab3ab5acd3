package client

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
)

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name    string
		server  string
		address string
		opts    []Option
		want    string // in the error
	}{
		{"empty server", "", "localhost:1", nil, "server name is empty"},
		{"dotted server", "a.b", "localhost:1", nil, "contains a dot"},
		{"spaced server", "a b", "localhost:1", nil, "white space"},
		{"bad utf8 server", "a\xff", "localhost:1", nil, "UTF-8"},
		{"empty address", "srv", "", nil, "address is empty"},
		{"empty session", "srv", "localhost:1", []Option{Session("")}, `Session(""): the session name is empty`},
		{"dotted session", "srv", "localhost:1", []Option{Session("a.b")}, "contains a dot"},
		{"zero window", "srv", "localhost:1", []Option{Window(0)}, "Window(0)"},
		{"bad size", "srv", "localhost:1", []Option{palm.WithMaxMessageSize(-1)}, "WithMaxMessageSize(-1)"},
		{"small flow window", "srv", "localhost:1", []Option{palm.WithWindowSize(1000)}, "WithWindowSize(1000): the window must be 0 (gRPC's dynamic windows) or from 65536"},
		{"huge flow window", "srv", "localhost:1", []Option{palm.WithWindowSize(1 << 30)}, "to 268435456 (256 MiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.server, tt.address, tt.opts...)
			if err == nil {
				_ = c.Close()
				t.Fatalf("New(%q, %q) succeeded; want an error containing %q", tt.server, tt.address, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%q, %q) = %v; want an error containing %q", tt.server, tt.address, err, tt.want)
			}
		})
	}
}

func TestNewDoesNoIO(t *testing.T) {
	// Nothing listens at this address; New must not notice.
	c, err := New("srv", "127.0.0.1:1", Session("s"), Window(8), palm.WithTLS(&tls.Config{}))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err == nil {
		t.Error("second Close succeeded; want an error")
	}
}

func TestClientIDsDiffer(t *testing.T) {
	ts := startServer(t)
	a, b := ts.newClient(t), ts.newClient(t)
	if a.id == b.id || len(a.id) != 32 {
		t.Errorf("client ids %q and %q: want two different 32-digit ids", a.id, b.id)
	}
}

func TestEval(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t)
	c := ts.newClient(t)

	got, err := c.Eval(ctx, "srv.echo", []byte("hello"))
	if err != nil || string(got) != "HELLO" {
		t.Fatalf("Eval(hello) = %q, %v; want HELLO", got, err)
	}
	if _, err := c.Eval(ctx, "srv.echo srv.other", []byte("two steps")); err != nil {
		t.Fatalf("Eval with two steps: %v", err)
	}

	ts.gateway.mu.Lock()
	evals := ts.gateway.evals
	ts.gateway.mu.Unlock()
	if len(evals) != 2 {
		t.Fatalf("the server saw %d Evals; want 2", len(evals))
	}
	m := evals[0]
	if m.GetClient() != c.id || m.GetStage() != 0 || m.GetSequence() != 1 || m.GetFunction() != "srv.echo" || m.GetPipeline() == "" {
		t.Errorf("the message sent was %v; want client %q, stage 0, sequence 1, function srv.echo and a pipeline", m, c.id)
	}
	if evals[0].GetPipeline() == evals[1].GetPipeline() {
		t.Errorf("two Evals shared pipeline %q; want a fresh one per call", m.GetPipeline())
	}
}

func TestEvalErrors(t *testing.T) {
	ctx := context.Background()
	ts := startServer(t)
	c := ts.newClient(t, palm.WithMaxMessageSize(1024))

	tests := []struct {
		name     string
		function string
		payload  string
		code     codes.Code
		msg      string
		sent     bool
	}{
		{"function fails", "srv.echo", payloadFail, codes.Unknown, "fail requested", true},
		{"unknown function", "srv.nothing", "x", codes.NotFound, `no function "nothing"`, true},
		{"empty function", "", "x", codes.InvalidArgument, "function is empty", false},
		{"no dot", "srvecho", "x", codes.InvalidArgument, "malformed step", false},
		{"double space", "srv.echo  srv.echo", "x", codes.InvalidArgument, "malformed", false},
		{"other server", "elsewhere.echo", "x", codes.FailedPrecondition, `this client talks to server "srv"`, false},
		{"oversize", "srv.echo", strings.Repeat("x", 1025), codes.ResourceExhausted, "the limit is 1024 bytes", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts.gateway.mu.Lock()
			before := len(ts.gateway.evals)
			ts.gateway.mu.Unlock()

			got, err := c.Eval(ctx, tt.function, []byte(tt.payload))
			if status.Code(err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Eval(%q) = %q, %v; want code %v and a message containing %q", tt.function, got, err, tt.code, tt.msg)
			}
			ts.gateway.mu.Lock()
			sent := len(ts.gateway.evals) > before
			ts.gateway.mu.Unlock()
			if sent != tt.sent {
				t.Errorf("sent = %v; want %v", sent, tt.sent)
			}
		})
	}
}

func TestEvalNoReply(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	got, err := c.Eval(context.Background(), "srv.echo", []byte(payloadNone))
	if !errors.Is(err, ErrNoReply) {
		t.Fatalf("Eval(none) = %q, %v; want ErrNoReply", got, err)
	}
}

func TestEvalErrorReply(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	// A reply that carries an error is the call's status, naming the step
	// that failed, as a unary Eval's would be.
	_, err := c.Eval(context.Background(), "srv.echo", []byte(payloadDeny))
	var me *MessageError
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "srv.other: denied") || errors.As(err, &me) {
		t.Fatalf("Eval(deny) = %v; want the status PermissionDenied naming srv.other", err)
	}
}

func TestEvalDeadline(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.Eval(ctx, "srv.echo", []byte(payloadSlow))
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Eval(slow) = %v; want DeadlineExceeded", err)
	}
}

func TestEvalAfterClose(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	_ = c.Close()
	_, err := c.Eval(context.Background(), "srv.echo", []byte("x"))
	if status.Code(err) != codes.Canceled {
		t.Fatalf("Eval after Close = %v; want Canceled", err)
	}
}

func TestMessageError(t *testing.T) {
	var err error = &MessageError{Sequence: 7, Function: "srv.echo", Err: status.Error(codes.NotFound, "gone")}
	if status.Code(err) != codes.NotFound {
		t.Errorf("status.Code = %v; want NotFound", status.Code(err))
	}
	var me *MessageError
	if !errors.As(err, &me) || me.Sequence != 7 {
		t.Errorf("errors.As = %v, %v; want the MessageError", me, err)
	}
	if want := "message 7 failed in srv.echo: gone (code NotFound)"; err.Error() != want {
		t.Errorf("Error() = %q; want %q", err.Error(), want)
	}
}
