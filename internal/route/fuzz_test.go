package route

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// ruleSteps is the fuzz target's oracle: the rules of a `function` field
// as message.proto states them, written again without the code of this
// package. The field is UTF-8 of at most 4096 bytes (the door's limit,
// which the protos do not state); it is steps separated by single spaces;
// a step is `server.function`, both parts non-empty, with no dot and no
// white space in either. It returns the steps, or false when the field
// breaks a rule.
func ruleSteps(function string) ([]Step, bool) {
	if function == "" || len(function) > 4096 || !utf8.ValidString(function) {
		return nil, false
	}
	var steps []Step
	for _, part := range strings.Split(function, " ") {
		server, fn, found := strings.Cut(part, ".")
		if !found || server == "" || fn == "" || strings.ContainsAny(server+fn, ". \t\n\v\f\r") {
			return nil, false
		}
		steps = append(steps, Step{Server: server, Function: fn})
	}
	return steps, true
}

// FuzzCurrent checks ParseSteps and Current against the rules (ruleSteps),
// both ways: a well-formed field is parsed into the steps the rules read
// in it, and Current picks the one at the stage when the stage is in
// range; anything else is refused with InvalidArgument and a message. The
// seeds hold well-formed fields, so a parser that refuses everything fails
// them, as does one that admits what the rules refuse.
//
//	go test -run '^$' -fuzz '^FuzzCurrent$' -fuzztime 30s ./internal/route
func FuzzCurrent(f *testing.F) {
	for _, seed := range []struct {
		function string
		stage    int64
	}{
		// Well-formed.
		{"s.f", 0},
		{"a.b c.d", 1},
		{"サーバ.関数 s.f", 1},
		{"s." + strings.Repeat("f", 4094), 0}, // 4096 bytes, the limit
		{"a-b.c_d e:f.0", 1},
		// Ill-formed.
		{"s." + strings.Repeat("f", 4095), 0},
		{"", 0}, {" ", 0}, {"a..b", 0}, {"s.f  t.g", 0}, {"\xff.f", 0},
		{"s.f\rt.g", 0}, {"s.f\v", 0}, {"s.f\f", 0}, {"s.f", 1}, {"s.f", -1},
	} {
		f.Add(seed.function, seed.stage)
	}
	f.Fuzz(func(t *testing.T, function string, stage int64) {
		want, wellFormed := ruleSteps(function)
		steps, err := ParseSteps(function)
		switch {
		case wellFormed && err != nil:
			t.Fatalf("ParseSteps(%q) refused a well-formed field: %v", function, err)
		case wellFormed && !slices.Equal(steps, want):
			t.Fatalf("ParseSteps(%q) = %v; the rules read %v", function, steps, want)
		case !wellFormed && err == nil:
			t.Fatalf("ParseSteps(%q) = %v; the rules refuse it", function, steps)
		case !wellFormed:
			wantRefusal(t, "ParseSteps", function, err)
		}

		step, err := Current(&palmv1.PalmMessage{Function: function, Stage: stage})
		if wellFormed && stage >= 0 && stage < int64(len(want)) {
			if err != nil || step != want[stage] {
				t.Fatalf("Current(%q, stage %d) = %v, %v; the rules read %v", function, stage, step, err, want[stage])
			}
			return
		}
		if err == nil {
			t.Fatalf("Current(%q, stage %d) = %v; the rules refuse it", function, stage, step)
		}
		wantRefusal(t, "Current", function, err)
	})
}

// wantRefusal checks that err refuses a field with InvalidArgument and a
// message a person can read.
func wantRefusal(t *testing.T, what, function string, err error) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || st.Message() == "" || !utf8.ValidString(st.Message()) {
		t.Fatalf("%s(%q) refused it with %v %q; want InvalidArgument and a message", what, function, st.Code(), st.Message())
	}
}
