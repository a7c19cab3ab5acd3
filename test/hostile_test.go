package test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/dispatch"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/internal/route"
	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/parts"
	"github.com/gopalm/palm/pipeline"
	"github.com/gopalm/palm/worker"
)

// These tests play a hostile or broken peer: they send what palm's own
// client and worker never send, and check that palm answers each with a
// precise code and a message a person understands, keeps serving everyone
// else, and keeps its memory bounded.

// hostileServer serves my_server, whose foo answers "you sent me <payload>",
// in memory until the test ends.
func hostileServer(t *testing.T, opts ...pipeline.ServerOption) (*palmtest.Listener, *pipeline.Server) {
	t.Helper()
	srv, err := pipeline.NewServer("my_server", append([]pipeline.ServerOption{palm.WithLogger(palmtest.Logger(t, hclog.Warn))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) {
		return append([]byte("you sent me "), m...), nil
	})
	return palmtest.Serve(t, srv), srv
}

// hostileContext bounds one hostile test.
func hostileContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// stillServes checks that a well-behaved client of server at l still gets
// its reply.
func stillServes(t *testing.T, ctx context.Context, l *palmtest.Listener, server string) {
	t.Helper()
	c, err := client.New(server, palmtest.Target, l.Option())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.Eval(ctx, server+".foo", []byte("still there?"))
	if err != nil {
		t.Fatalf("a well-behaved client after the hostile one: %v", err)
	}
	if !strings.HasSuffix(string(got), "still there?") {
		t.Fatalf("a well-behaved client after the hostile one got %q", got)
	}
}

// wantStatus checks err's code and that its message holds every one of
// the fragments.
func wantStatus(t *testing.T, what string, err error, code codes.Code, fragments ...string) {
	t.Helper()
	st := status.Convert(err)
	if err == nil || st.Code() != code {
		t.Errorf("%s: got %v; want code %v", what, err, code)
		return
	}
	for _, f := range fragments {
		if !strings.Contains(st.Message(), f) {
			t.Errorf("%s: message %q does not say %q", what, st.Message(), f)
		}
	}
	msg := st.Message()
	if len(msg) > 300 {
		msg = fmt.Sprintf("%s... (%d bytes)", msg[:300], len(msg))
	}
	t.Logf("%s: %v: %s", what, st.Code(), msg)
}

// rawBytes is a gRPC message already encoded: rawCodec sends it as it is,
// so a test can put on the wire what protobuf-go refuses to encode.
type rawBytes []byte

// rawCodec passes rawBytes through untouched. It is named "proto" so that
// the server decodes what it carries with its protobuf codec.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*rawBytes)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	b, ok := v.(*rawBytes)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = data.Materialize()
	return nil
}

// encodeMessage encodes a PalmMessage field by field, with no check that
// its strings are UTF-8.
func encodeMessage(pipeline, client, function string, payload []byte, sequence uint64) []byte {
	var b []byte
	for _, f := range []struct {
		num protowire.Number
		s   string
	}{{1, pipeline}, {2, client}, {4, function}} {
		b = protowire.AppendTag(b, f.num, protowire.BytesType)
		b = protowire.AppendString(b, f.s)
	}
	b = protowire.AppendTag(b, 6, protowire.BytesType)
	b = protowire.AppendBytes(b, payload)
	b = protowire.AppendTag(b, 8, protowire.VarintType)
	return protowire.AppendVarint(b, sequence)
}

// embed encodes msg as field 1 of a request: EvalRequest.message and
// StreamRequest.messages alike.
func embed(msg []byte) rawBytes {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

// A message whose function, client or pipeline is not UTF-8 cannot be
// encoded by protobuf-go, but any peer can put its bytes on the wire. The
// server's decoder refuses it before palm sees it: the call ends with
// Internal naming the invalid UTF-8, and the server goes on serving, on the
// same connection too.
func TestHostileInvalidUTF8(t *testing.T) {
	l, _ := hostileServer(t)
	ctx := hostileContext(t)
	cc := l.Conn(t)
	bad := "\xff\xfe"
	for _, tc := range []struct {
		field                      string
		pipeline, client, function string
	}{
		{"function", "p", "c", "my_server." + bad},
		{"client", "p", bad, "my_server.foo"},
		{"pipeline", bad, "c", "my_server.foo"},
	} {
		msg := encodeMessage(tc.pipeline, tc.client, tc.function, []byte("x"), 1)
		var check palmv1.PalmMessage
		if err := proto.Unmarshal(msg, &check); err == nil {
			t.Fatalf("%s: protobuf-go decodes the hostile message; the test does not test anything", tc.field)
		}

		req, resp := embed(msg), rawBytes(nil)
		err := cc.Invoke(ctx, "/palm.v1.GatewayService/Eval", &req, &resp, grpc.ForceCodecV2(rawCodec{}))
		wantStatus(t, "Eval with invalid UTF-8 in "+tc.field, err, codes.Internal, "UTF-8")

		stream, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true},
			"/palm.v1.GatewayService/Stream", grpc.ForceCodecV2(rawCodec{}))
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.SendMsg(&req); err != nil {
			t.Fatal(err)
		}
		err = stream.RecvMsg(&resp)
		wantStatus(t, "Stream with invalid UTF-8 in "+tc.field, err, codes.Internal, "UTF-8")
	}
	// The same connection still carries good calls.
	resp, err := palmv1.NewGatewayServiceClient(cc).Eval(ctx, &palmv1.EvalRequest{Message: &palmv1.PalmMessage{
		Pipeline: "p", Client: "c", Function: "my_server.foo", Payload: []byte("x"), Sequence: 1,
	}})
	if err != nil || len(resp.GetMessages()) != 1 {
		t.Fatalf("a good Eval on the same connection: %v, %v", resp, err)
	}
	stillServes(t, ctx, l, "my_server")
}

