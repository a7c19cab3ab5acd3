// Package route is the deterministic core of message addressing: it parses
// the `function` field of a PalmMessage into steps, picks the step at
// `stage`, and checks a message against the server it reached. It has no
// goroutines and no I/O, and every error it returns carries the gRPC code the
// wire must show.
package route

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// MaxFunctionLen is the longest `function` field accepted, in bytes.
const MaxFunctionLen = 4096

// MaxIDLen is the longest `client` or `pipeline` field accepted, in bytes.
const MaxIDLen = 1024

// MaxCacheLen is the longest `cache` field accepted, in bytes.
const MaxCacheLen = 16 << 10

// Step is one `server.function` step.
type Step = palm.Step

// ParseStep parses one `server.function` step. Both parts must be non-empty
// and contain no dot and no white space (ASCII: space, tab, newline,
// vertical tab, form feed, carriage return).
func ParseStep(s string) (Step, error) {
	dot, dots, blank := -1, 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '.':
			if dot < 0 {
				dot = i
			}
			dots++
		case ' ', '\t', '\n', '\v', '\f', '\r':
			blank = true
		}
	}
	switch {
	case s == "":
		return Step{}, status.Error(codes.InvalidArgument, "the function is empty; expected server.function")
	case dot < 0:
		return Step{}, status.Errorf(codes.InvalidArgument, "malformed step %q: expected server.function", s)
	case dot == 0 || dot == len(s)-1:
		return Step{}, status.Errorf(codes.InvalidArgument, "malformed step %q: the server and the function must both be named", s)
	case dots > 1 || blank:
		return Step{}, status.Errorf(codes.InvalidArgument, "malformed step %q: expected one dot, between server and function, and no spaces", s)
	}
	return Step{Server: s[:dot], Function: s[dot+1:]}, nil
}

// checkFunction checks what every `function` field must be, whatever its
// steps.
func checkFunction(function string) error {
	switch {
	case len(function) > MaxFunctionLen:
		return status.Errorf(codes.InvalidArgument, "the function field is %d bytes; the limit is %d", len(function), MaxFunctionLen)
	case !utf8.ValidString(function):
		return status.Error(codes.InvalidArgument, "the function field is not valid UTF-8")
	case function == "":
		return status.Error(codes.InvalidArgument, "the function is empty; expected server.function")
	}
	return nil
}

// eachStep parses the steps of function in order, calling f with each,
// until f returns false; it allocates nothing.
func eachStep(function string, f func(i int, s Step) bool) error {
	if err := checkFunction(function); err != nil {
		return err
	}
	rest := function
	for i := 0; ; i++ {
		part, tail, more := strings.Cut(rest, " ")
		if part == "" {
			return status.Errorf(codes.InvalidArgument, "malformed function %q: steps are server.function names separated by single spaces", function)
		}
		s, err := ParseStep(part)
		if err != nil {
			return err
		}
		if !f(i, s) || !more {
			return nil
		}
		rest = tail
	}
}

// ParseSteps parses a `function` field: steps separated by single spaces.
func ParseSteps(function string) ([]Step, error) {
	steps := make([]Step, 0, strings.Count(function, " ")+1)
	err := eachStep(function, func(_ int, s Step) bool { steps = append(steps, s); return true })
	if err != nil {
		return nil, err
	}
	return steps, nil
}

// Current returns the step at the message's stage.
func Current(m *palmv1.PalmMessage) (Step, error) {
	fn := m.GetFunction()
	stage := m.GetStage()
	var (
		current Step
		n       int64
	)
	err := eachStep(fn, func(i int, s Step) bool {
		if int64(i) == stage {
			current = s
		}
		n++
		return true
	})
	if err != nil {
		return Step{}, err
	}
	if stage < 0 || stage >= n {
		return Step{}, status.Errorf(codes.InvalidArgument, "stage %d is outside the %d step(s) of %q", stage, n, fn)
	}
	return current, nil
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

// MaxErrorLen bounds the message of an Error that ErrorOf makes, in bytes.
const MaxErrorLen = 16 << 10

// ErrorOf converts an error into the Error a failed reply or task
// carries: the one mapping from a Go error to the wire. It keeps the gRPC
// code of a status error (DeadlineExceeded or Canceled for a context's
// error, Unknown for any other error, and for a status that claims OK: a
// failure is never a success), and its message made valid UTF-8 (or the
// stream could not carry it) and cut to MaxErrorLen bytes. The Error names
// step, unless step is the zero Step (the message named no step that could
// be read), when it names none.
func ErrorOf(err error, step Step) *palmv1.Error {
	st, ok := status.FromError(err)
	if !ok && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		// A function that gave up with its context: say which way.
		st = status.New(status.FromContextError(err).Code(), err.Error())
	}
	code := st.Code()
	if code == codes.OK {
		code = codes.Unknown
	}
	msg := strings.ToValidUTF8(st.Message(), "\uFFFD")
	if len(msg) > MaxErrorLen {
		msg = strings.ToValidUTF8(msg[:MaxErrorLen], "") + "…"
	}
	e := &palmv1.Error{Code: uint32(code), Message: msg}
	if step != (Step{}) {
		e.Function = step.String()
	}
	return e
}

// Code is the gRPC code of a reply's Error: the one mapping back from the
// wire. It is Unknown when the Error's is OK (a failure is never a
// success) or one gRPC does not define.
func Code(e *palmv1.Error) codes.Code {
	c := codes.Code(e.GetCode())
	if c == codes.OK || c > codes.Unauthenticated {
		return codes.Unknown
	}
	return c
}

// Status converts a reply's Error back into a gRPC status error, of the
// code Code gives, its message prefixed by the step that failed.
func Status(e *palmv1.Error) error {
	if e == nil {
		return nil
	}
	msg := e.GetMessage()
	if e.GetFunction() != "" {
		msg = fmt.Sprintf("%s: %s", e.GetFunction(), msg)
	}
	return status.Error(Code(e), msg)
}
