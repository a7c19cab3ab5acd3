package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/pipeline"
)

// newServer starts a server named my_server with a few functions and
// returns a gateway client for it and its log.
func newServer(t *testing.T, opts ...pipeline.ServerOption) (palmv1.GatewayServiceClient, *palmtest.Buffer) {
	t.Helper()
	logs := &palmtest.Buffer{}
	logger := hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})
	srv, err := pipeline.NewServer("my_server", append([]pipeline.ServerOption{palm.WithLogger(logger)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, msg []byte) ([]byte, error) {
		return append([]byte("you sent me "), msg...), nil
	})
	srv.HandleFunc("nothing", func(context.Context, []byte) ([]byte, error) { return nil, nil })
	srv.HandleFunc("empty", func(context.Context, []byte) ([]byte, error) { return []byte{}, nil })
	srv.HandleFunc("fails", func(_ context.Context, msg []byte) ([]byte, error) {
		if string(msg) == "ok" {
			return msg, nil
		}
		return nil, errors.New("it went wrong")
	})
	srv.HandleFunc("rejects", func(context.Context, []byte) ([]byte, error) {
		return nil, status.Error(codes.InvalidArgument, "not a number")
	})
	srv.HandleFunc("panics", func(context.Context, []byte) ([]byte, error) {
		var m map[string]int
		m["x"]++ // assignment to entry in nil map
		return nil, nil
	})
	l := palmtest.Serve(t, srv)
	return palmv1.NewGatewayServiceClient(l.Conn(t)), logs
}

func msg(function string, payload string) *palmv1.PalmMessage {
	return &palmv1.PalmMessage{Pipeline: "p1", Client: "c1", Function: function, Payload: []byte(payload), Sequence: 1}
}

func eval(t *testing.T, gw palmv1.GatewayServiceClient, m *palmv1.PalmMessage) (*palmv1.EvalResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return gw.Eval(ctx, &palmv1.EvalRequest{Message: m})
}

func TestEval(t *testing.T) {
	gw, _ := newServer(t)
	resp, err := eval(t, gw, msg("my_server.foo", "a message"))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Messages) != 1 {
		t.Fatalf("got %d replies, want 1", len(resp.Messages))
	}
	r := resp.Messages[0]
	if string(r.Payload) != "you sent me a message" {
		t.Errorf("payload %q", r.Payload)
	}
	if r.Client != "c1" || r.Pipeline != "p1" || r.Sequence != 1 || r.Function != "my_server.foo" {
		t.Errorf("routing fields not carried over: %v", r)
	}
}

func TestEvalNothingAndEmpty(t *testing.T) {
	gw, _ := newServer(t)
	resp, err := eval(t, gw, msg("my_server.nothing", "x"))
	if err != nil || len(resp.Messages) != 0 {
		t.Fatalf("nothing: %v %v; want no reply", resp, err)
	}
	resp, err = eval(t, gw, msg("my_server.empty", "x"))
	if err != nil || len(resp.Messages) != 1 || len(resp.Messages[0].Payload) != 0 {
		t.Fatalf("empty: %v %v; want one empty reply", resp, err)
	}
}

// Every bad input gets its code, and the server answers the next request.
func TestEvalErrors(t *testing.T) {
	gw, logs := newServer(t, palm.WithMaxMessageSize(1000))
	for _, tc := range []struct {
		name string
		m    *palmv1.PalmMessage
		code codes.Code
		text string
	}{
		{"no message", nil, codes.InvalidArgument, "no message"},
		{"empty function", msg("", "x"), codes.InvalidArgument, "empty"},
		{"no dot", msg("foo", "x"), codes.InvalidArgument, "malformed"},
		{"two dots", msg("my_server.foo.bar", "x"), codes.InvalidArgument, "malformed"},
		{"empty server", msg(".foo", "x"), codes.InvalidArgument, "malformed"},
		{"double space", msg("my_server.foo  other.bar", "x"), codes.InvalidArgument, "malformed"},
		{"unknown function", msg("my_server.bar", "x"), codes.NotFound, `no function "bar"`},
		{"other server", msg("other.foo", "x"), codes.FailedPrecondition, `for server "other"`},
		{"stage past the end", &palmv1.PalmMessage{Function: "my_server.foo", Stage: 1}, codes.InvalidArgument, "stage 1"},
		{"negative stage", &palmv1.PalmMessage{Function: "my_server.foo other.x", Stage: -1}, codes.InvalidArgument, "stage -1"},
		{"oversize payload", msg("my_server.foo", strings.Repeat("x", 1001)), codes.ResourceExhausted, "limit is 1000 bytes"},
		{"function error", msg("my_server.fails", "x"), codes.Unknown, "it went wrong"},
		{"function status", msg("my_server.rejects", "x"), codes.InvalidArgument, "not a number"},
		{"panic", msg("my_server.panics", "x"), codes.Internal, "panicked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eval(t, gw, tc.m)
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("got %v; want %v containing %q", err, tc.code, tc.text)
			}
			resp, err := eval(t, gw, msg("my_server.foo", "again"))
			if err != nil || string(resp.Messages[0].Payload) != "you sent me again" {
				t.Errorf("next request: %v %v", resp, err)
			}
		})
	}
	out := logs.String()
	for _, want := range []string{"user function panicked", "assignment to entry in nil map", "server_test.go", "user function gave an error", "it went wrong"} {
		if !strings.Contains(out, want) {
			t.Errorf("server log lacks %q:\n%s", want, out)
		}
	}
}