// Malformed function names are refused at the door with InvalidArgument,
// on Eval and on Stream, each with an explanation.
func TestHostileFunctionNames(t *testing.T) {
	l, _ := hostileServer(t)
	ctx := hostileContext(t)
	gw := palmv1.NewGatewayServiceClient(l.Conn(t))
	huge := "my_server." + strings.Repeat("f", route.MaxFunctionLen)
	cases := []struct {
		name, function string
		stage          int64
		code           codes.Code
		says           []string
	}{
		{"empty", "", 0, codes.InvalidArgument, []string{"empty", "server.function"}},
		{"huge", huge, 0, codes.InvalidArgument, []string{fmt.Sprint(len(huge), " bytes"), fmt.Sprint("limit is ", route.MaxFunctionLen)}},
		{"no dot", "my_server", 0, codes.InvalidArgument, []string{`"my_server"`, "server.function"}},
		{"dot only", ".", 0, codes.InvalidArgument, []string{"both be named"}},
		{"no server", ".foo", 0, codes.InvalidArgument, []string{"both be named"}},
		{"no function", "my_server.", 0, codes.InvalidArgument, []string{"both be named"}},
		{"many dots", "my_server.foo.bar.baz", 0, codes.InvalidArgument, []string{"one dot"}},
		{"only dots", strings.Repeat(".", 100), 0, codes.InvalidArgument, []string{"both be named"}},
		{"space inside", "my_server.f oo", 0, codes.InvalidArgument, []string{"malformed step"}},
		{"leading space", " my_server.foo", 0, codes.InvalidArgument, []string{"single spaces"}},
		{"trailing space", "my_server.foo ", 0, codes.InvalidArgument, []string{"single spaces"}},
		{"double space", "my_server.foo  my_server.foo", 0, codes.InvalidArgument, []string{"single spaces"}},
		{"tab", "my_server.foo\tmy_server.foo", 0, codes.InvalidArgument, []string{"no spaces"}},
		{"newline", "my_server.foo\n", 0, codes.InvalidArgument, []string{"no spaces"}},
		{"only spaces", "   ", 0, codes.InvalidArgument, []string{"single spaces"}},
		{"stage past the end", "my_server.foo", 1, codes.InvalidArgument, []string{"stage 1 is outside the 1 step(s)"}},
		{"stage far past the end", "my_server.foo other.foo", 1 << 62, codes.InvalidArgument, []string{fmt.Sprint("stage ", int64(1<<62), " is outside the 2 step(s)")}},
		{"negative stage", "my_server.foo", -1, codes.InvalidArgument, []string{"stage -1 is outside"}},
		{"most negative stage", "my_server.foo", -1 << 63, codes.InvalidArgument, []string{fmt.Sprint("stage ", int64(-1<<63), " is outside")}},
		{"another server", "other.foo", 0, codes.FailedPrecondition, []string{`"other"`, `"my_server"`}},
		{"unknown function", "my_server.bar", 0, codes.NotFound, []string{`"bar"`}},
	}
	for _, tc := range cases {
		msg := &palmv1.PalmMessage{Pipeline: "p", Client: "c", Function: tc.function, Stage: tc.stage, Payload: []byte("x"), Sequence: 7}
		_, err := gw.Eval(ctx, &palmv1.EvalRequest{Message: msg})
		wantStatus(t, "Eval, "+tc.name, err, tc.code, tc.says...)
	}
	// The same, all in one stream: each message gets its own error reply
	// and completion, and a good message at the end its result.
	stream, err := gw.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := &palmv1.StreamRequest{}
	for i, tc := range cases {
		req.Messages = append(req.Messages, &palmv1.PalmMessage{Pipeline: "p", Client: "c", Function: tc.function, Stage: tc.stage, Sequence: uint64(i + 1)})
	}
	good := uint64(len(cases) + 1)
	req.Messages = append(req.Messages, &palmv1.PalmMessage{Pipeline: "p", Client: "c", Function: "my_server.foo", Payload: []byte("x"), Sequence: good})
	if err := stream.Send(req); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	replies := map[uint64]*palmv1.PalmMessage{}
	completed := 0
	for {
		resp, err := stream.Recv()
		if err != nil {
			if err != io.EOF {
				t.Fatalf("stream ended with %v", err)
			}
			break
		}
		for _, m := range resp.GetMessages() {
			replies[m.GetSequence()] = m
		}
		completed += len(resp.GetCompleted())
	}
	if completed != len(req.Messages) {
		t.Errorf("%d completions for %d messages", completed, len(req.Messages))
	}
	for i, tc := range cases {
		e := replies[uint64(i+1)].GetError()
		if codes.Code(e.GetCode()) != tc.code || e.GetMessage() == "" {
			t.Errorf("Stream, %s: error reply %v; want %v", tc.name, e, tc.code)
		}
	}
	if r := replies[good]; r.GetError() != nil || string(r.GetPayload()) != "you sent me x" {
		t.Errorf("the good message after the bad ones: %v", r)
	}
	stillServes(t, ctx, l, "my_server")
}

