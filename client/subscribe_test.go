package client

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/pipeline"
)

// subClient returns a Client of ts that takes its replies from ts's fake
// publisher.
func (ts *testServer) subClient(t *testing.T, opts ...Option) *Client {
	t.Helper()
	return ts.newClient(t, append(opts, SubAddress("passthrough:///bufnet"))...)
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// replyTo is the reply to m that a last stage would publish.
func replyTo(m *palmv1.PalmMessage, payload string) *palmv1.PalmMessage {
	return &palmv1.PalmMessage{Pipeline: m.GetPipeline(), Client: m.GetClient(), Sequence: m.GetSequence(), Payload: []byte(payload)}
}

// A call sends only once its subscription is in place: a reply published
// before the server has even answered the call is not missed. Calls one
// after the other use the one subscription.
func TestSubscriptionBeforeSend(t *testing.T) {
	ts := startServer(t)
	// A slow publisher: a call sent before the confirmation reaches the
	// server before the subscription is in place.
	ts.pub.delay = func() {
		select {
		case <-ts.gateway.evaluated:
		case <-time.After(200 * time.Millisecond):
		}
	}
	c := ts.subClient(t)
	ctx := testCtx(t, 20*time.Second)
	for i := range 3 {
		got, err := c.Eval(ctx, "srv.echo", []byte(payloadPub))
		if err != nil || string(got) != "PUBLISHED" {
			t.Fatalf("Eval %d: %q, %v; want the published reply", i, got, err)
		}
	}
	if subscribed, _ := ts.pub.counts(); subscribed != 1 {
		t.Fatalf("%d subscriptions for three calls; want 1", subscribed)
	}
}

// When the shared subscription breaks, every call waiting on it ends at
// once with the reason, naming the SubAddress; the next call subscribes
// again.
func TestSubscriptionBreakEndsWaitingCalls(t *testing.T) {
	ts := startServer(t)
	c := ts.subClient(t)
	ctx := testCtx(t, 20*time.Second)
	const evals = 3
	errs := make(chan error, evals+1)
	for range evals {
		go func() {
			_, err := c.Eval(ctx, "srv.echo", []byte(payloadNone))
			errs <- err
		}()
	}
	go func() {
		var last error
		for _, err := range c.Job(ctx, "srv.echo", Repeat([]byte(payloadNone), 2)) {
			last = err
		}
		errs <- last
	}()
	ts.gateway.waitFor(t, "the calls to reach the server", func() bool {
		return len(ts.gateway.evals) == evals && len(ts.gateway.streamed) == 2
	})
	ts.pub.cutAll(status.Error(codes.Unavailable, "the publisher restarts"))
	for range evals + 1 {
		err := <-errs
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "passthrough:///bufnet (SubAddress)") ||
			!strings.Contains(err.Error(), "the publisher restarts") {
			t.Errorf("a waiting call ended with %v; want Unavailable naming the SubAddress and the reason", err)
		}
	}
	got, err := c.Eval(ctx, "srv.echo", []byte(payloadPub))
	if err != nil || string(got) != "PUBLISHED" {
		t.Fatalf("after the break: %q, %v", got, err)
	}
	if subscribed, _ := ts.pub.counts(); subscribed != 2 {
		t.Fatalf("%d subscriptions; want 2, the second after the break", subscribed)
	}
}

