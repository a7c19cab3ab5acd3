// Package reach says why a gRPC connection never became ready, in words
// that name the fix: nothing listens at the address, TLS on one side and
// plaintext on the other, a client certificate missing or not trusted.
//
// The client and the palm command share it: the client's Error speaks of
// the Go options that fix a problem, and the command rewrites the hint in
// terms of its flags from the same Problem.
package reach

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Problem is why a connection never became ready.
type Problem int

const (
	// Unknown: none of the reasons below; the cause says what gRPC saw.
	Unknown Problem = iota
	// Refused: nothing listens at the address.
	Refused
	// NoHost: the address's host name does not resolve.
	NoHost
	// NoAnswer: the connection was not made within the bound (the
	// attempt went unanswered, as when a firewall drops it).
	NoAnswer
	// WantsTLS: the server speaks TLS and the dialer spoke plaintext.
	WantsTLS
	// NoTLS: the server speaks plaintext and the dialer spoke TLS.
	NoTLS
	// CertRequired: the server requires a client certificate (mutual TLS)
	// and the dialer gave none.
	CertRequired
	// ClientUntrusted: the server refused the dialer's client certificate.
	ClientUntrusted
	// ServerUntrusted: the dialer does not trust the server's certificate
	// (signed by an unknown authority, or issued for another name).
	ServerUntrusted
	// NotGRPC: the server closed the connection without speaking gRPC.
	NotGRPC
)

// Describe says what the problem is, as the end of "cannot reach ADDRESS: ".
func (p Problem) Describe() string {
	switch p {
	case Refused:
		return "nothing listens there (connection refused)"
	case NoHost:
		return "its host name does not resolve"
	case NoAnswer:
		return "no answer"
	case WantsTLS:
		return "it speaks TLS, and this connection is plaintext"
	case NoTLS:
		return "it does not speak TLS, and this connection uses TLS"
	case CertRequired:
		return "it requires a client certificate (mutual TLS), and none was given"
	case ClientUntrusted:
		return "it does not accept the client certificate given"
	case ServerUntrusted:
		return "its certificate is not trusted"
	case NotGRPC:
		return "it closed the connection without speaking gRPC"
	}
	return "the connection failed"
}

// Error is the failure of a call on a connection that never became ready.
// Its gRPC status is Unavailable, with Error() as the message, so
// status.Code and status.Convert see it as a status error.
type Error struct {
	// Address is the address dialled.
	Address string
	// Problem is why the connection failed.
	Problem Problem
	// Hint says what to do, in the caller's terms; empty for none.
	Hint string
	// Cause is the error gRPC reported.
	Cause error
}

// Error says what failed, why, and the fix: "cannot reach ADDRESS: WHY;
// HINT (gRPC's text)".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cannot reach %s: %s", e.Address, e.Problem.Describe())
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	if e.Cause != nil {
		fmt.Fprintf(&b, " (%s)", status.Convert(e.Cause).Message())
	}
	return b.String()
}

// GRPCStatus is the error as a gRPC status.
func (e *Error) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, e.Error())
}

// Unwrap returns Cause.
func (e *Error) Unwrap() error { return e.Cause }

// Diagnose reads the Problem in the error gRPC reported for a connection
// that never became ready. "error reading server preface: EOF" is not
// enough to tell a TLS server from a server that is not gRPC at all:
// Diagnose returns NotGRPC for it, and Probe tells them apart.
func Diagnose(err error) Problem {
	if err == nil {
		return Unknown
	}
	msg := status.Convert(err).Message()
	has := func(parts ...string) bool {
		for _, p := range parts {
			if strings.Contains(msg, p) {
				return true
			}
		}
		return false
	}
	switch {
	case has("connection refused"):
		return Refused
	case has("no such host", "produced zero addresses"):
		return NoHost
	case has("first record does not look like a TLS handshake"):
		return NoTLS
	// An alert the server sent: its verdict on the client's certificate.
	case has("remote error: tls: certificate required"):
		return CertRequired
	case has("remote error: tls: unknown certificate authority", "remote error: tls: bad certificate"):
		return ClientUntrusted
	// The client's verdict on the server's certificate.
	case has("x509:", "tls: failed to verify"):
		return ServerUntrusted
	case has("error reading server preface: EOF", "connection reset by peer", "broken pipe"):
		return NotGRPC
	case status.Code(err) == codes.DeadlineExceeded:
		return NoAnswer
	}
	return Unknown
}

// Probe refines NotGRPC, the problem of a server that closed the
// connection: for a dialer that spoke plaintext (cfg nil), a server that
// completes a TLS handshake or answers with a TLS alert is WantsTLS; for
// a dialer that spoke TLS with cfg, the alert the server sends after the
// handshake (TLS 1.3 checks the client's certificate then, and gRPC may
// see a broken pipe before it reads the alert) tells CertRequired or
// ClientUntrusted. Probe dials address as TCP host:port, for at most a
// second and at most until ctx ends; any other problem, or an address
// that is not host:port, comes back unchanged.
func Probe(ctx context.Context, address string, p Problem, cfg *tls.Config) Problem {
	if p != NotGRPC || strings.Contains(address, "://") || strings.Contains(address, ":///") {
		return p
	}
	if _, _, err := net.SplitHostPort(address); err != nil {
		return p
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if cfg == nil {
		d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}} // only asks whether it speaks TLS
		conn, err := d.DialContext(ctx, "tcp", address)
		if err == nil {
			conn.Close()
			return WantsTLS
		}
		if remoteAlert(err) {
			return WantsTLS
		}
		return p
	}
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"} // as gRPC offers
	d := tls.Dialer{Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		if q := Diagnose(err); remoteAlert(err) && q != Unknown {
			return q
		}
		return p
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(dl)
	}
	if _, err := conn.Read(make([]byte, 1)); remoteAlert(err) {
		if q := Diagnose(err); q != Unknown {
			return q
		}
	}
	return p
}

// remoteAlert reports whether err is a TLS alert the other side sent.
func remoteAlert(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}