// A stage out of range is refused also when the message reaches a Pipeline
// through its subscription (here a HandleStream hook upstream sets it): the
// Pipeline answers the client with InvalidArgument naming the stage, and
// goes on serving.
func TestHostileStageThroughSubscription(t *testing.T) {
	stages := map[string]int64{"far": 99, "negative": -1, "most negative": math.MinInt64, "most positive": math.MaxInt64}
	srv, err := pipeline.NewServer("my_server",
		palm.WithLogger(palmtest.Logger(t, hclog.Warn)),
		pipeline.HandleStream(func(m *palmv1.PalmMessage) (string, *palmv1.PalmMessage) {
			if stage, ok := stages[string(m.GetPayload())]; ok {
				m.Stage = stage
			} else {
				m.Stage++
			}
			return "my_server", m
		}))
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) { return m, nil })
	first := palmtest.ServeTCP(t, srv)
	p, err := pipeline.NewPipeline("my_pipeline", pipeline.Upstream{Address: first, Topic: "my_server"}, palm.WithLogger(palmtest.Logger(t, hclog.Warn)))
	if err != nil {
		t.Fatal(err)
	}
	p.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) {
		return append([]byte("and I pipelined "), m...), nil
	})
	last := palmtest.ServeTCP(t, p)
	palmtest.Eventually(t, 10*time.Second, "the pipeline subscribed", func() bool { return p.Subscribed() == 1 })
	c, err := client.New("my_server", first, client.SubAddress(last))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := hostileContext(t)
	steps := client.Steps("my_server.foo", "my_pipeline.foo")
	for payload, stage := range stages {
		_, err := c.Eval(ctx, steps, []byte(payload))
		wantStatus(t, "a message arriving at stage "+payload, err, codes.InvalidArgument,
			fmt.Sprintf("stage %d is outside the 2 step(s)", stage))
		// No step can be read from the message, so none is named: neither
		// "." nor a step that did not fail.
		var me *client.MessageError
		if !errors.As(err, &me) || me.Function != "" || strings.Contains(err.Error(), "failed in") {
			t.Errorf("a message arriving at stage %s: %#v names a step", payload, err)
		}
	}
	got, err := c.Eval(ctx, steps, []byte("fine"))
	if err != nil || string(got) != "and I pipelined fine" {
		t.Fatalf("a good message after the bad ones: %q, %v", got, err)
	}
}

