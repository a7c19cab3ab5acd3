package pipeline_test

import (
	"context"
	"fmt"
	"net"
	"runtime/metrics"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/pipeline"
)

func quiet(t *testing.T) palm.Option { return palm.WithLogger(palmtest.Logger(t, hclog.Warn)) }

// startServer serves a pipelined server named my_server whose foo prefixes
// "you sent me ".
func startServer(t *testing.T, opts ...pipeline.ServerOption) string {
	t.Helper()
	srv, err := pipeline.NewServer("my_server", append([]pipeline.ServerOption{quiet(t), pipeline.Pipelined()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) { return append([]byte("you sent me "), m...), nil })
	srv.HandleFunc("fails", func(context.Context, []byte) ([]byte, error) { return nil, fmt.Errorf("it went wrong") })
	return palmtest.ServeTCP(t, srv)
}

// startPipeline serves a Pipeline named name after from whose foo prefixes
// prefix.
func startPipeline(t *testing.T, name string, from pipeline.Upstream, prefix string, opts ...pipeline.StageOption) (*pipeline.Pipeline, string) {
	t.Helper()
	p, err := pipeline.NewPipeline(name, from, append([]pipeline.StageOption{quiet(t)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	p.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) { return append([]byte(prefix), m...), nil })
	p.HandleFunc("nothing", func(context.Context, []byte) ([]byte, error) { return nil, nil })
	p.HandleFunc("fails", func(context.Context, []byte) ([]byte, error) { return nil, fmt.Errorf("stage failed") })
	addr := palmtest.ServeTCP(t, p)
	palmtest.Eventually(t, 10*time.Second, "the pipeline subscribed", func() bool { return p.Subscribed() == 1 })
	return p, addr
}

func newClient(t *testing.T, server, addr string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(server, addr, append([]client.Option{quiet(t)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPipelineEval(t *testing.T) {
	srv := startServer(t)
	_, last := startPipeline(t, "my_pipeline", pipeline.Upstream{Address: srv, Topic: "my_server"}, "and I pipelined ")
	c := newClient(t, "my_server", srv, client.SubAddress(last))
	got, err := c.Eval(timeout(t), client.Steps("my_server.foo", "my_pipeline.foo"), []byte("a message"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "and I pipelined you sent me a message" {
		t.Fatalf("got %q", got)
	}
}

func TestThreeStageJob(t *testing.T) {
	srv := startServer(t)
	_, mid := startPipeline(t, "first", pipeline.Upstream{Address: srv, Topic: "my_server"}, "1 ", pipeline.Pipelined())
	_, last := startPipeline(t, "second", pipeline.Upstream{Address: mid, Topic: "first"}, "2 ")
	c := newClient(t, "my_server", srv, client.SubAddress(last))
	var got []string
	n := 3000
	for r, err := range c.Job(timeout(t), client.Steps("my_server.foo", "first.foo", "second.foo"), client.Repeat([]byte("x"), n)) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(r))
	}
	if len(got) != n {
		t.Fatalf("got %d replies, want %d", len(got), n)
	}
	for _, g := range got {
		if g != "2 1 you sent me x" {
			t.Fatalf("reply %q", g)
		}
	}
}

// An error at any step reaches the client, from the server or from the end
// of the pipeline, naming the step.
func TestPipelineErrors(t *testing.T) {
	srv := startServer(t)
	_, mid := startPipeline(t, "first", pipeline.Upstream{Address: srv, Topic: "my_server"}, "1 ", pipeline.Pipelined())
	_, last := startPipeline(t, "second", pipeline.Upstream{Address: mid, Topic: "first"}, "2 ")
	c := newClient(t, "my_server", srv, client.SubAddress(last))
	for _, tc := range []struct {
		function, want string
		code           codes.Code
	}{
		{client.Steps("my_server.fails", "first.foo", "second.foo"), "my_server.fails", codes.Unknown},
		{client.Steps("my_server.foo", "first.fails", "second.foo"), "first.fails", codes.Unknown},
		{client.Steps("my_server.foo", "first.unknown", "second.foo"), "first.unknown", codes.NotFound},
		{client.Steps("my_server.foo", "first.foo", "second.fails"), "second.fails", codes.Unknown},
		{client.Steps("my_server.foo", "elsewhere.foo", "second.foo"), "elsewhere.foo", codes.FailedPrecondition},
	} {
		_, err := c.Eval(timeout(t), tc.function, []byte("x"))
		if status.Code(err) != tc.code || !strings.Contains(fmt.Sprint(err), tc.want) {
			t.Errorf("%s: got %v, want %s in %s", tc.function, err, tc.code, tc.want)
		}
	}
	// Errors and results of one job, in one stream.
	var results, failures int
	payloads := slices.Values([][]byte{[]byte("a"), []byte("b")})
	for _, err := range c.Job(timeout(t), client.Steps("my_server.foo", "first.foo", "second.fails"), payloads) {
		if err != nil {
			failures++
		} else {
			results++
		}
	}
	if failures != 2 || results != 0 {
		t.Errorf("got %d results and %d failures, want 0 and 2", results, failures)
	}
}

// Subscribe to a pipelined server, then send at once: the first message
// published after the confirmation is never missed.
func TestSubscribeThenSend(t *testing.T) {
	srv := startServer(t)
	conn, err := grpc.NewClient(srv, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pub := palmv1.NewPublisherServiceClient(conn)
	gw := palmv1.NewGatewayServiceClient(conn)
	ctx := timeout(t)
	for round := range 100 {
		subCtx, cancel := context.WithCancel(ctx)
		sub, err := pub.Subscribe(subCtx, &palmv1.SubscribeRequest{Topics: []string{"my_server"}, Subscriber: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if first, err := sub.Recv(); err != nil || !first.GetSubscribed() {
			t.Fatalf("round %d: confirmation %v, %v", round, first, err)
		}
		payload := fmt.Sprint(round)
		if _, err := gw.Eval(ctx, &palmv1.EvalRequest{Message: &palmv1.PalmMessage{
			Pipeline: "p", Client: "c", Function: "my_server.foo next.foo", Payload: []byte(payload), Sequence: 1,
		}}); err != nil {
			t.Fatal(err)
		}
		resp, err := sub.Recv()
		if err != nil {
			t.Fatal(err)
		}
		m := resp.GetPublications()[0].GetMessage()
		if string(m.GetPayload()) != "you sent me "+payload || m.GetStage() != 1 {
			t.Fatalf("round %d: got %v", round, m)
		}
		cancel()
	}
}

// A subscriber that reads slowly gets every message, in order, and the
// publisher waits for it instead of queueing without bound: the heap stays
// far below what the messages add up to.
func TestSlowSubscriberBoundedMemory(t *testing.T) {
	const (
		n    = 20000
		size = 8 << 10 // n*size = 160 MiB through the server
	)
	srv := startServer(t, pipeline.SubscriberQueue(64))
	conn, err := grpc.NewClient(srv, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound, not a timing: slow machines take long
	defer cancel()
	sub, err := palmv1.NewPublisherServiceClient(conn).Subscribe(ctx, &palmv1.SubscribeRequest{Topics: []string{"my_server"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Recv(); err != nil {
		t.Fatal(err)
	}
	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		// The heap the last GC found live: what the components hold, not
		// the garbage waiting for the next GC.
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	received := make(chan error, 1)
	go func() {
		var next uint64 = 1
		for next <= n {
			resp, err := sub.Recv()
			if err != nil {
				received <- err
				return
			}
			for _, p := range resp.GetPublications() {
				if s := p.GetMessage().GetSequence(); s != next {
					received <- fmt.Errorf("got message %d, want %d", s, next)
					return
				}
				next++
				if next%16 == 0 {
					time.Sleep(time.Millisecond) // a slow reader
				}
			}
		}
		received <- nil
	}()
	c := newClient(t, "my_server", srv, client.Window(256))
	payload := make([]byte, size)
	for _, err := range c.Job(ctx, client.Steps("my_server.foo", "next.foo"), client.Repeat(payload, n)) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-received; err != nil {
		t.Fatal(err)
	}
	close(stopSampling)
	<-sampled
	const limit = 64 << 20
	if p := peak.Load(); p > limit {
		t.Errorf("heap peaked at %d MiB with a slow subscriber; want under %d MiB", p>>20, limit>>20)
	} else {
		t.Logf("heap peak %d MiB for %d MiB sent", p>>20, n*size>>20)
	}
}

// A Pipeline whose connection to its upstream breaks subscribes again by
// itself, and counts what the upstream published meanwhile, also when
// another stage (a tee) received those messages.
func TestResubscribeCountsMissed(t *testing.T) {
	srv := startServer(t)
	proxy := palmtest.NewProxy(t, srv)
	p, last := startPipeline(t, "my_pipeline", pipeline.Upstream{Address: proxy.Addr(), Topic: "my_server"}, "and I pipelined ",
		pipeline.Backoff(5*time.Millisecond, 20*time.Millisecond))
	tee, _ := startPipeline(t, "my_pipeline", pipeline.Upstream{Address: srv, Topic: "my_server"}, "tee ")
	c := newClient(t, "my_server", srv, client.SubAddress(last))
	direct := newClient(t, "my_server", srv)
	ctx := timeout(t)
	steps := client.Steps("my_server.foo", "my_pipeline.foo")
	if _, err := c.Eval(ctx, steps, []byte("before")); err != nil {
		t.Fatal(err)
	}

	proxy.Cut()
	palmtest.Eventually(t, 10*time.Second, "the pipeline notices", func() bool { return p.Subscribed() == 0 })
	for range 3 {
		if _, err := direct.Eval(ctx, steps, []byte("lost")); err != client.ErrNoReply {
			t.Fatalf("got %v, want ErrNoReply (the result went down the pipeline)", err)
		}
	}
	proxy.Restore()
	palmtest.Eventually(t, 10*time.Second, "the pipeline subscribes again", func() bool { return p.Subscribed() == 1 })
	if got := p.Missed(); got != 3 {
		t.Errorf("Missed() = %d, want 3", got)
	}
	if got := tee.Missed(); got != 0 {
		t.Errorf("the tee that stayed: Missed() = %d, want 0", got)
	}
	got, err := c.Eval(ctx, steps, []byte("after"))
	if err != nil || string(got) != "and I pipelined you sent me after" {
		t.Fatalf("after the break: %q, %v", got, err)
	}
}

// A Pipeline follows an upstream that stops and starts again on the same
// address.
func TestUpstreamRestarts(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	serve := func(lis net.Listener) (stop func()) {
		srv, err := pipeline.NewServer("my_server", quiet(t), pipeline.Pipelined())
		if err != nil {
			t.Fatal(err)
		}
		srv.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) { return append([]byte("you sent me "), m...), nil })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx, lis) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	stop := serve(lis)
	p, last := startPipeline(t, "my_pipeline", pipeline.Upstream{Address: addr, Topic: "my_server"}, "and I pipelined ",
		pipeline.Backoff(5*time.Millisecond, 20*time.Millisecond))
	c := newClient(t, "my_server", addr, client.SubAddress(last))
	ctx := timeout(t)
	steps := client.Steps("my_server.foo", "my_pipeline.foo")
	for round := range 3 {
		got, err := c.Eval(ctx, steps, []byte("a message"))
		if err != nil || string(got) != "and I pipelined you sent me a message" {
			t.Fatalf("round %d: %q, %v", round, got, err)
		}
		stop()
		palmtest.Eventually(t, 10*time.Second, "the pipeline notices", func() bool { return p.Subscribed() == 0 })
		if lis, err = net.Listen("tcp", addr); err != nil {
			t.Fatal(err)
		}
		stop = serve(lis)
		palmtest.Eventually(t, 10*time.Second, "the pipeline subscribes again", func() bool { return p.Subscribed() == 1 })
	}
	stop()
	if p.Missed() != 0 {
		t.Errorf("Missed() = %d, want 0: nothing was sent while it was away", p.Missed())
	}
}

// A Sink joins two stages fed by one server that splits its stream.
func TestSinkJoins(t *testing.T) {
	var count atomic.Int64
	evenOdd := pipeline.HandleStream(func(m *palmv1.PalmMessage) (string, *palmv1.PalmMessage) {
		m.Stage++
		if count.Add(1)%2 == 0 {
			return "even", m
		}
		return "odd", m
	})
	srv := startServer(t, evenOdd)
	_, even := startPipeline(t, "my_pipeline", pipeline.Upstream{Address: srv, Topic: "even"}, "even ", pipeline.Pipelined())
	_, odd := startPipeline(t, "my_pipeline", pipeline.Upstream{Address: srv, Topic: "odd"}, "odd ", pipeline.Pipelined())
	sink, err := pipeline.NewSink("my_sink", []pipeline.Upstream{{Address: even, Topic: "my_pipeline"}, {Address: odd, Topic: "my_pipeline"}}, quiet(t))
	if err != nil {
		t.Fatal(err)
	}
	sink.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) { return append([]byte("and gathered "), m...), nil })
	last := palmtest.ServeTCP(t, sink)
	palmtest.Eventually(t, 10*time.Second, "the sink subscribed", func() bool { return sink.Subscribed() == 2 })

	c := newClient(t, "my_server", srv, client.SubAddress(last))
	got := map[string]int{}
	for r, err := range c.Job(timeout(t), client.Steps("my_server.foo", "my_pipeline.foo", "my_sink.foo"), client.Repeat([]byte("x"), 1000)) {
		if err != nil {
			t.Fatal(err)
		}
		got[string(r)]++
	}
	want := map[string]int{"and gathered even you sent me x": 500, "and gathered odd you sent me x": 500}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// Invalid arguments and option values are refused by name. (An option that
// belongs to another component does not compile: see test/compile_test.go.)
func TestStageOptions(t *testing.T) {
	up := pipeline.Upstream{Address: "127.0.0.1:1", Topic: "x"}
	for _, tc := range []struct {
		name string
		make func() error
		want string
	}{
		{"negative window", func() error { _, err := pipeline.NewServer("s", pipeline.Window(-3)); return err }, "pipeline: Window(-3): must be at least 1"},
		{"negative queue", func() error {
			_, err := pipeline.NewSink("s", []pipeline.Upstream{up}, pipeline.SubscriberQueue(-1))
			return err
		}, "pipeline: SubscriberQueue(-1)"},
		{"bad backoff", func() error {
			_, err := pipeline.NewPipeline("p", up, pipeline.Backoff(time.Second, time.Millisecond))
			return err
		}, "need 0 < min <= max"},
		{"no upstream", func() error { _, err := pipeline.NewSink("s", nil); return err }, "at least one upstream"},
		{"no address", func() error { _, err := pipeline.NewPipeline("p", pipeline.Upstream{Topic: "x"}); return err }, "has no address"},
		{"no topic", func() error {
			_, err := pipeline.NewPipeline("p", pipeline.Upstream{Address: "127.0.0.1:1"})
			return err
		}, "a topic is non-empty"},
		{"bad name", func() error { _, err := pipeline.NewSink("a.b", []pipeline.Upstream{up}); return err }, `invalid sink name "a.b"`},
	} {
		err := tc.make()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// A client whose subscription to the last stage breaks during a job learns
// it, with the address, instead of waiting for replies that cannot come.
func TestJobSubscriptionBreaks(t *testing.T) {
	srv := startServer(t)
	_, last := startPipeline(t, "my_pipeline", pipeline.Upstream{Address: srv, Topic: "my_server"}, "and I pipelined ")
	proxy := palmtest.NewProxy(t, last)
	c := newClient(t, "my_server", srv, client.SubAddress(proxy.Addr()))
	ctx := timeout(t)
	n := 0
	var failure error
	for _, err := range c.Job(ctx, client.Steps("my_server.foo", "my_pipeline.foo"), client.Repeat([]byte("x"), -1)) {
		if err != nil {
			failure = err
			break
		}
		if n++; n == 100 {
			proxy.Cut()
		}
	}
	if status.Code(failure) != codes.Unavailable || !strings.Contains(failure.Error(), proxy.Addr()+" (SubAddress)") {
		t.Fatalf("got %v after %d replies; want Unavailable naming the SubAddress", failure, n)
	}
}
