package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/internal/pack"
)

// numbered yields "m1", "m2", ... "m<n>", with special payloads at the
// positions given.
func numbered(n int, special map[int]string) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for i := 1; i <= n; i++ {
			p, ok := special[i]
			if !ok {
				p = fmt.Sprintf("m%d", i)
			}
			if !yield([]byte(p)) {
				return
			}
		}
	}
}

// verifyNoLeaks connects c, so that the goroutines of its connection
// exist, and returns a function that checks no goroutine started since is
// left.
func verifyNoLeaks(t *testing.T, c *Client) func() {
	t.Helper()
	if _, err := c.Eval(context.Background(), "srv.echo", []byte("warm up")); err != nil {
		t.Fatalf("Eval: %v", err)
	}
	ignore := goleak.IgnoreCurrent()
	return func() { goleak.VerifyNone(t, ignore) }
}

// result is one value yielded by a Job.
type result struct {
	payload string
	err     error
}

func collect(seq iter.Seq2[[]byte, error]) []result {
	var rs []result
	for p, err := range seq {
		rs = append(rs, result{string(p), err})
	}
	return rs
}

func TestJobThousand(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	const n = 1000

	results := collect(c.Job(context.Background(), "srv.echo", numbered(n, nil), Cache("tag")))

	if len(results) != n {
		t.Fatalf("got %d results; want %d", len(results), n)
	}
	var got []string
	for _, r := range results {
		if r.err != nil {
			t.Fatalf("unexpected error: %v", r.err)
		}
		got = append(got, r.payload)
	}
	var want []string
	for i := 1; i <= n; i++ {
		want = append(want, fmt.Sprintf("M%d", i))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("replies differ from the upper-cased payloads")
	}

	g := ts.gateway
	g.mu.Lock()
	defer g.mu.Unlock()
	pipeline := g.streamed[0].GetPipeline()
	for i, m := range g.streamed {
		if m.GetSequence() != uint64(i+1) || m.GetPipeline() != pipeline || m.GetClient() != c.id ||
			m.GetStage() != 0 || m.GetFunction() != "srv.echo" || m.GetCache() != "tag" {
			t.Fatalf("message %d was %v; want sequence %d, pipeline %q, client %q, stage 0, function srv.echo, cache tag",
				i, m, i+1, pipeline, c.id)
		}
	}
	if g.maxBatch > pack.MaxMessages {
		t.Errorf("a StreamRequest carried %d messages; want at most %d", g.maxBatch, pack.MaxMessages)
	}
	t.Logf("%d messages in %d StreamRequests", len(g.streamed), g.requests)
}

func TestJobMessageErrorsDoNotStopTheJob(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t, palm.WithMaxMessageSize(1024))
	big := strings.Repeat("x", 1025)
	special := map[int]string{10: payloadFail, 20: payloadNone, 30: big, 40: payloadFail}

	results := collect(c.Job(context.Background(), "srv.echo", numbered(50, special)))

	// 50 messages, one of which ("none") has no reply.
	if len(results) != 49 {
		t.Fatalf("got %d results; want 49", len(results))
	}
	failed := map[uint64]codes.Code{}
	for _, r := range results {
		if r.err == nil {
			continue
		}
		var me *MessageError
		if !errors.As(r.err, &me) {
			t.Fatalf("error %v is not a *MessageError", r.err)
		}
		if me.Function != "srv.echo" {
			t.Errorf("MessageError.Function = %q; want srv.echo", me.Function)
		}
		failed[me.Sequence] = status.Code(r.err)
	}
	want := map[uint64]codes.Code{10: codes.Unknown, 30: codes.ResourceExhausted, 40: codes.Unknown}
	if fmt.Sprint(failed) != fmt.Sprint(want) {
		t.Errorf("failed messages = %v; want %v", failed, want)
	}

	g := ts.gateway
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.streamed) != 49 {
		t.Errorf("the server got %d messages; want 49 (the oversize one is not sent)", len(g.streamed))
	}
	for _, m := range g.streamed {
		if m.GetSequence() == 30 {
			t.Errorf("the oversize message was sent")
		}
	}
}

func TestJobOnlyRefusals(t *testing.T) {
	// Nothing reaches the server, so no reply ever comes: the refusals must
	// still be reported and the job must end.
	ts := startServer(t)
	c := ts.newClient(t, palm.WithMaxMessageSize(10))
	results := collect(c.Job(context.Background(), "srv.echo", Repeat([]byte(strings.Repeat("x", 11)), 100)))
	if len(results) != 100 {
		t.Fatalf("got %d results; want 100", len(results))
	}
	for _, r := range results {
		if status.Code(r.err) != codes.ResourceExhausted {
			t.Fatalf("result %v; want ResourceExhausted", r)
		}
	}
}

func TestJobMessagesStopsEarly(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	defer verifyNoLeaks(t, c)()
	results := collect(c.Job(context.Background(), "srv.echo", Repeat([]byte("x"), -1), Messages(10)))
	if len(results) != 10 {
		t.Fatalf("got %d results; want 10", len(results))
	}
	for _, r := range results {
		if r.err != nil || r.payload != "X" {
			t.Fatalf("result %v; want X", r)
		}
	}
}

func TestJobMessagesCountsErrors(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	results := collect(c.Job(context.Background(), "srv.echo", Repeat([]byte(payloadFail), -1), Messages(3)))
	if len(results) != 3 {
		t.Fatalf("got %d results; want 3", len(results))
	}
}