// servePublisher serves a bare parts.Topics in memory until the test ends.
func servePublisher(t *testing.T) (*parts.Topics, *palmtest.Listener) {
	t.Helper()
	topics := parts.NewTopics(0, palmtest.Logger(t, hclog.Warn))
	g := grpc.NewServer()
	palmv1.RegisterPublisherServiceServer(g, topics)
	l := palmtest.Listen()
	served := make(chan error, 1)
	go func() { served <- g.Serve(l) }()
	t.Cleanup(func() {
		topics.Close()
		g.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return topics, l
}

// Subscriptions to topics nobody publishes under are fine and get nothing;
// malformed subscriptions are refused with InvalidArgument saying why.
func TestHostileSubscriptions(t *testing.T) {
	l, _ := hostileServer(t, pipeline.Pipelined())
	ctx := hostileContext(t)
	cc := l.Conn(t)
	pub := palmv1.NewPublisherServiceClient(cc)
	gw := palmv1.NewGatewayServiceClient(cc)

	// One subscription to an unknown topic alone, one to an unknown topic
	// beside the server's own.
	lonelyCtx, cancelLonely := context.WithCancel(ctx)
	lonely, err := pub.Subscribe(lonelyCtx, &palmv1.SubscribeRequest{Topics: []string{"nobody-publishes-this"}})
	if err != nil {
		t.Fatal(err)
	}
	mixed, err := pub.Subscribe(ctx, &palmv1.SubscribeRequest{Topics: []string{"nor-this", "my_server", "my_server"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []palmv1.PublisherService_SubscribeClient{lonely, mixed} {
		if first, err := s.Recv(); err != nil || !first.GetSubscribed() {
			t.Fatalf("confirmation: %v, %v", first, err)
		}
	}
	const n = 10
	for i := range n {
		if _, err := gw.Eval(ctx, &palmv1.EvalRequest{Message: &palmv1.PalmMessage{
			Pipeline: "p", Client: "c", Function: "my_server.foo next.foo", Payload: fmt.Append(nil, i), Sequence: uint64(i + 1),
		}}); err != nil {
			t.Fatal(err)
		}
	}
	// A pipelined server publishes as the Eval ends: every publication is
	// queued by now, and the mixed subscription gets each once.
	for got := 0; got < n; {
		resp, err := mixed.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.GetPublications() {
			if p.GetTopic() != "my_server" {
				t.Errorf("a publication under %q", p.GetTopic())
			}
			got++
		}
	}
	cancelLonely()
	if resp, err := lonely.Recv(); status.Code(err) != codes.Canceled {
		t.Errorf("the subscription to an unknown topic got %v, %v; want nothing, then Canceled", resp, err)
	}

	tooMany := make([]string, parts.MaxTopics+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("t", i)
	}
	long := strings.Repeat("t", route.MaxIDLen+1)
	for _, tc := range []struct {
		name   string
		topics []string
		says   []string
	}{
		{"no topic", nil, []string{"at least one topic"}},
		{"empty topic", []string{"my_server", ""}, []string{`topic ""`, "non-empty"}},
		{"too many topics", tooMany, []string{fmt.Sprint(len(tooMany), " topics"), fmt.Sprint("limit is ", parts.MaxTopics)}},
		{"topic too long", []string{long}, []string{fmt.Sprint(len(long), " bytes"), fmt.Sprint("at most ", route.MaxIDLen, " bytes")}},
	} {
		s, err := pub.Subscribe(ctx, &palmv1.SubscribeRequest{Topics: tc.topics})
		if err == nil {
			_, err = s.Recv()
		}
		wantStatus(t, tc.name, err, codes.InvalidArgument, tc.says...)
	}
	// A topic that is not UTF-8 does not get past the decoder.
	var req rawBytes
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	req = protowire.AppendString(req, "my_server\xff")
	s, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/palm.v1.PublisherService/Subscribe", grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg(&req); err != nil {
		t.Fatal(err)
	}
	s.CloseSend()
	var resp rawBytes
	wantStatus(t, "topic not UTF-8", s.RecvMsg(&resp), codes.Internal, "UTF-8")

	// The server goes on publishing to its subscribers.
	if _, err := gw.Eval(ctx, &palmv1.EvalRequest{Message: &palmv1.PalmMessage{
		Pipeline: "p", Client: "c", Function: "my_server.foo next.foo", Payload: []byte("still there?"), Sequence: n + 1,
	}}); err != nil {
		t.Fatal(err)
	}
	if resp, err := mixed.Recv(); err != nil || string(resp.GetPublications()[0].GetMessage().GetPayload()) != "you sent me still there?" {
		t.Fatalf("a publication after the refused subscriptions: %v, %v", resp, err)
	}
}

// Two thousand subscriptions at once, then all cancelled: the publisher
// forgets every one of them and their goroutines end.
func TestHostileManySubscriptions(t *testing.T) {
	topics, l := servePublisher(t)
	ctx := hostileContext(t)
	cc := l.Conn(t)
	pub := palmv1.NewPublisherServiceClient(cc)
	// Settle what the connection starts, then count.
	if _, err := pub.Subscribe(ctx, &palmv1.SubscribeRequest{Topics: []string{"warm-up"}}); err != nil {
		t.Fatal(err)
	}
	palmtest.Eventually(t, 10*time.Second, "the warm-up subscription", func() bool { return topics.Subscribers() == 1 })
	before := runtime.NumGoroutine()

	const n = 2000
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A few topics each, some shared, some unknown.
			s, err := pub.Subscribe(subCtx, &palmv1.SubscribeRequest{Topics: []string{fmt.Sprint("t", i%7), fmt.Sprint("own", i), "shared"}, Subscriber: fmt.Sprint("s", i)})
			if err == nil {
				_, err = s.Recv()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("subscribing: %v", err)
		}
	}
	if got := topics.Subscribers(); got != n+1 {
		t.Fatalf("%d subscribers after %d confirmed subscriptions; want %d", got, n, n+1)
	}
	// Something published under a shared topic reaches all of them.
	if err := topics.Publish(ctx, "shared", &palmv1.PalmMessage{Payload: []byte("to all")}); err != nil {
		t.Fatal(err)
	}
	cancel()
	palmtest.Eventually(t, 10*time.Second, "every cancelled subscription forgotten", func() bool { return topics.Subscribers() == 1 })
	palmtest.Eventually(t, 10*time.Second, fmt.Sprintf("goroutines back to %d", before), func() bool { return runtime.NumGoroutine() <= before })
	// The publisher still serves a new subscriber.
	s, err := pub.Subscribe(ctx, &palmv1.SubscribeRequest{Topics: []string{"shared"}})
	if err != nil {
		t.Fatal(err)
	}
	if first, err := s.Recv(); err != nil || !first.GetSubscribed() {
		t.Fatalf("a subscription after the crowd: %v, %v", first, err)
	}
	if err := topics.Publish(ctx, "shared", &palmv1.PalmMessage{Payload: []byte("again")}); err != nil {
		t.Fatal(err)
	}
	if resp, err := s.Recv(); err != nil || string(resp.GetPublications()[0].GetMessage().GetPayload()) != "again" {
		t.Fatalf("a publication after the crowd: %v, %v", resp, err)
	}
}

// hostileLimit is the message size limit of the servers in the size tests:
// small, so that going over it is cheap.
const hostileLimit = 64 << 10

// Keys and values over the cache's limits are refused with the codes kv
// documents, naming the sizes; an empty key is refused where it means
// nothing (Get, Delete) and chooses a key on Set.
func TestHostileCache(t *testing.T) {
	l, _ := hostileServer(t, palm.WithMaxMessageSize(hostileLimit))
	ctx := hostileContext(t)
	cache := palmv1.NewCacheServiceClient(l.Conn(t))
	longKey := strings.Repeat("k", kv.MaxKeyLen+1)
	hugeKey := strings.Repeat("k", 100<<10) // still within gRPC's limit
	overValue := make([]byte, hostileLimit+1)
	hugeValue := make([]byte, 4*hostileLimit) // past gRPC's limit too

	_, err := cache.Get(ctx, &palmv1.GetRequest{Key: ""})
	wantStatus(t, "Get of the empty key", err, codes.InvalidArgument, "key is empty")
	_, err = cache.Delete(ctx, &palmv1.DeleteRequest{Key: ""})
	wantStatus(t, "Delete of the empty key", err, codes.InvalidArgument, "key is empty")
	for _, key := range []string{longKey, hugeKey} {
		says := []string{fmt.Sprint("key is ", len(key), " bytes"), fmt.Sprint("limit is ", kv.MaxKeyLen, " bytes")}
		_, err = cache.Get(ctx, &palmv1.GetRequest{Key: key})
		wantStatus(t, fmt.Sprint("Get of a ", len(key), "-byte key"), err, codes.InvalidArgument, says...)
		_, err = cache.Set(ctx, &palmv1.SetRequest{Key: key, Value: []byte("v")})
		wantStatus(t, fmt.Sprint("Set of a ", len(key), "-byte key"), err, codes.InvalidArgument, says...)
		_, err = cache.Delete(ctx, &palmv1.DeleteRequest{Key: key})
		wantStatus(t, fmt.Sprint("Delete of a ", len(key), "-byte key"), err, codes.InvalidArgument, says...)
	}
	_, err = cache.Set(ctx, &palmv1.SetRequest{Key: "k", Value: overValue})
	wantStatus(t, "Set of a value just over the limit", err, codes.ResourceExhausted,
		fmt.Sprint("value is ", len(overValue), " bytes"), fmt.Sprint("limit is ", hostileLimit, " bytes"))
	_, err = cache.Set(ctx, &palmv1.SetRequest{Key: "k", Value: hugeValue})
	wantStatus(t, "Set of a value far over the limit", err, codes.ResourceExhausted, "larger than max")
	// A prefix of any length just matches nothing.
	if resp, err := cache.Keys(ctx, &palmv1.KeysRequest{Prefix: hugeKey, Limit: math.MaxUint32}); err != nil || len(resp.GetKeys()) != 0 {
		t.Errorf("Keys with a huge prefix: %v, %v", resp, err)
	}
	// Nothing of the refused calls was stored; a value at the limit is.
	full := make([]byte, hostileLimit)
	if _, err := cache.Set(ctx, &palmv1.SetRequest{Key: "k", Value: full}); err != nil {
		t.Fatalf("Set of a value at the limit: %v", err)
	}
	resp, err := cache.Keys(ctx, &palmv1.KeysRequest{})
	if err != nil || len(resp.GetKeys()) != 1 || resp.GetKeys()[0] != "k" {
		t.Fatalf("keys stored: %v, %v; want only k", resp, err)
	}

	// palm's client says the same, and errors.Is tells the kinds apart.
	c, err := client.New("my_server", palmtest.Target, l.Option(), palm.WithMaxMessageSize(hostileLimit))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Get(ctx, ""); !errors.Is(err, kv.ErrInvalidKey) || status.Code(err) != codes.InvalidArgument {
		t.Errorf("client Get of the empty key: %v", err)
	}
	if _, err := c.Get(ctx, longKey); !errors.Is(err, kv.ErrInvalidKey) {
		t.Errorf("client Get of a long key: %v", err)
	}
	if _, err := c.Set(ctx, "k", overValue); !errors.Is(err, kv.ErrTooLarge) || status.Code(err) != codes.ResourceExhausted {
		t.Errorf("client Set of a value over the limit: %v", err)
	}
	if got, err := c.Get(ctx, "k"); err != nil || len(got) != hostileLimit {
		t.Errorf("client Get of the value at the limit: %d bytes, %v", len(got), err)
	}
	stillServes(t, ctx, l, "my_server")
}

// A payload over the server's message size limit is refused with
// ResourceExhausted naming the limit: by palm's door check when the
// message still fits gRPC's limit, by gRPC when it does not.
func TestHostilePayloadOverLimit(t *testing.T) {
	l, _ := hostileServer(t, palm.WithMaxMessageSize(hostileLimit))
	ctx := hostileContext(t)
	gw := palmv1.NewGatewayServiceClient(l.Conn(t))
	eval := func(size int) error {
		_, err := gw.Eval(ctx, &palmv1.EvalRequest{Message: &palmv1.PalmMessage{
			Pipeline: "p", Client: "c", Function: "my_server.foo", Payload: make([]byte, size), Sequence: 1,
		}})
		return err
	}
	wantStatus(t, "Eval just over the limit", eval(hostileLimit+1), codes.ResourceExhausted,
		fmt.Sprint("payload is ", hostileLimit+1, " bytes"), fmt.Sprint("limit is ", hostileLimit, " bytes"))
	wantStatus(t, "Eval far over the limit", eval(1<<20), codes.ResourceExhausted, "larger than max")
	if err := eval(hostileLimit); err != nil {
		t.Errorf("Eval at the limit: %v", err)
	}

	// On a stream, the message just over the limit gets an error reply and
	// the stream goes on; one past gRPC's limit ends the stream.
	stream, err := gw.Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&palmv1.StreamRequest{Messages: []*palmv1.PalmMessage{
		{Pipeline: "p", Client: "c", Function: "my_server.foo", Payload: make([]byte, hostileLimit+1), Sequence: 1},
		{Pipeline: "p", Client: "c", Function: "my_server.foo", Payload: []byte("x"), Sequence: 2},
	}}); err != nil {
		t.Fatal(err)
	}
	replies := map[uint64]*palmv1.PalmMessage{}
	for completed := 0; completed < 2; {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range resp.GetMessages() {
			replies[m.GetSequence()] = m
		}
		completed += len(resp.GetCompleted())
	}
	if e := replies[1].GetError(); codes.Code(e.GetCode()) != codes.ResourceExhausted || !strings.Contains(e.GetMessage(), fmt.Sprint("limit is ", hostileLimit)) {
		t.Errorf("stream, payload over the limit: error %v", e)
	}
	if string(replies[2].GetPayload()) != "you sent me x" {
		t.Errorf("stream, the message after it: %v", replies[2])
	}
	if err := stream.Send(&palmv1.StreamRequest{Messages: []*palmv1.PalmMessage{
		{Pipeline: "p", Client: "c", Function: "my_server.foo", Payload: make([]byte, 1<<20), Sequence: 3},
	}}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	wantStatus(t, "stream, payload past gRPC's limit", err, codes.ResourceExhausted, "larger than max")

	// palm's client refuses to send it at all.
	c, err := client.New("my_server", palmtest.Target, l.Option(), palm.WithMaxMessageSize(hostileLimit))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Eval(ctx, "my_server.foo", make([]byte, hostileLimit+1))
	wantStatus(t, "client Eval over the limit", err, codes.ResourceExhausted, fmt.Sprint("limit is ", hostileLimit, " bytes"), "not sent")
	stillServes(t, ctx, l, "my_server")
}

// serveMaster serves a master named "server" in memory until the test ends.
func serveMaster(t *testing.T, opts ...master.Option) (*master.Master, *palmtest.Listener) {
	t.Helper()
	m, err := master.New("server", append([]master.Option{palm.WithLogger(palmtest.Logger(t, hclog.Warn))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m, palmtest.Serve(t, m)
}

// runWorker runs a well-behaved worker of the master at l, serving foo,
// until the test ends.
func runWorker(t *testing.T, l *palmtest.Listener, name string) {
	t.Helper()
	w, err := worker.New(name, palmtest.Target, l.Option(), palm.WithLogger(palmtest.Logger(t, hclog.Warn)))
	if err != nil {
		t.Fatal(err)
	}
	w.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) { return append([]byte("you sent me "), m...), nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker %s: %v", name, err)
		}
	})
}

// hostileWorker opens a raw DispatchService stream to the master at l and
// says hello with the functions and credit given.
func hostileWorker(t *testing.T, ctx context.Context, l *palmtest.Listener, name string, credit uint32, functions ...string) palmv1.DispatchService_WorkClient {
	t.Helper()
	stream, err := palmv1.NewDispatchServiceClient(l.Conn(t)).Work(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&palmv1.WorkRequest{Hello: &palmv1.Hello{Name: name, Functions: functions}, Credit: credit}); err != nil {
		t.Fatal(err)
	}
	if resp, err := stream.Recv(); err != nil || resp.GetWelcome() == nil {
		t.Fatalf("%s: welcome %v, %v", name, resp, err)
	}
	return stream
}

// nextTasks receives the next batch of tasks.
func nextTasks(t *testing.T, stream palmv1.DispatchService_WorkClient) []*palmv1.Task {
	t.Helper()
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("worker stream: %v", err)
		}
		if len(resp.GetTasks()) > 0 {
			return resp.GetTasks()
		}
	}
}

// streamReplies reads a gateway stream until n messages are completed and
// returns the replies in the order they came.
func streamReplies(t *testing.T, stream palmv1.GatewayService_StreamClient, n int) []*palmv1.PalmMessage {
	t.Helper()
	var replies []*palmv1.PalmMessage
	for completed := 0; completed < n; {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("gateway stream: %v", err)
		}
		replies = append(replies, resp.GetMessages()...)
		completed += len(resp.GetCompleted())
	}
	return replies
}

