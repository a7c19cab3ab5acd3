package parts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/route"
)

// The fuzz targets here check the door of a server against anything a peer
// can send: the seed corpora under testdata/fuzz run with every go test, and
//
//	go test -run '^$' -fuzz '^FuzzDecodePalmMessage$' -fuzztime 30s ./parts
//	go test -run '^$' -fuzz '^FuzzRouting$' -fuzztime 30s ./parts
//
// search further.

// fuzzPayloadLimit is the payload limit of the fuzzed server: small, so that
// the fuzzer reaches it.
const fuzzPayloadLimit = 64

// fuzzFunctions are the functions of the fuzzed server "s".
var fuzzFunctions = map[string]palm.Handler{
	"echo":    palm.HandlerFunc(func(_ context.Context, p []byte) ([]byte, error) { return append([]byte{}, p...), nil }),
	"fail":    palm.HandlerFunc(func(context.Context, []byte) ([]byte, error) { return nil, errors.New("it failed") }),
	"panic":   palm.HandlerFunc(func(context.Context, []byte) ([]byte, error) { panic("boom") }),
	"nothing": palm.HandlerFunc(func(context.Context, []byte) ([]byte, error) { return nil, nil }),
}

func fuzzKnown(function string) bool { _, ok := fuzzFunctions[function]; return ok }

// fuzzCheck is the door check of the fuzzed server.
var fuzzCheck = route.Check{Server: "s", MaxPayload: fuzzPayloadLimit, Known: fuzzKnown}

// verdict is what the door of a server makes of a message: admitted (code
// OK) or refused with code; step is the step at the message's stage, named
// also in a refusal that could read it.
type verdict struct {
	code codes.Code
	step route.Step
}

func (v verdict) String() string {
	if v.step == (route.Step{}) {
		return v.code.String() + " naming no step"
	}
	return fmt.Sprintf("%v at step %q", v.code, v.step)
}

// ruling is the fuzz targets' oracle: the door of server "s" with
// fuzzFunctions and fuzzPayloadLimit, restated from the rules of
// message.proto and gateway.proto without route's code. Strings are UTF-8
// (the codec refuses others, except for a function handed to Eval
// directly); client and pipeline are at most 1024 bytes, cache at most
// 16384; function is at most 4096 bytes (the door's limit, which the
// protos do not state) of steps separated by single spaces, each
// `server.function` with both parts non-empty, no dot and no white space;
// stage indexes a step. Breaking any of these is INVALID_ARGUMENT; then a
// step for another server is FAILED_PRECONDITION, an unknown function
// NOT_FOUND, a payload over the limit RESOURCE_EXHAUSTED, in that order.
func ruling(m *palmv1.PalmMessage) verdict {
	refused := verdict{code: codes.InvalidArgument}
	fn := m.GetFunction()
	if len(m.GetClient()) > 1024 || len(m.GetPipeline()) > 1024 || len(m.GetCache()) > 16384 ||
		fn == "" || len(fn) > 4096 || !utf8.ValidString(fn) {
		return refused
	}
	var steps []route.Step
	for _, part := range strings.Split(fn, " ") {
		server, function, found := strings.Cut(part, ".")
		if !found || server == "" || function == "" || strings.ContainsAny(server+function, ". \t\n\v\f\r") {
			return refused
		}
		steps = append(steps, route.Step{Server: server, Function: function})
	}
	if m.GetStage() < 0 || m.GetStage() >= int64(len(steps)) {
		return refused
	}
	step := steps[m.GetStage()]
	_, known := fuzzFunctions[step.Function]
	switch {
	case step.Server != "s":
		return verdict{codes.FailedPrecondition, step}
	case !known:
		return verdict{codes.NotFound, step}
	case len(m.GetPayload()) > fuzzPayloadLimit:
		return verdict{codes.ResourceExhausted, step}
	}
	return verdict{codes.OK, step}
}

// admit asks the door of the fuzzed server about m and checks its answer
// against the rules, both ways: what they admit it admits, at their step;
// what they refuse it refuses, with their code, a message a person can
// read and the step they name. It returns the rules' verdict and the
// door's refusal.
func admit(t *testing.T, m *palmv1.PalmMessage) (verdict, error) {
	t.Helper()
	want := ruling(m)
	step, err := fuzzCheck.Admit(m)
	got := verdict{status.Code(err), step}
	if got != want {
		t.Fatalf("the door makes %v (%v) of function %q at stage %d with a %d-byte payload; the rules make %v",
			got, err, m.GetFunction(), m.GetStage(), len(m.GetPayload()), want)
	}
	if err != nil {
		checkRefusal(t, err)
	}
	return want, err
}

