package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/route"
	"github.com/gopalm/palm/kv"
)

// fakeServer is the name the fake gateway answers to.
const fakeServer = "srv"

// Payloads the fake gateway treats specially; any other payload is echoed
// upper-cased.
const (
	payloadFail  = "fail"  // an error reply (Eval: Unknown status)
	payloadNone  = "none"  // no reply, but completed
	payloadCrash = "crash" // Stream: the call ends with DataLoss
	payloadSlow  = "slow"  // Eval: waits for the call's context to end (a call on a stream: until cancelled)
	payloadHold  = "hold"  // Stream: never completed while the stream lasts
	payloadDeny  = "deny"  // Eval: an OK call whose reply carries PermissionDenied (a call on a stream: an error reply)
	payloadPub   = "pub"   // Eval: the reply goes to the fake publisher before the call returns, with none
)

// fakeGateway is a GatewayService serving the functions srv.echo and
// srv.other.
type fakeGateway struct {
	palmv1.UnimplementedGatewayServiceServer

	pub       *fakePublisher // where payloadPub's reply goes
	evaluated chan struct{}  // closed by the first Eval
	evalOnce  sync.Once

	// completeEvery, when above zero, makes Stream hold replies and
	// completions until that many messages are unfinished (or the client
	// half-closes), to exercise the client's window.
	completeEvery int

	mu       sync.Mutex
	changed  chan struct{}         // closed and replaced on every change below
	evals    []*palmv1.PalmMessage // Evals, and calls on a stream
	streamed []*palmv1.PalmMessage
	requests int // StreamRequests received
	opened   int // Streams opened
	open     int // Streams open now
	maxBatch int // most messages in one StreamRequest
	maxOpen  int // most unfinished messages seen at once
}

func newFakeGateway() *fakeGateway {
	return &fakeGateway{changed: make(chan struct{}), evaluated: make(chan struct{})}
}

var check = route.Check{Server: fakeServer, Known: func(f string) bool { return f == "echo" || f == "other" }}

func (f *fakeGateway) record(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
	close(f.changed)
	f.changed = make(chan struct{})
}

// waitFor waits until cond, called under the lock, holds, or fails the test
// after a deadline.
func (f *fakeGateway) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		ok, changed := cond(), f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// answer is what the fake's function makes of one message: a reply or nil.
func answer(m *palmv1.PalmMessage) *palmv1.PalmMessage {
	step, err := check.Admit(m)
	if err == nil && string(m.GetPayload()) == payloadFail {
		err = status.Error(codes.Unknown, "fail requested")
	}
	reply := &palmv1.PalmMessage{Pipeline: m.GetPipeline(), Client: m.GetClient(), Sequence: m.GetSequence()}
	switch {
	case err != nil:
		reply.Error = route.ErrorOf(err, step)
	case string(m.GetPayload()) == payloadNone:
		return nil
	default:
		reply.Payload = bytes.ToUpper(m.GetPayload())
	}
	return reply
}

func (f *fakeGateway) Eval(ctx context.Context, req *palmv1.EvalRequest) (*palmv1.EvalResponse, error) {
	m := req.GetMessage()
	f.record(func() { f.evals = append(f.evals, m) })
	f.evalOnce.Do(func() { close(f.evaluated) })
	if _, err := check.Admit(m); err != nil {
		return nil, err
	}
	switch string(m.GetPayload()) {
	case payloadSlow:
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	case payloadFail:
		return nil, status.Error(codes.Unknown, "fail requested")
	case payloadPub:
		r := answer(m)
		r.Payload = []byte("PUBLISHED")
		f.pub.publish(ctx, r)
		return &palmv1.EvalResponse{}, nil
	case payloadDeny:
		return &palmv1.EvalResponse{Messages: []*palmv1.PalmMessage{{
			Sequence: m.GetSequence(),
			Error:    &palmv1.Error{Code: uint32(codes.PermissionDenied), Message: "denied", Function: "srv.other"},
		}}}, nil
	}
	resp := &palmv1.EvalResponse{}
	if r := answer(m); r != nil {
		resp.Messages = append(resp.Messages, r)
	}
	return resp, nil
}

