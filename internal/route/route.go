// Package route is the deterministic core of message addressing: it parses
// the `function` field of a PalmMessage into steps, picks the step at
// `stage`, and checks a message against the server it reached. It has no
// goroutines and no I/O, and every error it returns carries the gRPC code the
// wire must show.
package route

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// MaxFunctionLen is the longest `function` field accepted, in bytes.
const MaxFunctionLen = 4096

// MaxIDLen is the longest `client` or `pipeline` field accepted, in bytes.
const MaxIDLen = 1024

// MaxCacheLen is the longest `cache` field accepted, in bytes.
const MaxCacheLen = 16 << 10

// Step is one `server.function` step.
type Step struct {
	Server   string
	Function string
}

// String returns the step as `server.function`.
func (s Step) String() string { return s.Server + "." + s.Function }

// ParseStep parses one `server.function` step. Both parts must be non-empty
// and contain no dot or space.
func ParseStep(s string) (Step, error) {
	server, fn, ok := strings.Cut(s, ".")
	switch {
	case s == "":
		return Step{}, status.Error(codes.InvalidArgument, "the function is empty; expected server.function")
	case !ok:
		return Step{}, status.Errorf(codes.InvalidArgument, "malformed step %q: expected server.function", s)
	case server == "" || fn == "":
		return Step{}, status.Errorf(codes.InvalidArgument, "malformed step %q: the server and the function must both be named", s)
	case strings.ContainsAny(fn, ". \t\n") || strings.ContainsAny(server, " \t\n"):
		return Step{}, status.Errorf(codes.InvalidArgument, "malformed step %q: expected one dot, between server and function, and no spaces", s)
	}
	return Step{Server: server, Function: fn}, nil
}

// ParseSteps parses a `function` field: steps separated by single spaces.
func ParseSteps(function string) ([]Step, error) {
	if len(function) > MaxFunctionLen {
		return nil, status.Errorf(codes.InvalidArgument, "the function field is %d bytes; the limit is %d", len(function), MaxFunctionLen)
	}
	if !utf8.ValidString(function) {
		return nil, status.Error(codes.InvalidArgument, "the function field is not valid UTF-8")
	}
	if function == "" {
		return nil, status.Error(codes.InvalidArgument, "the function is empty; expected server.function")
	}
	parts := strings.Split(function, " ")
	steps := make([]Step, len(parts))
	for i, p := range parts {
		if p == "" {
			return nil, status.Errorf(codes.InvalidArgument, "malformed function %q: steps are server.function names separated by single spaces", function)
		}
		s, err := ParseStep(p)
		if err != nil {
			return nil, err
		}
		steps[i] = s
	}
	return steps, nil
}

// Current returns the step at the message's stage.
func Current(m *palmv1.PalmMessage) (Step, error) {
	fn := m.GetFunction()
	stage := m.GetStage()
	// Fast path: a single step needs no slice.
	if stage == 0 && len(fn) <= MaxFunctionLen && !strings.Contains(fn, " ") {
		if !utf8.ValidString(fn) {
			return Step{}, status.Error(codes.InvalidArgument, "the function field is not valid UTF-8")
		}
		return ParseStep(fn)
	}
	steps, err := ParseSteps(fn)
	if err != nil {
		return Step{}, err
	}
	if stage < 0 || stage >= int64(len(steps)) {
		return Step{}, status.Errorf(codes.InvalidArgument, "stage %d is outside the %d step(s) of %q", stage, len(steps), fn)
	}
	return steps[stage], nil
}

// Check is what a server verifies of a message at its door.
type Check struct {
	// Server is the name of the server the message reached.
	Server string
	// MaxPayload is the largest payload accepted, in bytes; 0 for no limit.
	MaxPayload int
	// Known reports whether the server serves the function; nil accepts any.
	Known func(function string) bool
}

// Admit checks m and returns the step it asks this server for, or an error
// with the code for the wire: InvalidArgument for a missing message, a
// malformed step, a stage out of range or oversize identifiers;
// FailedPrecondition for a step naming another server; NotFound for an
// unknown function; ResourceExhausted for a payload over the limit.
func (c Check) Admit(m *palmv1.PalmMessage) (Step, error) {
	if m == nil {
		return Step{}, status.Error(codes.InvalidArgument, "no message: the request must carry a PalmMessage")
	}
	if len(m.GetClient()) > MaxIDLen || len(m.GetPipeline()) > MaxIDLen {
		return Step{}, status.Errorf(codes.InvalidArgument, "the client and pipeline fields may be at most %d bytes", MaxIDLen)
	}
	if len(m.GetCache()) > MaxCacheLen {
		return Step{}, status.Errorf(codes.InvalidArgument, "the cache field is %d bytes; the limit is %d", len(m.GetCache()), MaxCacheLen)
	}
	step, err := Current(m)
	if err != nil {
		return Step{}, err
	}
	if step.Server != c.Server {
		return step, status.Errorf(codes.FailedPrecondition, "step %q is for server %q, but this is server %q", step, step.Server, c.Server)
	}
	if c.Known != nil && !c.Known(step.Function) {
		return step, status.Errorf(codes.NotFound, "server %q has no function %q", c.Server, step.Function)
	}
	if c.MaxPayload > 0 && len(m.GetPayload()) > c.MaxPayload {
		return step, status.Errorf(codes.ResourceExhausted, "payload is %d bytes; the limit is %d bytes", len(m.GetPayload()), c.MaxPayload)
	}
	return step, nil
}

// ErrorOf converts an error into the Error a failed reply carries, keeping
// the gRPC code of a status error (Unknown for any other error).
func ErrorOf(err error, step Step) *palmv1.Error {
	st, _ := status.FromError(err)
	return &palmv1.Error{Code: uint32(st.Code()), Message: st.Message(), Function: step.String()}
}

// Status converts a reply's Error back into a gRPC status error.
func Status(e *palmv1.Error) error {
	if e == nil {
		return nil
	}
	msg := e.GetMessage()
	if e.GetFunction() != "" {
		msg = fmt.Sprintf("%s: %s", e.GetFunction(), msg)
	}
	c := codes.Code(e.GetCode())
	if c == codes.OK {
		c = codes.Unknown
	}
	return status.Error(c, msg)
}
