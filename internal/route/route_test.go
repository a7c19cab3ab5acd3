package route

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

func TestAdmit(t *testing.T) {
	check := Check{Server: "s", MaxPayload: 4, Known: func(f string) bool { return f == "f" || f == "g" }}
	for _, tc := range []struct {
		function string
		stage    int64
		payload  string
		want     Step
		code     codes.Code
	}{
		{"s.f", 0, "", Step{Server: "s", Function: "f"}, codes.OK},
		{"s.f t.g", 0, "abcd", Step{Server: "s", Function: "f"}, codes.OK},
		{"t.f s.g", 1, "", Step{Server: "s", Function: "g"}, codes.OK},
		{"t.f s.g", 0, "", Step{}, codes.FailedPrecondition},
		{"s.h", 0, "", Step{}, codes.NotFound},
		{"s.f", 0, "abcde", Step{}, codes.ResourceExhausted},
		{"", 0, "", Step{}, codes.InvalidArgument},
		{"s", 0, "", Step{}, codes.InvalidArgument},
		{"s.", 0, "", Step{}, codes.InvalidArgument},
		{".f", 0, "", Step{}, codes.InvalidArgument},
		{"s.f.g", 0, "", Step{}, codes.InvalidArgument},
		{"s.f ", 0, "", Step{}, codes.InvalidArgument},
		{" s.f", 0, "", Step{}, codes.InvalidArgument},
		{"s.f\tt.g", 0, "", Step{}, codes.InvalidArgument},
		{"s.f", 1, "", Step{}, codes.InvalidArgument},
		{"s.f", -1, "", Step{}, codes.InvalidArgument},
		{"s.f t.g", 2, "", Step{}, codes.InvalidArgument},
		{"s.\xff", 0, "", Step{}, codes.InvalidArgument},
		{"s.f " + strings.Repeat("x", MaxFunctionLen), 0, "", Step{}, codes.InvalidArgument},
	} {
		got, err := check.Admit(&palmv1.PalmMessage{Function: tc.function, Stage: tc.stage, Payload: []byte(tc.payload)})
		if status.Code(err) != tc.code {
			t.Errorf("%q stage %d: %v; want %v", tc.function, tc.stage, err, tc.code)
			continue
		}
		if err == nil && got != tc.want {
			t.Errorf("%q stage %d: step %v; want %v", tc.function, tc.stage, got, tc.want)
		}
		if err != nil && status.Convert(err).Message() == "" {
			t.Errorf("%q: empty error message", tc.function)
		}
	}
	if _, err := check.Admit(nil); status.Code(err) != codes.InvalidArgument {
		t.Errorf("nil message: %v", err)
	}
	if _, err := check.Admit(&palmv1.PalmMessage{Function: "s.f", Cache: strings.Repeat("c", MaxCacheLen+1)}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("long cache field: %v", err)
	}
	long := strings.Repeat("c", MaxIDLen+1)
	if _, err := check.Admit(&palmv1.PalmMessage{Function: "s.f", Client: long}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("long client id: %v", err)
	}
}

func TestErrorRoundTrip(t *testing.T) {
	step := Step{Server: "s", Function: "f"}
	e := ErrorOf(status.Error(codes.NotFound, "gone"), step)
	if e.Code != uint32(codes.NotFound) || e.Function != "s.f" || e.Message != "gone" {
		t.Fatalf("ErrorOf: %v", e)
	}
	err := Status(e)
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "s.f: gone") {
		t.Fatalf("Status: %v", err)
	}
	if Status(nil) != nil {
		t.Fatal("Status(nil) is not nil")
	}
	if status.Code(Status(&palmv1.Error{Message: "x"})) != codes.Unknown {
		t.Fatal("an Error with code OK must not become a success")
	}
}
