package test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
)

// steady waits until n stops growing for a while: the sender is blocked.
func steady(t *testing.T, what string, n func() int64) {
	t.Helper()
	last, since := n(), time.Now()
	palmtest.Eventually(t, 20*time.Second, what, func() bool {
		if v := n(); v != last {
			last, since = v, time.Now()
		}
		return time.Since(since) > 500*time.Millisecond
	})
}

// A client that sends 1,000 messages of 3 MiB and never reads its replies
// holds the server's memory to its stream's byte window, while another
// client is served.
func TestBoundsClientSendsBigNeverReads(t *testing.T) {
	const size = 3 << 20
	l, calls := echoServer(t)
	ctx := hostileContext(t)
	base := liveHeap()
	sent, _ := deafClient(t, ctx, l, size, 1000)
	steady(t, "the deaf client is held back", sent.Load)
	grown := int64(liveHeap()) - int64(base)
	t.Logf("the server took %d of the deaf client's messages (%d sent); the heap grew by %d MiB", calls.Load(), sent.Load(), grown>>20)
	if grown > 128<<20 {
		t.Fatalf("the heap grew by %d MiB for one client that never reads; want under 128 MiB", grown>>20)
	}
	if sent.Load() >= 1000 {
		t.Fatal("every message was taken from a client that reads nothing")
	}
	stillServes(t, ctx, l, "my_server")
}

// A task whose results pass the master's bound fails with
// RESOURCE_EXHAUSTED, and the master keeps no more of them than the bound.
func TestBoundsTaskResults(t *testing.T) {
	const size = 3 << 20
	m, err := master.New("server", palm.WithLogger(palmtest.Logger(t, hclog.Error)))
	if err != nil {
		t.Fatal(err)
	}
	l := palmtest.Serve(t, m)
	ctx := hostileContext(t)
	base := liveHeap()

	w, err := palmv1.NewDispatchServiceClient(l.Conn(t)).Work(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(&palmv1.WorkRequest{Hello: &palmv1.Hello{Name: "greedy", Functions: []string{"foo"}}, Credit: 1}); err != nil {
		t.Fatal(err)
	}
	var flooded atomic.Int64
	go func() {
		var task *palmv1.Task
		for task == nil {
			resp, err := w.Recv()
			if err != nil {
				return
			}
			if len(resp.GetTasks()) > 0 {
				task = resp.GetTasks()[0]
			}
		}
		payload := make([]byte, size)
		for range 150 {
			r := &palmv1.WorkRequest{Results: []*palmv1.TaskResult{{TaskId: task.GetId(), Message: &palmv1.PalmMessage{Payload: payload}}}}
			if w.Send(r) != nil {
				return
			}
			flooded.Add(1)
		}
		w.Send(&palmv1.WorkRequest{Done: []*palmv1.TaskDone{{TaskId: task.GetId()}}, Credit: 1})
	}()
	palmtest.Eventually(t, 10*time.Second, "the worker joined", func() bool { return m.Workers() == 1 })
	c, err := client.New("server", palmtest.Target, l.Option())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Eval(ctx, "server.foo", []byte("x"))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("eval of a task with 150 results of 3 MiB: %v", err)
	}
	steady(t, "the worker sent its flood", flooded.Load)
	if grown := int64(liveHeap()) - int64(base); grown > 128<<20 {
		t.Fatalf("the heap grew by %d MiB; want under 128 MiB", grown>>20)
	}
}