// An unused subscription is closed after the idle time, and the next call
// opens one again; Close closes it at once.
func TestSubscriptionIdleAndClose(t *testing.T) {
	ts := startServer(t)
	c := ts.subClient(t)
	c.subs.idle = 10 * time.Millisecond
	ctx := testCtx(t, 20*time.Second)
	for round := 1; round <= 2; round++ {
		if got, err := c.Eval(ctx, "srv.echo", []byte(payloadPub)); err != nil || string(got) != "PUBLISHED" {
			t.Fatalf("round %d: %q, %v", round, got, err)
		}
		palmtest.Eventually(t, 10*time.Second, "the idle subscription to close", func() bool {
			_, open := ts.pub.counts()
			return open == 0
		})
		if subscribed, _ := ts.pub.counts(); subscribed != round {
			t.Fatalf("round %d: %d subscriptions; want %d", round, subscribed, round)
		}
	}

	kept := ts.subClient(t) // the default idle time
	if _, err := kept.Eval(ctx, "srv.echo", []byte(payloadPub)); err != nil {
		t.Fatal(err)
	}
	if _, open := ts.pub.counts(); open != 1 {
		t.Fatalf("%d subscriptions open after the call; want 1, kept for the next", open)
	}
	if err := kept.Close(); err != nil {
		t.Fatal(err)
	}
	palmtest.Eventually(t, 10*time.Second, "Close to end the subscription", func() bool {
		_, open := ts.pub.counts()
		return open == 0
	})
	if _, err := kept.Eval(ctx, "srv.echo", []byte(payloadPub)); status.Code(err) != codes.Canceled {
		t.Fatalf("Eval after Close: %v; want Canceled", err)
	}
}