// FuzzDecodePalmMessage decodes arbitrary bytes as a PalmMessage, as a
// server's codec does, and checks what the door makes of it against the
// rules (ruling), both ways: it admits what they admit, at their step, and
// refuses what they refuse, with their code and a message that is UTF-8
// (so the error reply can be encoded); Current and ParseSteps agree with
// it. The first seeds are well-formed: a door that refuses everything fails
// them.
func FuzzDecodePalmMessage(f *testing.F) {
	long := func(n int) string { return strings.Repeat("x", n) }
	for _, m := range []*palmv1.PalmMessage{
		// Well-formed: a door that refuses them fails the seeds.
		{Pipeline: "p", Client: "c", Function: "s.echo", Payload: []byte("x"), Sequence: 1},
		{Function: "a.b s.echo c.d", Stage: 1},
		{Function: "サーバ.関数 s.nothing", Stage: 1, Cache: "キャッシュ"},
		{Pipeline: long(1024), Client: long(1024), Cache: long(16384), Function: "s.fail", Payload: make([]byte, fuzzPayloadLimit)},
		{Function: "s.echo " + long(4096-len("s.echo .x")) + ".x"},
		// Ill-formed, each just past what is well-formed.
		{Pipeline: long(1025), Function: "s.echo"},
		{Client: long(1025), Function: "s.echo"},
		{Cache: long(16385), Function: "s.echo"},
		{Function: "s.echo " + long(4097-len("s.echo .x")) + ".x"},
		{Function: "s.echo\r"},
		{Function: "s.echo", Stage: 1},
		{Function: "s.echo", Stage: -1},
		{Function: "s.nope"},
		{Function: "t.echo"},
		{Function: "s.echo", Payload: make([]byte, fuzzPayloadLimit+1)},
		{Function: "s.echo", Error: &palmv1.Error{Code: 999, Message: "m", Function: "f"}},
	} {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var m palmv1.PalmMessage
		if proto.Unmarshal(data, &m) != nil {
			return // the codec refuses it before palm sees it
		}
		v, refusal := admit(t, &m)
		if refusal != nil {
			// The error reply the gateway sends back must be encodable.
			reply := &palmv1.PalmMessage{
				Pipeline: m.GetPipeline(), Client: m.GetClient(), Stage: m.GetStage(),
				Function: m.GetFunction(), Sequence: m.GetSequence(), Error: route.ErrorOf(refusal, v.step),
			}
			if _, err := proto.Marshal(reply); err != nil {
				t.Fatalf("the error reply cannot be encoded: %v", err)
			}
			return
		}
		step := v.step
		current, err := route.Current(&m)
		if err != nil || current != step {
			t.Fatalf("Admit says %v, Current says %v, %v", step, current, err)
		}
		steps, err := route.ParseSteps(m.GetFunction())
		if err != nil || steps[m.GetStage()] != step {
			t.Fatalf("Admit says %v of %q at stage %d; ParseSteps says %v, %v", step, m.GetFunction(), m.GetStage(), steps, err)
		}
	})
}

// checkRefusal checks that err is a refusal Admit documents.
func checkRefusal(t *testing.T, err error) {
	t.Helper()
	st, ok := status.FromError(err)
	switch {
	case !ok:
		t.Fatalf("a refusal without a status: %v", err)
	case !slices.Contains([]codes.Code{codes.InvalidArgument, codes.FailedPrecondition, codes.NotFound, codes.ResourceExhausted}, st.Code()):
		t.Fatalf("a refusal with code %v: %v", st.Code(), err)
	case st.Message() == "" || !utf8.ValidString(st.Message()):
		t.Fatalf("a refusal with message %q", st.Message())
	}
}

// fuzzServer is a server of three parts (gateway, functions, replies) with
// no gRPC under it: the fuzz target calls the gateway's methods itself.
func fuzzServer(tb testing.TB) *Gateway {
	gw := NewGateway(GatewayConfig{Server: "s", Known: fuzzKnown, MaxPayload: fuzzPayloadLimit, Window: 4})
	r := NewRouter(nil)
	lookup := func(f string) (palm.Handler, bool) { h, ok := fuzzFunctions[f]; return h, ok }
	if err := errors.Join(
		r.Inbound("gateway", gw, "call"),
		r.Outbound("call", &Functions{Lookup: lookup}, "reply", 0),
		r.Outbound("reply", &Replies{}, "", 0),
	); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("router: %v", err)
		}
	})
	return gw
}

// fakeStream is a GatewayService stream with no network: Recv hands out
// the requests given, then io.EOF; Send encodes each response, as gRPC
// would, and keeps a copy.
type fakeStream struct {
	grpc.ServerStream // nil: the gateway uses only the methods below
	ctx               context.Context
	in                []*palmv1.StreamRequest
	out               []*palmv1.StreamResponse
	sendErr           error
}

func (s *fakeStream) Context() context.Context { return s.ctx }

func (s *fakeStream) Recv() (*palmv1.StreamRequest, error) {
	if len(s.in) == 0 {
		return nil, io.EOF
	}
	r := s.in[0]
	s.in = s.in[1:]
	return r, nil
}

func (s *fakeStream) Send(r *palmv1.StreamResponse) error {
	if _, err := proto.Marshal(r); err != nil {
		s.sendErr = fmt.Errorf("a response cannot be encoded: %w", err)
		return s.sendErr
	}
	s.out = append(s.out, proto.Clone(r).(*palmv1.StreamResponse))
	return nil
}

