package test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
)

// Tasks handed to a worker together are packed into responses within the
// message size limit, so that the worker can take each: sixteen 1 MiB
// tasks given at once, when the worker grants its credit, once went in one
// 16 MiB response, which broke the worker's stream (past its 4 MiB limit)
// and ended the tasks ABORTED.
func TestTasksPackedWithinTheMessageLimit(t *testing.T) {
	m, l := serveMaster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := hostileWorker(t, ctx, l, "big", 0, "foo")
	c, err := client.New("server", palmtest.Target, l.Option())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 16
	payload := bytes.Repeat([]byte("x"), 1<<20)
	results := make(chan error, n)
	go func() {
		for _, err := range c.Job(ctx, "server.foo", client.Repeat(payload, n)) {
			results <- err
		}
		close(results)
	}()
	palmtest.Eventually(t, 30*time.Second, "16 tasks waiting for credit", func() bool { return m.Queued() == n })
	if err := w.Send(&palmv1.WorkRequest{Credit: n}); err != nil {
		t.Fatal(err)
	}
	var held []*palmv1.Task
	for len(held) < n {
		tasks := nextTasks(t, w)
		if len(tasks) > 4 {
			t.Errorf("%d tasks of 1 MiB in one response; at most 4 fit the 4 MiB limit", len(tasks))
		}
		held = append(held, tasks...)
	}
	req := &palmv1.WorkRequest{}
	for _, tk := range held {
		req.Done = append(req.Done, &palmv1.TaskDone{TaskId: tk.GetId()})
	}
	if err := w.Send(req); err != nil {
		t.Fatal(err)
	}
	got := 0
	for err := range results {
		if err != nil {
			t.Fatalf("message %d: %v", got+1, err)
		}
		got++
	}
	if got != 0 {
		t.Errorf("%d results; the worker sent none", got)
	}
}
