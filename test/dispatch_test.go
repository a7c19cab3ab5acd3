package test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
)

// evalIsQuick checks that an Eval of step answers, and in under 100 ms: the
// best of three, so that one pause of a loaded machine does not count.
func evalIsQuick(t *testing.T, c *client.Client, step string) {
	t.Helper()
	best := time.Hour
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		_, err := c.Eval(ctx, step, []byte("x"))
		took := time.Since(start)
		cancel()
		if err != nil {
			t.Fatalf("eval %s: %v", step, err)
		}
		best = min(best, took)
	}
	if best > 100*time.Millisecond {
		t.Fatalf("eval %s took %v at best; want under 100 ms", step, best)
	}
}

// jobErrors runs a job and returns its error count by code, and whether it
// ended by itself before ctx did.
func jobErrors(ctx context.Context, c *client.Client, step string, n int) (map[codes.Code]int, []string) {
	codesSeen := map[codes.Code]int{}
	var msgs []string
	for _, err := range c.Job(ctx, step, numbered("m", n)) {
		if err != nil {
			codesSeen[status.Code(err)]++
			if len(msgs) < 3 {
				msgs = append(msgs, err.Error())
			}
		}
	}
	return codesSeen, msgs
}

// Ten thousand messages for a function no worker serves are answered
// NOT_FOUND at once, naming what the workers serve, and leave nothing
// behind: the next Eval of a served function answers at once.
func TestDispatchUnservedFunction(t *testing.T) {
	bin := testworkerBinary(t)
	m, addr := startMaster(t)
	startWorker(t, bin, addr, "w1", "--functions", "foo,bar")
	waitWorkers(t, m, 1)
	c := newClient(t, addr)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen, msgs := jobErrors(ctx, c, "server.nobody", 10000)
	if ctx.Err() != nil {
		t.Fatal("the job for an unserved function did not end by itself")
	}
	if seen[codes.NotFound] != 10000 || len(seen) != 1 {
		t.Fatalf("errors by code: %v (%v); want 10000 NotFound", seen, msgs)
	}
	if !strings.Contains(msgs[0], `"nobody"`) || !strings.Contains(msgs[0], "bar, foo") {
		t.Fatalf("the error names neither the function nor what is served: %s", msgs[0])
	}
	if q := m.Queued(); q != 0 {
		t.Fatalf("%d tasks still queued", q)
	}
	evalIsQuick(t, c, "server.foo")
}

// A backlog of one function does not hold up another's Eval, and the
// waiting tasks of a client that goes away leave the queue at once.
func TestDispatchBacklogAndGoneClient(t *testing.T) {
	bin := testworkerBinary(t)
	m, addr := startMaster(t, master.QueueSize(20000))
	startWorker(t, bin, addr, "slow", "--functions", "foo", "--delay", "1h")
	startWorker(t, bin, addr, "idle", "--functions", "bar")
	waitWorkers(t, m, 2)

	leaver := newClient(t, addr)
	ctx, leave := context.WithCancel(context.Background())
	defer leave()
	done := make(chan struct{}, 10)
	for range 10 { // ten jobs of 1000: ten windows' worth of tasks queued
		go func() {
			defer func() { done <- struct{}{} }()
			for range leaver.Job(ctx, "server.foo", numbered("m", 1000)) {
			}
		}()
	}
	palmtest.Eventually(t, 30*time.Second, "10,000 tasks queued", func() bool { return m.Queued() >= 9999 })
	c := newClient(t, addr)
	evalIsQuick(t, c, "server.bar")

	leave() // the client goes, with its tasks still queued
	palmtest.Eventually(t, 5*time.Second, "the queue emptied", func() bool { return m.Queued() == 0 })
	for range 10 {
		<-done
	}
	evalIsQuick(t, c, "server.bar")
}

// A task a worker holds past the task timeout goes to another worker, and
// after MaxAttempts the client gets DEADLINE_EXCEEDED naming the timeout.
func TestDispatchTaskTimeout(t *testing.T) {
	bin := testworkerBinary(t)
	m, addr := startMaster(t, master.TaskTimeout(300*time.Millisecond), master.MaxAttempts(2))
	startWorker(t, bin, addr, "hangs1", "--delay", "1h")
	startWorker(t, bin, addr, "hangs2", "--delay", "1h")
	waitWorkers(t, m, 2)
	c := newClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Eval(ctx, "server.foo", []byte("x"))
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "TaskTimeout") {
		t.Fatalf("eval of a task that never ends: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("the client's own deadline ended it")
	}
}

// Messages whose own timeout (timeout_ms, as any client may set it) runs
// out while they wait are answered DEADLINE_EXCEEDED on the stream, which
// stays open; the one a worker holds is stopped by the worker when the
// time it was handed runs out.
func TestDispatchMessageTimeout(t *testing.T) {
	bin := testworkerBinary(t)
	m, addr := startMaster(t)
	startWorker(t, bin, addr, "slow", "--delay", "1h")
	waitWorkers(t, m, 1)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := palmv1.NewGatewayServiceClient(conn).Stream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req := &palmv1.StreamRequest{}
	for i := range 100 {
		req.Messages = append(req.Messages, &palmv1.PalmMessage{
			Pipeline: "p", Client: "c", Function: "server.foo", Sequence: uint64(i + 1),
			Payload: []byte("x"), TimeoutMs: 500,
		})
	}
	if err := stream.Send(req); err != nil {
		t.Fatal(err)
	}
	late := map[uint64]bool{}
	for len(late) < 100 {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("after %d replies: %v", len(late), err)
		}
		for _, r := range resp.GetMessages() {
			if codes.Code(r.GetError().GetCode()) != codes.DeadlineExceeded {
				t.Fatalf("reply %d: %v; want DEADLINE_EXCEEDED", r.GetSequence(), r.GetError())
			}
			late[r.GetSequence()] = true
		}
	}
	if q := m.Queued(); q != 0 {
		t.Fatalf("%d tasks still queued", q)
	}
	stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("the stream ended with %v, not cleanly", err)
	}
}

// A worker's hello may name at most 256 functions of at most 128 bytes, so
// that no worker can grow the master's memory or its InfoService answer;
// the master keeps serving the others, and Info stays small.
func TestDispatchHelloBounded(t *testing.T) {
	m, addr := startMaster(t)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	many := make([]string, 10000)
	for i := range many {
		many[i] = fmt.Sprintf("f%d", i)
	}
	for _, tc := range []struct {
		name      string
		functions []string
		says      string
	}{
		{"10,000 functions", many, "at most 256"},
		{"a long function name", []string{strings.Repeat("f", 129)}, "at most 128 bytes"},
	} {
		stream, err := palmv1.NewDispatchServiceClient(conn).Work(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&palmv1.WorkRequest{Hello: &palmv1.Hello{Name: "greedy", Functions: tc.functions}, Credit: 1}); err != nil {
			t.Fatal(err)
		}
		_, err = stream.Recv()
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("hello with %s: %v; want InvalidArgument saying %q", tc.name, err, tc.says)
		}
	}
	if m.Workers() != 0 {
		t.Fatalf("%d workers joined", m.Workers())
	}
	info, err := palmv1.NewInfoServiceClient(conn).Info(ctx, &palmv1.InfoRequest{})
	if err != nil || proto.Size(info) > 64<<10 {
		t.Fatalf("info after the greedy hellos: %d bytes, %v", proto.Size(info), err)
	}
}