// Calls that come and go while the subscription closes for idleness each
// find one in place, opened anew when need be.
func TestSubscriptionIdleRaces(t *testing.T) {
	ts := startServer(t)
	c := ts.subClient(t)
	c.subs.idle = time.Microsecond
	ctx := testCtx(t, 20*time.Second)
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			for i := range 100 {
				if got, err := c.Eval(ctx, "srv.echo", []byte(payloadPub)); err != nil || string(got) != "PUBLISHED" {
					t.Errorf("goroutine %d, call %d: %q, %v", g, i, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	subscribed, _ := ts.pub.counts()
	t.Logf("%d subscriptions for 200 calls", subscribed)
}

// A reply that comes after its call ended is dropped and counted; the
// subscription goes on.
func TestSubscriptionLateReplyDropped(t *testing.T) {
	ts := startServer(t)
	c := ts.subClient(t)
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Eval(short, "srv.echo", []byte(payloadNone)); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("got %v; want DeadlineExceeded: no reply came in time", err)
	}
	ts.gateway.mu.Lock()
	late := ts.gateway.evals[0]
	ts.gateway.mu.Unlock()
	ctx := testCtx(t, 20*time.Second)
	ts.pub.publish(ctx, replyTo(late, "late"))
	palmtest.Eventually(t, 10*time.Second, "the late reply to be dropped", func() bool { return c.subs.dropped.Load() == 1 })
	if got, err := c.Eval(ctx, "srv.echo", []byte(payloadPub)); err != nil || string(got) != "PUBLISHED" {
		t.Fatalf("after the late reply: %q, %v", got, err)
	}
	if subscribed, _ := ts.pub.counts(); subscribed != 1 {
		t.Fatalf("%d subscriptions; want 1", subscribed)
	}
}

// A Job whose loop stops taking results while more replies come than its
// queue holds ends with ResourceExhausted naming the fix; another Job of
// the Client gets every reply meanwhile.
func TestSubscriptionSlowJobFails(t *testing.T) {
	ts := startServer(t)
	c := ts.subClient(t)
	c.subs.count = 8
	ctx := testCtx(t, 20*time.Second)
	const n, other = 20, 6 // the other job's replies fit its queue, in one response
	type outcome struct {
		replies int
		err     error
	}
	blocked, bDone := make(chan struct{}), make(chan struct{})
	aOut, bOut := make(chan outcome, 1), make(chan outcome, 1)
	go func() {
		var o outcome
		for _, err := range c.Job(ctx, "srv.echo", Repeat([]byte(payloadNone), n), Cache("A")) {
			if err != nil {
				o.err = err
				continue
			}
			if o.replies++; o.replies == 1 {
				close(blocked)
				<-bDone // the slow consumer
			}
		}
		aOut <- o
	}()
	go func() {
		var o outcome
		for _, err := range c.Job(ctx, "srv.echo", Repeat([]byte(payloadNone), other), Cache("B")) {
			if err != nil {
				o.err = err
				continue
			}
			o.replies++
		}
		bOut <- o
	}()
	ts.gateway.waitFor(t, "both jobs' messages to reach the server", func() bool { return len(ts.gateway.streamed) == n+other })
	var a, b []*palmv1.PalmMessage
	ts.gateway.mu.Lock()
	for _, m := range ts.gateway.streamed {
		if m.GetCache() == "A" {
			a = append(a, replyTo(m, "a"))
		} else {
			b = append(b, replyTo(m, "b"))
		}
	}
	ts.gateway.mu.Unlock()
	ts.pub.publish(ctx, a[0])
	select {
	case <-blocked:
	case <-ctx.Done():
		t.Fatal("the slow job never had its first reply")
	}
	ts.pub.publish(ctx, a[1:]...)
	ts.pub.publish(ctx, b...)
	select {
	case o := <-bOut:
		if o.replies != other || o.err != nil {
			t.Errorf("the other job: %d replies, %v; want %d and no error", o.replies, o.err, other)
		}
	case <-ctx.Done():
		t.Fatal("the other job did not end while the slow one held its replies")
	}
	close(bDone)
	o := <-aOut
	if status.Code(o.err) != codes.ResourceExhausted || !strings.Contains(o.err.Error(), "take the results faster") ||
		!strings.Contains(o.err.Error(), "client.Window") {
		t.Fatalf("the slow job ended with %v; want ResourceExhausted naming the fix", o.err)
	}
	if o.replies > 1+c.subs.count {
		t.Fatalf("the slow job had %d replies; its queue holds %d", o.replies, c.subs.count)
	}
	t.Logf("the slow job had %d replies, then: %v", o.replies, o.err)
}

// subscribeCounter counts the Subscribe calls a component serves.
type subscribeCounter struct{ calls atomic.Int64 }

func (s *subscribeCounter) option() palm.Option {
	return palm.WithServerOptions(grpc.ChainStreamInterceptor(
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if info.FullMethod == palmv1.PublisherService_Subscribe_FullMethodName {
				s.calls.Add(1)
			}
			return h(srv, ss)
		}))
}

// startTwoStage serves the pipelined server srv, whose echo prefixes "1:",
// and the Pipeline last after it, whose echo prefixes "2:", and returns a
// Client of srv taking its replies from last, and a count of the
// subscriptions last serves.
func startTwoStage(t *testing.T, lastOpts []pipeline.StageOption, clientOpts ...Option) (*Client, *subscribeCounter) {
	t.Helper()
	quiet := palm.WithLogger(palmtest.Logger(t, hclog.Warn))
	srv, err := pipeline.NewServer(fakeServer, quiet, pipeline.Pipelined())
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("echo", func(_ context.Context, p []byte) ([]byte, error) { return append([]byte("1:"), p...), nil })
	first := palmtest.ServeTCP(t, srv)
	counter := &subscribeCounter{}
	p, err := pipeline.NewPipeline("last", pipeline.Upstream{Address: first, Topic: fakeServer}, append([]pipeline.StageOption{quiet, counter.option()}, lastOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	p.HandleFunc("echo", func(_ context.Context, p []byte) ([]byte, error) { return append([]byte("2:"), p...), nil })
	last := palmtest.ServeTCP(t, p)
	palmtest.Eventually(t, 10*time.Second, "the pipeline to subscribe", func() bool { return p.Subscribed() == 1 })
	c, err := New(fakeServer, first, append([]Option{quiet, SubAddress(last)}, clientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, counter
}

const twoSteps = "srv.echo last.echo"

// 64 concurrent Evals on one Client through a two-stage pipeline each get
// their own reply, through one subscription.
func TestSharedSubscriptionManyEvals(t *testing.T) {
	c, counter := startTwoStage(t, nil)
	ctx := testCtx(t, 20*time.Second)
	const calls = 64
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			payload := fmt.Sprintf("call %d", i)
			got, err := c.Eval(ctx, twoSteps, []byte(payload))
			if err != nil || string(got) != "2:1:"+payload {
				t.Errorf("call %d: %q, %v; want %q", i, got, err, "2:1:"+payload)
			}
		})
	}
	wg.Wait()
	if n := counter.calls.Load(); n != 1 {
		t.Fatalf("%d subscriptions at the last stage for %d concurrent calls; want 1", n, calls)
	}
}

// Concurrent Jobs on one Client each get exactly their own replies,
// through one subscription.
func TestSharedSubscriptionJobs(t *testing.T) {
	c, counter := startTwoStage(t, nil)
	ctx := testCtx(t, 20*time.Second)
	const jobs, each = 8, 300
	var wg sync.WaitGroup
	for j := range jobs {
		wg.Go(func() {
			payloads := func(yield func([]byte) bool) {
				for i := range each {
					if !yield(fmt.Appendf(nil, "job %d message %d", j, i)) {
						return
					}
				}
			}
			seen := map[string]bool{}
			for r, err := range c.Job(ctx, twoSteps, payloads) {
				if err != nil {
					t.Errorf("job %d: %v", j, err)
					return
				}
				if !bytes.HasPrefix(r, fmt.Appendf(nil, "2:1:job %d message ", j)) || seen[string(r)] {
					t.Errorf("job %d got %q", j, r)
					return
				}
				seen[string(r)] = true
			}
			if len(seen) != each {
				t.Errorf("job %d: %d replies; want %d", j, len(seen), each)
			}
		})
	}
	wg.Wait()
	if n := counter.calls.Load(); n != 1 {
		t.Fatalf("%d subscriptions at the last stage for %d concurrent jobs; want 1", n, jobs)
	}
}

// A Job whose loop stops taking results does not hold up another Job of
// the same Client: it stops sending until it takes them, and then goes on.
// (The last stage would wait a minute for a subscriber that does not read,
// so a Client that stopped reading its subscription would hold up both.)
func TestSharedSubscriptionSlowJobWaits(t *testing.T) {
	c, _ := startTwoStage(t, []pipeline.StageOption{palm.SlowSubscriberTimeout(time.Minute)}, Window(8))
	ctx := testCtx(t, 30*time.Second)
	payload := bytes.Repeat([]byte("x"), 1024)
	blocked, bDone := make(chan struct{}), make(chan struct{})
	aErr := make(chan error, 1)
	go func() {
		results := 0
		for _, err := range c.Job(ctx, twoSteps, Repeat(payload, 100000)) {
			if err != nil {
				aErr <- fmt.Errorf("after %d results: %w", results, err)
				return
			}
			if results++; results == 1 {
				close(blocked)
				<-bDone // the slow consumer
			}
			if results == 200 {
				break
			}
		}
		aErr <- nil
	}()
	select {
	case <-blocked:
	case <-ctx.Done():
		t.Fatal("the slow job never had its first reply")
	}
	replies := 0
	for r, err := range c.Job(ctx, twoSteps, Repeat(payload, 5000)) {
		if err != nil {
			t.Fatalf("the other job, after %d replies: %v", replies, err)
		}
		if len(r) != len(payload)+4 {
			t.Fatalf("the other job got a reply of %d bytes", len(r))
		}
		replies++
	}
	if replies != 5000 {
		t.Errorf("the other job had %d replies; want 5000", replies)
	}
	// Meanwhile the slow job stopped sending: it holds few replies. (Had it
	// gone on, it would hold about as many as the other job had.)
	c.subs.mu.Lock()
	held := 0
	for _, w := range c.subs.waiters {
		held += len(w.queue)
	}
	c.subs.mu.Unlock()
	t.Logf("the slow job holds %d replies", held)
	if held > 512 {
		t.Errorf("the slow job holds %d replies while its loop does not take them; want it to stop sending at a Window (8) or so", held)
	}
	close(bDone)
	if err := <-aErr; err != nil {
		t.Fatalf("the slow job, once it took its results again: %v", err)
	}
}