func TestStream(t *testing.T) {
	gw, _ := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stream, err := gw.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	fns := []string{"foo", "nothing", "fails", "bar"}
	go func() {
		// Packed sends of various sizes, one goroutine sending.
		var batch []*palmv1.PalmMessage
		for i := 1; i <= n; i++ {
			batch = append(batch, &palmv1.PalmMessage{Client: "c", Pipeline: "p", Function: "my_server." + fns[i%len(fns)], Payload: []byte(fmt.Sprint(i)), Sequence: uint64(i)})
			if len(batch) == i%7+1 {
				if stream.Send(&palmv1.StreamRequest{Messages: batch}) != nil {
					return
				}
				batch = nil
			}
		}
		if len(batch) > 0 {
			stream.Send(&palmv1.StreamRequest{Messages: batch})
		}
		stream.CloseSend()
	}()
	replies := map[uint64]*palmv1.PalmMessage{}
	completed := map[uint64]bool{}
	for {
		resp, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.Messages {
			if replies[r.Sequence] != nil || completed[r.Sequence] {
				t.Fatalf("reply for %d after another reply or its completion", r.Sequence)
			}
			replies[r.Sequence] = r
		}
		for _, c := range resp.Completed {
			if completed[c] {
				t.Fatalf("%d completed twice", c)
			}
			completed[c] = true
		}
	}
	if len(completed) != n {
		t.Fatalf("%d completed, want %d", len(completed), n)
	}
	for i := uint64(1); i <= n; i++ {
		r := replies[i]
		switch fns[i%uint64(len(fns))] {
		case "foo":
			if r == nil || string(r.Payload) != fmt.Sprint("you sent me ", i) {
				t.Fatalf("reply %d: %v", i, r)
			}
		case "nothing":
			if r != nil {
				t.Fatalf("reply %d from a function returning nothing: %v", i, r)
			}
		case "fails":
			if r.GetError().GetCode() != uint32(codes.Unknown) || r.GetError().GetFunction() != "my_server.fails" {
				t.Fatalf("reply %d: %v", i, r)
			}
		case "bar":
			if r.GetError().GetCode() != uint32(codes.NotFound) {
				t.Fatalf("reply %d: %v", i, r)
			}
		}
	}
}