// FuzzRouting sends a message with any function, stage and payload through
// a gateway's Eval and Stream into the parts behind it, and checks that
// each answers as the rules (ruling) say: a refusal with their code, or the
// function's outcome. A stream gets a completion for every message and can
// encode every response, a good message after a bad one is answered, and
// nothing stays in flight. The first seeds are well-formed: a door that
// refuses everything fails them.
func FuzzRouting(f *testing.F) {
	f.Add("s.echo", int64(0), []byte("x"))
	f.Add("a.b s.echo", int64(1), []byte("second step"))
	f.Add("サーバ.関数 s.echo 次.へ", int64(1), []byte("ユニコード"))
	f.Add("s.echo", int64(0), make([]byte, fuzzPayloadLimit))
	f.Add("s.nothing", int64(0), []byte(nil))
	f.Add("a.b s.fail", int64(1), []byte{})
	f.Add("s.panic", int64(0), []byte("p"))
	f.Add("s.nothing t.echo", int64(0), []byte(nil))
	f.Add("s.echo", int64(-1), []byte("x"))
	f.Add("s.echo s.echo", int64(2), []byte("x"))
	f.Add("s.unknown", int64(0), []byte("x"))
	f.Add("t.echo", int64(0), []byte("x"))
	f.Add("s.echo", int64(0), make([]byte, fuzzPayloadLimit+1))
	f.Add("s..echo", int64(0), []byte("x"))
	f.Add("s.\xff", int64(0), []byte("x"))
	gw := fuzzServer(f)
	f.Fuzz(func(t *testing.T, function string, stage int64, payload []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m := &palmv1.PalmMessage{Pipeline: "p", Client: "c", Function: function, Stage: stage, Payload: payload, Sequence: 1}
		v, _ := admit(t, m)
		want := expect(v)

		resp, err := gw.Eval(ctx, &palmv1.EvalRequest{Message: m})
		switch {
		case want.err != nil:
			if status.Code(err) != status.Code(want.err) {
				t.Fatalf("Eval: %v; want %v", err, want.err)
			}
		case err != nil:
			t.Fatalf("Eval: %v", err)
		case want.reply && (len(resp.GetMessages()) != 1 || string(resp.GetMessages()[0].GetPayload()) != string(payload)):
			t.Fatalf("Eval: %v; want the payload back", resp)
		case !want.reply && len(resp.GetMessages()) != 0:
			t.Fatalf("Eval: %v; want no reply", resp)
		}

		// On a stream, followed by a good message. A message gRPC cannot
		// encode (a string that is not UTF-8) never reaches a stream.
		if _, err := proto.Marshal(m); err != nil {
			return
		}
		good := &palmv1.PalmMessage{Pipeline: "p", Client: "c", Function: "s.echo", Payload: []byte("good"), Sequence: 2}
		s := &fakeStream{ctx: ctx, in: []*palmv1.StreamRequest{{Messages: []*palmv1.PalmMessage{m, good}}}}
		if err := gw.Stream(s); err != nil {
			t.Fatalf("Stream: %v", err)
		}
		replies, completed := map[uint64][]*palmv1.PalmMessage{}, []uint64{}
		for _, r := range s.out {
			for _, msg := range r.GetMessages() {
				replies[msg.GetSequence()] = append(replies[msg.GetSequence()], msg)
			}
			completed = append(completed, r.GetCompleted()...)
		}
		slices.Sort(completed)
		if !slices.Equal(completed, []uint64{1, 2}) {
			t.Fatalf("Stream: completions %v; want 1 and 2", completed)
		}
		if g := replies[2]; len(g) != 1 || string(g[0].GetPayload()) != "good" {
			t.Fatalf("Stream: the good message got %v", g)
		}
		got := replies[1]
		switch {
		case want.err != nil:
			if len(got) != 1 || codes.Code(got[0].GetError().GetCode()) != status.Code(want.err) {
				t.Fatalf("Stream: %v; want an error reply with %v", got, want.err)
			}
			// The reply names the step the rules read, if any.
			named := ""
			if v.step != (route.Step{}) {
				named = v.step.String()
			}
			if f := got[0].GetError().GetFunction(); f != named {
				t.Fatalf("Stream: the error reply names step %q; want %q", f, named)
			}
		case want.reply:
			if len(got) != 1 || got[0].GetError() != nil || string(got[0].GetPayload()) != string(payload) {
				t.Fatalf("Stream: %v; want the payload back", got)
			}
		case len(got) != 0:
			t.Fatalf("Stream: %v; want no reply", got)
		}
		if n := gw.holding(); n != 0 {
			t.Fatalf("%d messages still in flight", n)
		}
	})
}

// outcome is what a message should get: an error, or a reply or none.
type outcome struct {
	err   error
	reply bool
}

// expect is the outcome of a message the rules gave verdict v.
func expect(v verdict) outcome {
	if v.code != codes.OK {
		return outcome{err: status.Error(v.code, "refused at the door")}
	}
	switch v.step.Function {
	case "fail":
		return outcome{err: status.Error(codes.Unknown, "it failed")}
	case "panic":
		return outcome{err: status.Error(codes.Internal, "function panicked")}
	case "nothing":
		return outcome{}
	}
	return outcome{reply: true}
}