// A worker that answers tasks it was never given, answers a task again
// after finishing it, or reports a failure with a code gRPC does not have:
// the master ignores what does not belong to the worker, the client sees
// each of its messages answered once, and the master goes on serving.
func TestHostileWorkerResults(t *testing.T) {
	m, l := serveMaster(t)
	ctx := hostileContext(t)

	// Malformed hellos are refused.
	for _, tc := range []struct {
		name string
		req  *palmv1.WorkRequest
		says string
	}{
		{"no hello", &palmv1.WorkRequest{Credit: 1}, "must carry a hello"},
		{"long name", &palmv1.WorkRequest{Hello: &palmv1.Hello{Name: strings.Repeat("w", route.MaxIDLen+1)}}, fmt.Sprint("at most ", route.MaxIDLen, " bytes")},
	} {
		stream, err := palmv1.NewDispatchServiceClient(l.Conn(t)).Work(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(tc.req); err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		wantStatus(t, "worker with "+tc.name, err, codes.InvalidArgument, tc.says)
	}

	liar := hostileWorker(t, ctx, l, "liar", 1, "foo")
	palmtest.Eventually(t, 10*time.Second, "the worker joined", func() bool { return m.Workers() == 1 })
	gw, err := palmv1.NewGatewayServiceClient(l.Conn(t)).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := func(seq uint64) {
		t.Helper()
		if err := gw.Send(&palmv1.StreamRequest{Messages: []*palmv1.PalmMessage{{
			Pipeline: "p", Client: "c", Function: "server.foo", Payload: fmt.Append(nil, "message ", seq), Sequence: seq,
		}}}); err != nil {
			t.Fatal(err)
		}
	}
	answer := func(text string) *palmv1.PalmMessage { return &palmv1.PalmMessage{Payload: []byte(text)} }

	send(1)
	task := nextTasks(t, liar)[0]
	if err := liar.Send(&palmv1.WorkRequest{
		Results: []*palmv1.TaskResult{
			{TaskId: task.GetId() + 1000, Message: answer("for a task never given")},
			{TaskId: 0, Message: answer("for task 0")},
			{TaskId: task.GetId(), Message: answer("the answer")},
		},
		Done:   []*palmv1.TaskDone{{TaskId: task.GetId() + 1000}, {TaskId: task.GetId()}},
		Credit: 1,
	}); err != nil {
		t.Fatal(err)
	}
	// The same answer again, after the task is done.
	if err := liar.Send(&palmv1.WorkRequest{
		Results: []*palmv1.TaskResult{{TaskId: task.GetId(), Message: answer("a late duplicate")}},
		Done:    []*palmv1.TaskDone{{TaskId: task.GetId()}},
	}); err != nil {
		t.Fatal(err)
	}
	send(2)
	task = nextTasks(t, liar)[0]
	if err := liar.Send(&palmv1.WorkRequest{
		Done: []*palmv1.TaskDone{{TaskId: task.GetId(), Error: &palmv1.Error{Code: 999, Message: "a code from nowhere"}}},
	}); err != nil {
		t.Fatal(err)
	}
	replies := streamReplies(t, gw, 2)
	if len(replies) != 2 {
		t.Fatalf("%d replies for 2 messages: %v", len(replies), replies)
	}
	if r := replies[0]; r.GetSequence() != 1 || string(r.GetPayload()) != "the answer" || r.GetClient() != "c" {
		t.Errorf("reply to message 1: %v", r)
	}
	if e := replies[1].GetError(); replies[1].GetSequence() != 2 || codes.Code(e.GetCode()) != codes.Unknown || e.GetMessage() != "a code from nowhere" {
		t.Errorf("reply to message 2: %v; want the error with code Unknown", replies[1])
	}
	// A failure whose message is huge reaches an Eval as a status the
	// client can read.
	evalDone := make(chan error, 1)
	go func() {
		_, err := palmv1.NewGatewayServiceClient(l.Conn(t)).Eval(ctx, &palmv1.EvalRequest{Message: &palmv1.PalmMessage{
			Pipeline: "p", Client: "c", Function: "server.foo", Payload: []byte("x"), Sequence: 1,
		}})
		evalDone <- err
	}()
	if err := liar.Send(&palmv1.WorkRequest{Credit: 1}); err != nil {
		t.Fatal(err)
	}
	task = nextTasks(t, liar)[0]
	if err := liar.Send(&palmv1.WorkRequest{
		Done: []*palmv1.TaskDone{{TaskId: task.GetId(), Error: &palmv1.Error{Code: uint32(codes.Aborted), Message: strings.Repeat("long story ", 30<<10)}}},
	}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "Eval failing with a huge message", <-evalDone, codes.Aborted, "long story")

	// The master hands the liar nothing more than its credit, and serves a
	// good worker's client as usual.
	runWorker(t, l, "good")
	palmtest.Eventually(t, 10*time.Second, "the good worker joined", func() bool { return m.Workers() == 2 })
	c, err := client.New("server", palmtest.Target, l.Option())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Eval(ctx, "server.foo", []byte("to the good one"))
	if err != nil {
		t.Fatal(err)
	}
}

// A worker that sends a result larger than the master accepts loses its
// stream with ResourceExhausted; its task goes to another worker, and the
// client gets that worker's answer.
func TestHostileWorkerHugeResult(t *testing.T) {
	m, l := serveMaster(t, palm.WithMaxMessageSize(hostileLimit))
	ctx := hostileContext(t)
	liar := hostileWorker(t, ctx, l, "liar", 1, "foo")
	palmtest.Eventually(t, 10*time.Second, "the worker joined", func() bool { return m.Workers() == 1 })
	c, err := client.New("server", palmtest.Target, l.Option())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type answer struct {
		reply []byte
		err   error
	}
	evalDone := make(chan answer, 1)
	go func() {
		reply, err := c.Eval(ctx, "server.foo", []byte("x"))
		evalDone <- answer{reply, err}
	}()
	task := nextTasks(t, liar)[0]
	if err := liar.Send(&palmv1.WorkRequest{
		Results: []*palmv1.TaskResult{{TaskId: task.GetId(), Message: &palmv1.PalmMessage{Payload: make([]byte, 4*hostileLimit)}}},
		Done:    []*palmv1.TaskDone{{TaskId: task.GetId()}},
	}); err != nil {
		t.Fatal(err)
	}
	var err2 error
	for err2 == nil {
		_, err2 = liar.Recv()
	}
	wantStatus(t, "the worker's stream after a huge result", err2, codes.ResourceExhausted, "larger than max")
	palmtest.Eventually(t, 10*time.Second, "the worker left", func() bool { return m.Workers() == 0 })
	runWorker(t, l, "good")
	got := <-evalDone
	if got.err != nil || string(got.reply) != "you sent me x" {
		t.Fatalf("the message the liar failed to answer: %q, %v", got.reply, got.err)
	}
	stillServes(t, ctx, l, "server")
}

// A worker that grants absurd credit holds no more than dispatch.MaxCredit
// tasks; the rest wait for other workers, who serve them.
func TestHostileWorkerCredit(t *testing.T) {
	const n = dispatch.MaxCredit + 900
	m, l := serveMaster(t, master.Window(2*n))
	ctx := hostileContext(t)
	greedyCtx, leave := context.WithCancel(ctx)
	defer leave()
	greedy := hostileWorker(t, greedyCtx, l, "greedy", math.MaxUint32, "foo")
	palmtest.Eventually(t, 10*time.Second, "the worker joined", func() bool { return m.Workers() == 1 })
	c, err := client.New("server", palmtest.Target, l.Option(), client.Window(2*n))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var good, greedyAnswers atomic.Int64
	jobDone := make(chan error, 1)
	go func() {
		for reply, err := range c.Job(ctx, "server.foo", client.Repeat([]byte("x"), n)) {
			switch {
			case err != nil:
				jobDone <- err
				return
			case string(reply) == "you sent me x":
				good.Add(1)
			case string(reply) == "greedy took x":
				greedyAnswers.Add(1)
			default:
				jobDone <- fmt.Errorf("reply %q", reply)
				return
			}
		}
		jobDone <- nil
	}()
	var held []*palmv1.Task
	for len(held) < dispatch.MaxCredit {
		held = append(held, nextTasks(t, greedy)...)
	}
	if len(held) != dispatch.MaxCredit {
		t.Fatalf("the worker that granted %d credit got %d tasks; want %d", uint32(math.MaxUint32), len(held), dispatch.MaxCredit)
	}
	// It holds all it may: the others wait for a worker with credit, who
	// gets every one of them.
	runWorker(t, l, "good")
	palmtest.Eventually(t, 20*time.Second, "the good worker answered the rest", func() bool { return good.Load() == n-dispatch.MaxCredit })
	// Absurd credit again, with its tasks finished: it gets none of the
	// others, for there are none left.
	req := &palmv1.WorkRequest{Credit: math.MaxUint32}
	for _, task := range held {
		req.Results = append(req.Results, &palmv1.TaskResult{TaskId: task.GetId(), Message: &palmv1.PalmMessage{Payload: []byte("greedy took x")}})
		req.Done = append(req.Done, &palmv1.TaskDone{TaskId: task.GetId()})
	}
	if err := greedy.Send(req); err != nil {
		t.Fatal(err)
	}
	if err := <-jobDone; err != nil {
		t.Fatal(err)
	}
	if good.Load() != n-dispatch.MaxCredit || greedyAnswers.Load() != dispatch.MaxCredit {
		t.Errorf("answers: %d from the good worker, %d from the greedy one; want %d and %d",
			good.Load(), greedyAnswers.Load(), n-dispatch.MaxCredit, dispatch.MaxCredit)
	}
	// The greedy worker, which answers no more, leaves; the master serves on.
	leave()
	palmtest.Eventually(t, 10*time.Second, "the greedy worker left", func() bool { return m.Workers() == 1 })
	stillServes(t, ctx, l, "server")
}

// echoServer serves my_server.foo, which answers "you sent me " and the
// payload, and counts its calls.
func echoServer(t *testing.T, opts ...pipeline.ServerOption) (*palmtest.Listener, *atomic.Int64) {
	t.Helper()
	calls := new(atomic.Int64)
	srv, err := pipeline.NewServer("my_server", append([]pipeline.ServerOption{palm.WithLogger(palmtest.Logger(t, hclog.Warn))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) {
		calls.Add(1)
		return append([]byte("you sent me "), m...), nil
	})
	return palmtest.Serve(t, srv), calls
}

// deafClient opens a stream to my_server at l and sends n messages of size
// bytes on it, one per request, reading nothing; it counts what Send took,
// and reports how sending ended (nil when all n were sent).
func deafClient(t *testing.T, ctx context.Context, l *palmtest.Listener, size, n int) (*atomic.Int64, <-chan error) {
	t.Helper()
	deaf, err := palmv1.NewGatewayServiceClient(l.Conn(t)).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent, sending := new(atomic.Int64), make(chan error, 1)
	go func() {
		payload := make([]byte, size)
		for i := range n {
			err := deaf.Send(&palmv1.StreamRequest{Messages: []*palmv1.PalmMessage{{
				Pipeline: "p", Client: "deaf", Function: "my_server.foo", Payload: payload, Sequence: uint64(i + 1),
			}}})
			if err != nil {
				sending <- err
				return
			}
			sent.Add(1)
		}
		sending <- nil
	}()
	return sent, sending
}

// liveHeap is the heap the process holds live: HeapAlloc after two
// collections (the second also empties the sync.Pools the first moved to
// their victim caches). Garbage, which a busy machine leaves more of, is
// not counted.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A client that sends and sends on a stream and never reads a reply costs
// the server a window of messages: the server stops reading from it, what
// it retains for that client is bounded by its window (and gRPC's flow
// control), far below what the client tries to push, and other clients are
// served meanwhile.
//
// The test measures what stays live, not the peak of the heap: the peak
// counts garbage, and more of it the busier the machine (the collector
// falls behind), which made an earlier version of this test flaky.
func TestHostileClientNeverReads(t *testing.T) {
	const (
		window = 64
		size   = 64 << 10
		n      = 4096 // n*size = 256 MiB the client tries to push
		others = 500  // messages of the same size from a well-behaved client

		// What the deaf client's stream may keep live, from the windows:
		// the server holds at most window messages and their replies;
		// gRPC buffers at most a stream's flow-control window of data the
		// application has not read, at each end (the server's unread
		// requests, and the deaf client's unread replies, also in this
		// process), and grows that window by BDP estimation up to 16 MiB;
		// 8 MiB more covers connections, goroutines and bookkeeping.
		grpcMaxWindow = 16 << 20
		limit         = window*2*size + 2*grpcMaxWindow + 8<<20
	)
	l, calls := echoServer(t, pipeline.Window(window))
	ctx := hostileContext(t)

	// Measured from what the serving server and earlier tests keep live.
	base := liveHeap()
	deafCtx, hangUp := context.WithCancel(ctx)
	defer hangUp()
	sent, sending := deafClient(t, deafCtx, l, size, n)
	palmtest.Eventually(t, 10*time.Second, "the server took a window of the deaf client's messages", func() bool { return calls.Load() >= window })

	// Meanwhile a well-behaved client moves several times what the server
	// took from the deaf one, which keeps pushing.
	wellBehaved := func() {
		c, err := client.New("my_server", palmtest.Target, l.Option(), client.Window(16))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		answered := 0
		for reply, err := range c.Job(ctx, "my_server.foo", client.Repeat(make([]byte, size), others)) {
			if err != nil {
				t.Fatal(err)
			}
			if len(reply) != len("you sent me ")+size {
				t.Fatalf("a reply of %d bytes", len(reply))
			}
			answered++
		}
		if answered != others {
			t.Fatalf("the well-behaved client got %d replies of %d", answered, others)
		}
	}
	wellBehaved()

	// The well-behaved client has gone; the deaf one is still held back.
	// What the process keeps live above the base is what its stream costs.
	live := liveHeap()
	retained := live - min(live, base)
	deafCalls, deafSent := calls.Load()-others, sent.Load()
	hangUp()
	if err := <-sending; err == nil {
		t.Errorf("the deaf client sent all its %d messages (%d MiB): nothing held it back", n, n*size>>20)
	}
	t.Logf("the deaf client sent %d messages (%d MiB) and the server ran %d of them; its stream keeps %d MiB live (the limit is %d MiB)",
		deafSent, deafSent*size>>20, deafCalls, retained>>20, limit>>20)
	if deafCalls >= n/4 {
		t.Errorf("the server ran %d of the deaf client's messages; want it to stop reading after a window or so", deafCalls)
	}
	if retained > limit {
		t.Errorf("the deaf client's stream keeps %d MiB live; want at most %d MiB (a window of %d messages of %d KiB and their replies, gRPC's flow-control windows, and 8 MiB)",
			retained>>20, limit>>20, window, size>>10)
	}
	stillServes(t, ctx, l, "my_server")
}