// A server asked to stop finishes the message it holds, delivers the
// reply, refuses new messages and ends open streams with Unavailable.
func TestGracefulStop(t *testing.T) {
	srv, err := pipeline.NewServer("s", palm.WithLogger(hclog.NewNullLogger()), pipeline.Concurrency(2))
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	srv.HandleFunc("slow", func(_ context.Context, msg []byte) ([]byte, error) {
		close(started)
		<-release
		return msg, nil
	})
	srv.HandleFunc("fast", func(_ context.Context, msg []byte) ([]byte, error) { return msg, nil })
	lis := palmtest.Listen()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	gw := palmv1.NewGatewayServiceClient(lis.Conn(t))
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := gw.Stream(cctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&palmv1.StreamRequest{Messages: []*palmv1.PalmMessage{{Client: "c", Function: "s.slow", Payload: []byte("held"), Sequence: 7}}}); err != nil {
		t.Fatal(err)
	}
	<-started
	stop()
	// Wait until the server refuses new calls, then let the function finish.
	for {
		_, err := gw.Eval(cctx, &palmv1.EvalRequest{Message: &palmv1.PalmMessage{Function: "s.fast"}})
		if status.Code(err) == codes.Unavailable {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Messages) != 1 || string(resp.Messages[0].Payload) != "held" || resp.Completed[0] != 7 {
		t.Fatalf("reply to the held message: %v", resp)
	}
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("stream ended with %v; want Unavailable", err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// Two servers in one process each have a cache of their own.
func TestCachePerServer(t *testing.T) {
	a, err := pipeline.NewServer("a", palm.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := pipeline.NewServer("b", palm.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		t.Fatal(err)
	}
	la, lb := palmtest.Serve(t, a), palmtest.Serve(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := palmv1.NewCacheServiceClient(la.Conn(t)).Set(ctx, &palmv1.SetRequest{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if _, err := palmv1.NewCacheServiceClient(lb.Conn(t)).Get(ctx, &palmv1.GetRequest{Key: "k"}); status.Code(err) != codes.NotFound {
		t.Fatalf("server b sees server a's key: %v", err)
	}
	if v, err := a.Cache().Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("server a's own cache: %q %v", v, err)
	}
}

// A function that never returns cannot hold a stopping server past its
// stop timeout: the stop is timed, with a margin for a loaded machine far
// below what a bound several times too long would add. (The server waits
// one stop timeout to drain and stop gRPC, then at most one more for its
// router, which waits for the function.)
func TestStopIsBounded(t *testing.T) {
	const (
		stopTimeout = 300 * time.Millisecond
		limit       = 2*stopTimeout + 4*time.Second
	)
	srv, err := pipeline.NewServer("s", palm.WithLogger(hclog.NewNullLogger()), palm.WithStopTimeout(stopTimeout))
	if err != nil {
		t.Fatal(err)
	}
	stuck := make(chan struct{})
	defer close(stuck)
	started := make(chan struct{})
	srv.HandleFunc("stuck", func(ctx context.Context, _ []byte) ([]byte, error) {
		close(started)
		<-stuck // ignores ctx on purpose
		return nil, nil
	})
	lis := palmtest.Listen()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()
	gw := palmv1.NewGatewayServiceClient(lis.Conn(t))
	cctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := gw.Stream(cctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&palmv1.StreamRequest{Messages: []*palmv1.PalmMessage{{Function: "s.stuck", Sequence: 1}}}); err != nil {
		t.Fatal(err)
	}
	<-started
	stop()
	began := time.Now()
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(limit):
		t.Fatalf("the server has not stopped %v after its context ended, with a stop timeout of %v", limit, stopTimeout)
	}
	t.Logf("stopped in %v, with a stop timeout of %v", time.Since(began).Round(time.Millisecond), stopTimeout)
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("the open stream ended with %v; want Unavailable", err)
	}
}

// A client that sends and never reads its replies is held to its window:
// the server stops reading from it and keeps answering everyone else.
func TestClientThatNeverReads(t *testing.T) {
	gw, _ := newServer(t, pipeline.Window(16))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hog, err := gw.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent := make(chan int, 1)
	go func() {
		// Far more than the window and every buffer on the way can hold.
		payload := make([]byte, 64<<10)
		n := 0
		for n < 2000 {
			m := &palmv1.PalmMessage{Client: "hog", Function: "my_server.foo", Payload: payload, Sequence: uint64(n + 1)}
			if hog.Send(&palmv1.StreamRequest{Messages: []*palmv1.PalmMessage{m}}) != nil {
				break
			}
			n++
		}
		sent <- n
	}()
	for i := range 20 {
		resp, err := eval(t, gw, msg("my_server.foo", fmt.Sprint(i)))
		if err != nil || string(resp.Messages[0].Payload) != fmt.Sprint("you sent me ", i) {
			t.Fatalf("another client while the hog waits: %v %v", resp, err)
		}
	}
	cancel()
	if n := <-sent; n >= 2000 {
		t.Fatalf("the server took all %d messages from a client that never reads", n)
	}
}

// A pipelined server publishes each result under its own name, one stage
// on, for the next component; the client's Eval gets no reply of its own,
// and a failure still comes back to the client.
func TestPipelinedPublishes(t *testing.T) {
	srv, err := pipeline.NewServer("first", palm.WithLogger(hclog.NewNullLogger()), pipeline.Pipelined())
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, msg []byte) ([]byte, error) {
		return append([]byte("you sent me "), msg...), nil
	})
	srv.HandleFunc("fails", func(context.Context, []byte) ([]byte, error) { return nil, errors.New("no") })
	l := palmtest.Serve(t, srv)
	cc := l.Conn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := palmv1.NewPublisherServiceClient(cc).Subscribe(ctx, &palmv1.SubscribeRequest{Topics: []string{"first"}, Subscriber: "second"})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := sub.Recv(); err != nil || !first.Subscribed {
		t.Fatalf("confirmation: %v %v", first, err)
	}
	gw := palmv1.NewGatewayServiceClient(cc)
	resp, err := gw.Eval(ctx, &palmv1.EvalRequest{Message: &palmv1.PalmMessage{Client: "c", Function: "first.foo second.bar", Payload: []byte("x"), Sequence: 1}})
	if err != nil || len(resp.Messages) != 0 {
		t.Fatalf("eval of a pipelined step: %v %v; want no reply of its own", resp, err)
	}
	got, err := sub.Recv()
	if err != nil || len(got.Publications) != 1 {
		t.Fatalf("publication: %v %v", got, err)
	}
	p := got.Publications[0]
	if p.Topic != "first" || p.Message.Stage != 1 || string(p.Message.Payload) != "you sent me x" || p.Message.Client != "c" {
		t.Fatalf("published %v", p)
	}
	if _, err := gw.Eval(ctx, &palmv1.EvalRequest{Message: &palmv1.PalmMessage{Client: "c", Function: "first.fails second.bar", Sequence: 2}}); status.Code(err) != codes.Unknown {
		t.Fatalf("a failure in a pipelined step: %v; want it back at the client", err)
	}
}
