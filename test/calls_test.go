package test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/pipeline"
)

func call(seq uint64, payload string) *palmv1.PalmMessage {
	return &palmv1.PalmMessage{Pipeline: "p", Client: "c", Function: "server.foo", Payload: []byte(payload), Sequence: seq}
}

// Calls on one stream end one by one: a cancelled call that waits for a
// worker leaves the master's queue and is completed with no reply, while
// the others go on and are answered once a worker comes; a call numbered
// as one still open ends the stream with INVALID_ARGUMENT.
func TestCallsOnAStream(t *testing.T) {
	m, l := serveMaster(t, master.WaitForWorkers(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := palmv1.NewGatewayServiceClient(l.Conn(t)).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&palmv1.StreamRequest{Calls: true, Messages: []*palmv1.PalmMessage{call(1, "one"), call(2, "two"), call(3, "three")}}); err != nil {
		t.Fatal(err)
	}
	palmtest.Eventually(t, 10*time.Second, "three calls waiting for a worker", func() bool { return m.Queued() == 3 })
	if err := stream.Send(&palmv1.StreamRequest{Cancel: []uint64{2, 99}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetMessages()) != 0 || len(resp.GetCompleted()) != 1 || resp.GetCompleted()[0] != 2 {
		t.Fatalf("after cancelling call 2: %v; want its completion alone, with no reply", resp)
	}
	if q := m.Queued(); q != 2 {
		t.Errorf("%d tasks queued after the cancel; want 2", q)
	}
	runWorker(t, l, "w")
	replies := streamReplies(t, stream, 2)
	got := map[uint64]string{}
	for _, r := range replies {
		got[r.GetSequence()] = string(r.GetPayload())
	}
	if len(replies) != 2 || got[1] != "you sent me one" || got[3] != "you sent me three" {
		t.Errorf("replies %v; want calls 1 and 3 answered", replies)
	}

	// Sequence 4 twice: the second cannot be told from the first.
	if err := stream.Send(&palmv1.StreamRequest{Calls: true, Messages: []*palmv1.PalmMessage{call(4, "slow"), call(4, "again")}}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := stream.Recv()
		if err == nil {
			continue // call 4's own answer
		}
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "number the calls of a stream apart") {
			t.Fatalf("stream ended with %v; want INVALID_ARGUMENT naming the reused sequence", err)
		}
		break
	}
}

// A cancelled call reaches the function running for it in a standalone
// server: its context ends, and the call is completed while the stream
// goes on to answer the next.
func TestCancelledCallStopsItsFunction(t *testing.T) {
	s, err := pipeline.NewServer("server", quietLog(t))
	if err != nil {
		t.Fatal(err)
	}
	started, stopped := make(chan struct{}), make(chan error, 1)
	s.HandleFunc("foo", func(ctx context.Context, p []byte) ([]byte, error) {
		if string(p) != "wait" {
			return p, nil
		}
		close(started)
		select {
		case <-ctx.Done():
			stopped <- ctx.Err()
		case <-time.After(20 * time.Second):
			stopped <- errors.New("the function's context did not end")
		}
		return nil, ctx.Err()
	})
	l := palmtest.Serve(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := palmv1.NewGatewayServiceClient(l.Conn(t)).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&palmv1.StreamRequest{Calls: true, Messages: []*palmv1.PalmMessage{call(1, "wait")}}); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := stream.Send(&palmv1.StreamRequest{Cancel: []uint64{1}}); err != nil {
		t.Fatal(err)
	}
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Fatalf("the function saw %v; want its context cancelled", err)
	}
	streamReplies(t, stream, 1)
	if err := stream.Send(&palmv1.StreamRequest{Calls: true, Messages: []*palmv1.PalmMessage{call(1, "next")}}); err != nil {
		t.Fatal(err)
	}
	if r := streamReplies(t, stream, 1); len(r) != 1 || string(r[0].GetPayload()) != "next" {
		t.Fatalf("replies %v; want the next call answered on the same stream", r)
	}
}

// The Evals of a Client share one stream: many at once, each answered with
// its own reply; an Eval whose context ends is cancelled on the master
// (its task leaves the queue) and the stream goes on.
func TestEvalsShareAStream(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, l := serveMaster(t, master.WaitForWorkers(time.Minute), palm.WithMetrics(reg))
	c, err := client.New("server", palmtest.Target, l.Option(), quietLog(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	short, stop := context.WithCancel(context.Background())
	gave := make(chan error, 1)
	go func() {
		_, err := c.Eval(short, "server.foo", []byte("never"))
		gave <- err
	}()
	palmtest.Eventually(t, 10*time.Second, "the Eval waiting for a worker", func() bool { return m.Queued() == 1 })
	stop()
	if err := <-gave; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled Eval = %v; want Canceled", err)
	}
	palmtest.Eventually(t, 10*time.Second, "the cancelled Eval leaving the queue", func() bool { return m.Queued() == 0 })

	runWorker(t, l, "w")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 64
	errs := make(chan error, n)
	for i := range n {
		go func() {
			want := string(rune('a'+i%26)) + string(rune('0'+i%10))
			got, err := c.Eval(ctx, "server.foo", []byte(want))
			if err == nil && string(got) != "you sent me "+want {
				err = errors.New("Eval of " + want + " got " + string(got))
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := startedCalls(t, reg, "Stream"); n != 1 {
		t.Errorf("the master saw %d streams opened; the Evals of one Client share one", n)
	}
	if n := startedCalls(t, reg, "Eval"); n != 0 {
		t.Errorf("the master saw %d unary Evals; want none", n)
	}
}

// startedCalls is how many calls of the GatewayService method a server
// counted into reg.
func startedCalls(t *testing.T, reg *prometheus.Registry, method string) int {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		if f.GetName() != "grpc_server_started_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["grpc_service"] == "palm.v1.GatewayService" && labels["grpc_method"] == method {
				n += int(m.GetCounter().GetValue())
			}
		}
	}
	return n
}
