package parts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
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

// FuzzDecodePalmMessage decodes arbitrary bytes as a PalmMessage, as a
// server's codec does, and checks what the door makes of it: Admit never
// panics; it refuses with one of the codes it documents and a message that
// is UTF-8 (so the error reply can be encoded); and a message it accepts
// names this server, a known function and a payload within the limit, at a
// step Current and ParseSteps agree on.
func FuzzDecodePalmMessage(f *testing.F) {
	for _, m := range []*palmv1.PalmMessage{
		{Pipeline: "p", Client: "c", Function: "s.echo", Payload: []byte("x"), Sequence: 1},
		{Function: "a.b s.echo c.d", Stage: 1},
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
		step, err := fuzzCheck.Admit(&m)
		if err != nil {
			checkRefusal(t, err)
			// The error reply the gateway sends back must be encodable.
			reply := &palmv1.PalmMessage{
				Pipeline: m.GetPipeline(), Client: m.GetClient(), Stage: m.GetStage(),
				Function: m.GetFunction(), Sequence: m.GetSequence(), Error: route.ErrorOf(err, step),
			}
			if _, err := proto.Marshal(reply); err != nil {
				t.Fatalf("the error reply cannot be encoded: %v", err)
			}
			return
		}
		if step.Server != "s" || !fuzzKnown(step.Function) || len(m.GetPayload()) > fuzzPayloadLimit {
			t.Fatalf("admitted %v with a %d-byte payload", step, len(m.GetPayload()))
		}
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
// each answers as the door check says: a refusal with its code, or the
// function's outcome. A stream gets a completion for every message and can
// encode every response, a good message after a bad one is answered, and
// nothing stays in flight.
func FuzzRouting(f *testing.F) {
	f.Add("s.echo", int64(0), []byte("x"))
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
		step, admitErr := fuzzCheck.Admit(m)
		if admitErr != nil {
			checkRefusal(t, admitErr)
		}

		resp, err := gw.Eval(ctx, &palmv1.EvalRequest{Message: m})
		switch want := expect(step, admitErr); {
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
		want, got := expect(step, admitErr), replies[1]
		switch {
		case want.err != nil:
			if len(got) != 1 || codes.Code(got[0].GetError().GetCode()) != status.Code(want.err) {
				t.Fatalf("Stream: %v; want an error reply with %v", got, want.err)
			}
		case want.reply:
			if len(got) != 1 || got[0].GetError() != nil || string(got[0].GetPayload()) != string(payload) {
				t.Fatalf("Stream: %v; want the payload back", got)
			}
		case len(got) != 0:
			t.Fatalf("Stream: %v; want no reply", got)
		}
		if n := gw.InFlight(); n != 0 {
			t.Fatalf("%d messages still in flight", n)
		}
	})
}

// outcome is what a message should get: an error, or a reply or none.
type outcome struct {
	err   error
	reply bool
}

// expect is the outcome of a message the door check answered with step and
// err.
func expect(step route.Step, err error) outcome {
	if err != nil {
		return outcome{err: err}
	}
	switch step.Function {
	case "fail":
		return outcome{err: status.Error(codes.Unknown, "it failed")}
	case "panic":
		return outcome{err: status.Error(codes.Internal, "function panicked")}
	case "nothing":
		return outcome{}
	}
	return outcome{reply: true}
}
