package route

import (
	"testing"

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
