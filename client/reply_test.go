package client

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// An error reply names the step it says failed; when it says none, the
// only step of a one-step function, and no step of a pipeline's. A code
// gRPC does not define, like OK, becomes Unknown.
func TestReplyError(t *testing.T) {
	for _, tc := range []struct {
		function string
		e        *palmv1.Error
		step     string
		code     codes.Code
		text     string
	}{
		{"s.f", &palmv1.Error{Code: uint32(codes.NotFound), Message: "m", Function: "s.f"}, "s.f", codes.NotFound, "message 3 failed in s.f: m (code NotFound)"},
		{"s.f t.g", &palmv1.Error{Code: uint32(codes.NotFound), Message: "m", Function: "t.g"}, "t.g", codes.NotFound, "message 3 failed in t.g: m (code NotFound)"},
		{"s.f", &palmv1.Error{Code: uint32(codes.Aborted), Message: "m"}, "s.f", codes.Aborted, "message 3 failed in s.f: m (code Aborted)"},
		{"s.f t.g", &palmv1.Error{Code: uint32(codes.InvalidArgument), Message: "m"}, "", codes.InvalidArgument, "message 3 failed: m (code InvalidArgument)"},
		{"s.f", &palmv1.Error{Code: 0, Message: "m"}, "s.f", codes.Unknown, "message 3 failed in s.f: m (code Unknown)"},
		{"s.f", &palmv1.Error{Code: 999, Message: "m"}, "s.f", codes.Unknown, "message 3 failed in s.f: m (code Unknown)"},
	} {
		err := replyError(3, tc.function, tc.e)
		if err.Function != tc.step || status.Code(err) != tc.code || err.Error() != tc.text {
			t.Errorf("%q, %v: %q in %q, %v; want %q in %q, %v", tc.function, tc.e, err.Error(), err.Function, status.Code(err), tc.text, tc.step, tc.code)
		}
	}
}