func TestJobBreakLeaksNothing(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	defer verifyNoLeaks(t, c)()
	n := 0
	for p, err := range c.Job(context.Background(), "srv.echo", Repeat([]byte("x"), -1)) {
		if err != nil || string(p) != "X" {
			t.Fatalf("result %q, %v; want X", p, err)
		}
		if n++; n == 5 {
			break
		}
	}
}

func TestJobWindow(t *testing.T) {
	ts := startServer(t)
	ts.gateway.completeEvery = 4
	c := ts.newClient(t, Window(4))
	results := collect(c.Job(context.Background(), "srv.echo", numbered(103, nil)))
	if len(results) != 103 {
		t.Fatalf("got %d results; want 103", len(results))
	}
	ts.gateway.mu.Lock()
	defer ts.gateway.mu.Unlock()
	if ts.gateway.maxOpen > 4 {
		t.Errorf("the server saw %d unfinished messages at once; want at most the window, 4", ts.gateway.maxOpen)
	}
}

func TestJobBatchBytes(t *testing.T) {
	// With a 1000-byte limit, two 600-byte payloads never share a request.
	ts := startServer(t)
	c := ts.newClient(t, palm.WithMaxMessageSize(1000))
	results := collect(c.Job(context.Background(), "srv.echo", Repeat([]byte(strings.Repeat("x", 600)), 50)))
	if len(results) != 50 {
		t.Fatalf("got %d results; want 50", len(results))
	}
	ts.gateway.mu.Lock()
	defer ts.gateway.mu.Unlock()
	if ts.gateway.maxBatch != 1 {
		t.Errorf("a StreamRequest carried %d messages; want 1", ts.gateway.maxBatch)
	}
}

func TestJobCancelWithFullWindow(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t, Window(2))
	defer verifyNoLeaks(t, c)()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	done := make(chan []result)
	go func() { done <- collect(c.Job(ctx, "srv.echo", Repeat([]byte(payloadHold), -1))) }()
	g := ts.gateway
	g.waitFor(t, "two held messages", func() bool { return len(g.streamed) == 2 })
	cancel()
	results := <-done
	if len(results) != 1 || status.Code(results[0].err) != codes.Canceled {
		t.Fatalf("results %v; want one Canceled error", results)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.streamed) != 2 {
		t.Errorf("the server got %d messages; want 2, the window", len(g.streamed))
	}
}

func TestJobStreamError(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	results := collect(c.Job(context.Background(), "srv.echo", numbered(100, map[int]string{50: payloadCrash})))
	if len(results) == 0 || len(results) > 50 {
		t.Fatalf("got %d results; want 1 to 50", len(results))
	}
	last := results[len(results)-1]
	var me *MessageError
	if status.Code(last.err) != codes.DataLoss || errors.As(last.err, &me) {
		t.Fatalf("last result %v; want a plain DataLoss status error", last)
	}
	for _, r := range results[:len(results)-1] {
		if r.err != nil {
			t.Fatalf("result %v before the stream error; want replies only", r)
		}
	}
}

func TestJobBadArguments(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	tests := []struct {
		name     string
		function string
		payloads iter.Seq[[]byte]
		opts     []JobOption
		code     codes.Code
	}{
		{"malformed function", "srv", Repeat(nil, 1), nil, codes.InvalidArgument},
		{"other server", "other.echo", Repeat(nil, 1), nil, codes.FailedPrecondition},
		{"negative messages", "srv.echo", Repeat(nil, 1), []JobOption{Messages(-1)}, codes.InvalidArgument},
		{"nil payloads", "srv.echo", nil, nil, codes.InvalidArgument},
		{"non-UTF-8 cache", "srv.echo", Repeat(nil, 1), []JobOption{Cache("\xff")}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results := collect(c.Job(context.Background(), tt.function, tt.payloads, tt.opts...))
			if len(results) != 1 || status.Code(results[0].err) != tt.code {
				t.Fatalf("results %v; want one error with code %v", results, tt.code)
			}
		})
	}
}

func TestJobEmpty(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	if results := collect(c.Job(context.Background(), "srv.echo", Repeat([]byte("x"), 0))); len(results) != 0 {
		t.Fatalf("results %v; want none", results)
	}
}

func TestJobRangedTwice(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	job := c.Job(context.Background(), "srv.echo", Repeat([]byte("x"), 3))
	if a, b := collect(job), collect(job); len(a) != 3 || len(b) != 3 {
		t.Fatalf("two runs gave %d and %d results; want 3 each", len(a), len(b))
	}
	g := ts.gateway
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.streamed[0].GetPipeline() == g.streamed[3].GetPipeline() {
		t.Errorf("two runs shared a pipeline; want a fresh one per run")
	}
}

func TestJobPayloadsPanic(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	defer verifyNoLeaks(t, c)()
	payloads := func(yield func([]byte) bool) {
		yield([]byte("x"))
		panic("payloads broke")
	}
	defer func() {
		if r := recover(); r != "payloads broke" {
			t.Fatalf("recovered %v; want the payloads' panic", r)
		}
	}()
	for _, err := range c.Job(context.Background(), "srv.echo", payloads) {
		if err != nil {
			t.Errorf("yielded %v; want no error before the panic", err)
		}
	}
	t.Fatal("the Job returned; want the panic raised in the caller")
}

func TestRepeat(t *testing.T) {
	if got := slices.Collect(Repeat([]byte("a"), 3)); len(got) != 3 || string(got[2]) != "a" {
		t.Errorf("Repeat(a, 3) = %q", got)
	}
	if got := slices.Collect(Repeat([]byte("a"), 0)); len(got) != 0 {
		t.Errorf("Repeat(a, 0) = %q; want nothing", got)
	}
	n := 0
	for range Repeat(nil, -1) {
		if n++; n == 1000 {
			break
		}
	}
}