// Stream handles messages in the order they come, in one goroutine that is
// the only one to call Recv and the only one to call Send.
func (f *fakeGateway) Stream(stream palmv1.GatewayService_StreamServer) error {
	f.record(func() { f.opened++; f.open++ })
	defer f.record(func() { f.open-- })
	var (
		out  palmv1.StreamResponse
		open int
		held []*palmv1.PalmMessage // "hold" messages, never completed
	)
	flush := func() error {
		if len(out.Messages) == 0 && len(out.Completed) == 0 {
			return nil
		}
		err := stream.Send(&out)
		out.Reset()
		open = 0
		return err
	}
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if len(held) > 0 {
				return status.Error(codes.Internal, "half-closed with held messages")
			}
			return flush()
		}
		if err != nil {
			return err
		}
		for _, seq := range req.GetCancel() {
			// A cancelled call is completed without a reply.
			for i, m := range held {
				if m.GetSequence() == seq {
					held = append(held[:i], held[i+1:]...)
					out.Completed = append(out.Completed, seq)
					open++
					break
				}
			}
		}
		if req.GetCalls() {
			f.record(func() { f.evals = append(f.evals, req.GetMessages()...) })
			f.evalOnce.Do(func() { close(f.evaluated) })
		}
		for _, m := range req.GetMessages() {
			payload := string(m.GetPayload())
			if req.GetCalls() {
				switch payload {
				case payloadSlow:
					payload = payloadHold // until cancelled
				case payloadDeny:
					out.Messages = append(out.Messages, &palmv1.PalmMessage{
						Sequence: m.GetSequence(),
						Error:    &palmv1.Error{Code: uint32(codes.PermissionDenied), Message: "denied", Function: "srv.other"},
					})
					out.Completed = append(out.Completed, m.GetSequence())
					open++
					continue
				}
			}
			switch payload {
			case payloadCrash:
				return status.Error(codes.DataLoss, "crash requested")
			case payloadHold:
				held = append(held, m)
			default:
				if r := answer(m); r != nil {
					out.Messages = append(out.Messages, r)
				}
				out.Completed = append(out.Completed, m.GetSequence())
				open++
			}
		}
		f.record(func() {
			if !req.GetCalls() {
				f.streamed = append(f.streamed, req.GetMessages()...)
			}
			f.requests++
			f.maxBatch = max(f.maxBatch, len(req.GetMessages()))
			f.maxOpen = max(f.maxOpen, open+len(held))
		})
		if f.completeEvery == 0 || open >= f.completeEvery {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// fakePublisher is a PublisherService whose publications the test makes:
// each subscription, whatever its topics, is confirmed once it is in
// place and then carries what publish hands it. It counts the
// subscriptions.
type fakePublisher struct {
	palmv1.UnimplementedPublisherServiceServer

	// delay, when set, runs before each subscription is put in place.
	delay func()

	mu         sync.Mutex
	subscribed int // subscriptions confirmed so far
	open       map[*fakeSub]struct{}
}

type fakeSub struct {
	out  chan *palmv1.SubscribeResponse
	cut  chan error
	done chan struct{} // closed when the subscription ended
}

func newFakePublisher() *fakePublisher {
	return &fakePublisher{open: map[*fakeSub]struct{}{}}
}

func (f *fakePublisher) Subscribe(_ *palmv1.SubscribeRequest, stream palmv1.PublisherService_SubscribeServer) error {
	s := &fakeSub{out: make(chan *palmv1.SubscribeResponse, 16), cut: make(chan error, 1), done: make(chan struct{})}
	if f.delay != nil {
		f.delay()
	}
	f.mu.Lock()
	f.open[s] = struct{}{}
	f.subscribed++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.open, s)
		f.mu.Unlock()
		close(s.done)
	}()
	if err := stream.Send(&palmv1.SubscribeResponse{Subscribed: true}); err != nil {
		return err
	}
	for {
		select {
		case r := <-s.out:
			if err := stream.Send(r); err != nil {
				return err
			}
		case err := <-s.cut:
			return err
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

// publish sends msgs, in one response, on every open subscription.
func (f *fakePublisher) publish(ctx context.Context, msgs ...*palmv1.PalmMessage) {
	resp := &palmv1.SubscribeResponse{}
	for _, m := range msgs {
		resp.Publications = append(resp.Publications, &palmv1.Publication{Topic: m.GetClient(), Message: m})
	}
	f.mu.Lock()
	subs := make([]*fakeSub, 0, len(f.open))
	for s := range f.open {
		subs = append(subs, s)
	}
	f.mu.Unlock()
	for _, s := range subs {
		select {
		case s.out <- resp:
		case <-s.done:
		case <-ctx.Done():
		}
	}
}

// cutAll ends every open subscription with err.
func (f *fakePublisher) cutAll(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.open {
		select {
		case s.cut <- err:
		default:
		}
	}
}

// counts returns the subscriptions confirmed so far and those open now.
func (f *fakePublisher) counts() (subscribed, open int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subscribed, len(f.open)
}

// testServer is a bufconn server with the fake gateway, the fake
// publisher and a real kv.Memory cache.
type testServer struct {
	gateway *fakeGateway
	pub     *fakePublisher
	store   *kv.Memory
	dial    palm.Option // routes a Client to this server
}

// startServer starts a testServer whose cache has the quotas opts set,
// stopped when the test ends.
func startServer(t *testing.T, opts ...kv.MemoryOption) *testServer {
	t.Helper()
	ts := &testServer{gateway: newFakeGateway(), pub: newFakePublisher(), store: kv.NewMemory(opts...)}
	ts.gateway.pub = ts.pub
	lis := bufconn.Listen(1 << 20)
	s := grpc.NewServer(grpc.MaxRecvMsgSize(8 << 20))
	palmv1.RegisterGatewayServiceServer(s, ts.gateway)
	palmv1.RegisterCacheServiceServer(s, kv.NewService(ts.store))
	palmv1.RegisterPublisherServiceServer(s, ts.pub)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(lis)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
	ts.dial = palm.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		return lis.DialContext(ctx)
	}))
	return ts
}

// newClient returns a Client of ts, closed when the test ends, logging to
// the test's log.
func (ts *testServer) newClient(t *testing.T, opts ...Option) *Client {
	t.Helper()
	logger := hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Debug})
	opts = append([]Option{ts.dial, palm.WithLogger(logger)}, opts...)
	c, err := New(fakeServer, "passthrough:///bufnet", opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
