package worker_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/gopalm/palm/worker"
)

// With the default credit, a worker whose function is fast opens its
// window far past the tasks it runs at once, so that the master's batches
// fill; the tasks it runs at once stay within its concurrency.
func TestAdaptiveCreditOpensForAFastWorker(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m)
	var running, most atomic.Int32
	w.HandleFunc("fast", func(_ context.Context, p []byte) ([]byte, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for old := most.Load(); n > old && !most.CompareAndSwap(old, n); old = most.Load() {
		}
		return p, nil
	})
	start(t, w)
	s := m.next(t)
	floor := 2 * runtime.GOMAXPROCS(0)
	if int(s.firstGrant) != floor {
		t.Errorf("first credit %d; want the concurrency, %d", s.firstGrant, floor)
	}
	const n = 20000
	for i := range uint64(n) {
		s.send(task(i+1, "master.fast", "x"))
	}
	s.waitFor(t, fmt.Sprintf("%d dones", n), func() bool { return len(s.dones) == n })
	s.check(t)
	s.locked(func() {
		if s.maxHeld <= 4*floor {
			t.Errorf("a fast worker held at most %d tasks; want its window to open past %d", s.maxHeld, 4*floor)
		}
		if s.maxHeld > worker.DefaultMaxCredit {
			t.Errorf("held %d tasks; the window's ceiling is %d", s.maxHeld, worker.DefaultMaxCredit)
		}
	})
	if got := most.Load(); int(got) > floor {
		t.Errorf("%d handler calls at once; the concurrency is %d", got, floor)
	}
}

// With the default credit, a worker whose function is slow holds hardly
// more tasks than it runs, leaving the rest to other workers.
func TestAdaptiveCreditStaysSmallForASlowWorker(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m, worker.Concurrency(2))
	w.HandleFunc("slow", func(ctx context.Context, p []byte) ([]byte, error) {
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
		}
		return p, nil
	})
	start(t, w)
	s := m.next(t)
	if s.firstGrant != 2 {
		t.Errorf("first credit %d; want the concurrency, 2", s.firstGrant)
	}
	const n = 40
	for i := range uint64(n) {
		s.send(task(i+1, "master.slow", "x"))
	}
	s.waitFor(t, fmt.Sprintf("%d dones", n), func() bool { return len(s.dones) == n })
	s.check(t)
	s.locked(func() {
		// 2 at once, 20 ms each: 100 a second, half a task in 5 ms.
		if s.maxHeld > 3 {
			t.Errorf("a slow worker held %d tasks; want at most its concurrency and one more", s.maxHeld)
		}
	})
}

// Concurrency bounds the handler calls at once while a fixed Credit holds
// more tasks, which wait in the worker's queue.
func TestConcurrencyBelowCredit(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m, worker.Credit(8), worker.Concurrency(1))
	gate := make(chan struct{})
	var running, most atomic.Int32
	w.HandleFunc("wait", func(ctx context.Context, p []byte) ([]byte, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for old := most.Load(); n > old && !most.CompareAndSwap(old, n); old = most.Load() {
		}
		select {
		case <-gate:
		case <-ctx.Done():
		}
		return p, nil
	})
	start(t, w)
	s := m.next(t)
	for i := range uint64(20) {
		s.send(task(i+1, "master.wait", "x"))
	}
	s.waitFor(t, "8 held tasks", func() bool { return len(s.held) == 8 })
	close(gate)
	s.waitFor(t, "20 dones", func() bool { return len(s.dones) == 20 })
	s.check(t)
	if got := most.Load(); got != 1 {
		t.Errorf("%d handler calls at once; want 1 (Concurrency)", got)
	}
	// One at a time, from a queue that keeps the master's order.
	s.locked(func() {
		var order []string
		for _, e := range s.events {
			if strings.HasPrefix(e, "done ") {
				order = append(order, e)
			}
		}
		for i, e := range order {
			if want := fmt.Sprintf("done %d", i+1); e != want {
				t.Fatalf("done number %d is %q; want %q: the queue lost the master's order", i+1, e, want)
			}
		}
	})
}

// A task whose deadline passes while it waits in the worker's queue fails
// with DeadlineExceeded without calling the function.
func TestDeadlinePassesInTheQueue(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m, worker.Credit(2), worker.Concurrency(1))
	var calls atomic.Int32
	w.HandleFunc("slow", func(ctx context.Context, p []byte) ([]byte, error) {
		calls.Add(1)
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
		}
		return p, nil
	})
	start(t, w)
	s := m.next(t)
	first := task(1, "master.slow", "x")
	second := task(2, "master.slow", "x")
	second.TimeoutMs = 50 // passes while the first runs
	s.send(first, second)
	s.waitFor(t, "2 dones", func() bool { return len(s.dones) == 2 })
	s.locked(func() {
		d := s.dones[2]
		if codes.Code(d.GetError().GetCode()) != codes.DeadlineExceeded {
			t.Errorf("task 2: %v; want DeadlineExceeded", d.GetError())
		}
		if e := s.dones[1].GetError(); e != nil {
			t.Errorf("task 1: %v", e)
		}
	})
	if got := calls.Load(); got != 1 {
		t.Errorf("the function was called %d times; want once (the expired task is not run)", got)
	}
}

// A worker starts no goroutine per task: its runners are started once.
func TestNoGoroutinePerTask(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m, worker.Credit(64))
	w.HandleFunc("echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
	start(t, w)
	s := m.next(t)
	run := func(from, n uint64) {
		for i := range n {
			s.send(task(from+i, "master.echo", "x"))
		}
		s.waitFor(t, "dones", func() bool { return len(s.dones) == int(from+n-1) })
	}
	run(1, 1000) // the runners start
	before := created()
	const n = 5000
	run(1001, n)
	// The test's fake master, gRPC and the test itself start a few.
	if got := created() - before; got > n/10 {
		t.Errorf("%d goroutines created for %d tasks; want no goroutine per task", got, n)
	}
}

// created is the number of goroutines the process has created.
func created() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
