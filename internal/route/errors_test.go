package route

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// A refusal of a message whose step cannot be read names no step: not ".",
// which reads as a step and is none.
func TestErrorOfNoStep(t *testing.T) {
	_, err := Current(&palmv1.PalmMessage{Function: "s.f", Stage: 7})
	e := ErrorOf(err, Step{})
	if e.GetFunction() != "" || codes.Code(e.GetCode()) != codes.InvalidArgument {
		t.Fatalf("ErrorOf with no step: %v", e)
	}
	if got := Status(e).Error(); got != "rpc error: code = InvalidArgument desc = "+status.Convert(err).Message() {
		t.Fatalf("Status: %q", got)
	}
	if e := ErrorOf(err, Step{Server: "s", Function: "f"}); e.GetFunction() != "s.f" {
		t.Fatalf("ErrorOf with a step: %v", e)
	}
}

// An Error with a code gRPC does not define (a peer's invention) becomes
// Unknown, as OK does: a failure with a code the reader can act on.
func TestStatusUndefinedCode(t *testing.T) {
	for _, c := range []uint32{0, 17, 999, 1 << 31} {
		if got := status.Code(Status(&palmv1.Error{Code: c, Message: "m"})); got != codes.Unknown {
			t.Errorf("code %d: %v; want Unknown", c, got)
		}
	}
	if got := status.Code(Status(&palmv1.Error{Code: uint32(codes.Unauthenticated)})); got != codes.Unauthenticated {
		t.Errorf("Unauthenticated became %v", got)
	}
}

// okStatus is an error whose status claims success.
type okStatus struct{}

func (okStatus) Error() string { return "it went fine, says the error" }
func (okStatus) GRPCStatus() *status.Status {
	return status.New(codes.OK, "it went fine, says the error")
}

// ErrorOf is the one mapping of a Go error to the wire: codes kept, context
// errors told apart, a plain error Unknown, never OK, and a message the
// stream can carry.
func TestErrorOfNormalises(t *testing.T) {
	step := Step{Server: "s", Function: "f"}
	long := strings.Repeat("é", MaxErrorLen) // two bytes a rune
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"status", status.Error(codes.NotFound, "gone"), codes.NotFound, "gone"},
		{"plain error", errors.New("broke"), codes.Unknown, "broke"},
		{"deadline", fmt.Errorf("gave up: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "gave up: context deadline exceeded"},
		{"canceled", context.Canceled, codes.Canceled, "context canceled"},
		{"a status claiming OK", okStatus{}, codes.Unknown, "it went fine, says the error"},
		{"not UTF-8", errors.New("bad \xff byte"), codes.Unknown, "bad \uFFFD byte"},
		{"too long", errors.New(long), codes.Unknown, long[:MaxErrorLen] + "…"},
		{"too long, cut inside a rune", errors.New("x" + long), codes.Unknown, "x" + long[:MaxErrorLen-2] + "…"},
	} {
		e := ErrorOf(tc.err, step)
		if codes.Code(e.GetCode()) != tc.code || e.GetMessage() != tc.msg || e.GetFunction() != "s.f" {
			got := e.GetMessage()
			if len(got) > 40 {
				got = fmt.Sprintf("%.40s... (%d bytes)", got, len(got))
			}
			t.Errorf("%s: ErrorOf = %v %q %q; want %v, %d bytes", tc.name, codes.Code(e.GetCode()), got, e.GetFunction(), tc.code, len(tc.msg))
		}
		if !utf8.ValidString(e.GetMessage()) {
			t.Errorf("%s: the message is not valid UTF-8", tc.name)
		}
	}
}

func TestCode(t *testing.T) {
	for _, tc := range []struct {
		e    *palmv1.Error
		want codes.Code
	}{
		{nil, codes.Unknown},
		{&palmv1.Error{Code: uint32(codes.OK)}, codes.Unknown},
		{&palmv1.Error{Code: uint32(codes.NotFound)}, codes.NotFound},
		{&palmv1.Error{Code: uint32(codes.Unauthenticated)}, codes.Unauthenticated},
		{&palmv1.Error{Code: 17}, codes.Unknown},
	} {
		if got := Code(tc.e); got != tc.want {
			t.Errorf("Code(%v) = %v; want %v", tc.e, got, tc.want)
		}
	}
}
