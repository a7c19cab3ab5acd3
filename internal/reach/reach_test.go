package reach

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The texts are those grpc-go 1.85 and crypto/tls report for each case.
func TestDiagnose(t *testing.T) {
	unavailable := func(msg string) error { return status.Error(codes.Unavailable, msg) }
	tests := []struct {
		err  error
		want Problem
	}{
		{nil, Unknown},
		{unavailable(`connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:5999: connect: connection refused"`), Refused},
		{unavailable("name resolver error: produced zero addresses"), NoHost},
		{unavailable(`connection error: desc = "transport: Error while dialing: dial tcp: lookup nowhere.invalid: no such host"`), NoHost},
		{unavailable(`connection error: desc = "error reading server preface: EOF"`), NotGRPC},
		{unavailable(`connection error: desc = "transport: authentication handshake failed: tls: first record does not look like a TLS handshake"`), NoTLS},
		{unavailable(`connection error: desc = "error reading server preface: remote error: tls: certificate required"`), CertRequired},
		{unavailable(`connection error: desc = "error reading server preface: remote error: tls: unknown certificate authority"`), ClientUntrusted},
		{unavailable(`connection error: desc = "transport: authentication handshake failed: x509: certificate signed by unknown authority"`), ServerUntrusted},
		{unavailable(`connection error: desc = "transport: authentication handshake failed: x509: certificate is valid for my_server, localhost, not elsewhere"`), ServerUntrusted},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), NoAnswer},
		{unavailable("the server is shutting down"), Unknown},
	}
	for _, tt := range tests {
		if got := Diagnose(tt.err); got != tt.want {
			t.Errorf("Diagnose(%v) = %q; want %q", tt.err, got.Describe(), tt.want.Describe())
		}
	}
}

func TestErrorIsAStatus(t *testing.T) {
	cause := status.Error(codes.Unavailable, "connect: connection refused")
	err := error(&Error{Address: "127.0.0.1:5999", Problem: Refused, Hint: "start it", Cause: cause})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("code %v; want Unavailable", status.Code(err))
	}
	want := "cannot reach 127.0.0.1:5999: nothing listens there (connection refused); start it (connect: connection refused)"
	if got := status.Convert(err).Message(); got != want {
		t.Errorf("message %q; want %q", got, want)
	}
	if !errors.Is(err, cause) {
		t.Error("the error does not unwrap to its cause")
	}
}

// Probe tells a server that closes a plaintext connection because it
// wants TLS from one that is not gRPC at all.
func TestProbe(t *testing.T) {
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	if got := Probe(context.Background(), plain.Addr().String(), NotGRPC, nil); got != NotGRPC {
		t.Errorf("Probe of a server that is not TLS = %q; want %q", got.Describe(), NotGRPC.Describe())
	}
	for _, addr := range []string{"dns:///localhost:1", "passthrough:///bufnet"} {
		if got := Probe(context.Background(), addr, NotGRPC, nil); got != NotGRPC {
			t.Errorf("Probe(%q) = %q; want it unchanged", addr, got.Describe())
		}
	}
	if got := Probe(context.Background(), plain.Addr().String(), Refused, nil); got != Refused {
		t.Errorf("Probe of another problem changed it to %q", got.Describe())
	}
	if !strings.Contains(WantsTLS.Describe(), "TLS") {
		t.Error("WantsTLS does not mention TLS")
	}
}
