package worker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/worker"
)

func upper(_ context.Context, p []byte) ([]byte, error) { return bytes.ToUpper(p), nil }

func TestResults(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m, worker.Credit(4))
	w.HandleFunc("upper", upper)
	w.HandleFunc("other", upper)
	start(t, w)
	s := m.next(t)

	if s.hello.GetName() != "w1" || !slices.Equal(s.hello.GetFunctions(), []string{"other", "upper"}) {
		t.Errorf("hello = %v; want name w1, functions [other upper]", s.hello)
	}
	if s.firstGrant != 4 {
		t.Errorf("first credit = %d; want 4", s.firstGrant)
	}
	var tasks []*palmv1.Task
	for i := range uint64(100) {
		tk := task(i+1, "master.upper", fmt.Sprintf("message %d", i+1))
		switch i % 3 {
		case 1: // the server part of the step is not checked
			tk.Message.Function = "elsewhere.upper"
		case 2: // a pipeline: the step at the stage counts
			tk.Message.Function = "first.parse master.upper last.store"
			tk.Message.Stage = 1
		}
		tasks = append(tasks, tk)
	}
	s.send(tasks...)
	s.waitFor(t, "100 dones", func() bool { return len(s.dones) == 100 })
	s.check(t)
	s.locked(func() {
		for _, tk := range tasks {
			id := tk.GetId()
			if e := s.dones[id].GetError(); e != nil {
				t.Errorf("task %d failed: %v", id, e)
			}
			rs := s.results[id]
			if len(rs) != 1 {
				t.Errorf("task %d: %d results; want 1", id, len(rs))
				continue
			}
			// The payload alone: the master takes the routing fields from the task.
			want := &palmv1.PalmMessage{Payload: []byte(fmt.Sprintf("MESSAGE %d", id))}
			if !proto.Equal(rs[0], want) {
				t.Errorf("task %d: result %v; want %v", id, rs[0], want)
			}
		}
		if s.granted != 104 {
			t.Errorf("credit granted = %d; want 104 (4, then 1 per done)", s.granted)
		}
	})
}

func TestCreditNeverExceeded(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m, worker.Credit(3))
	gate := make(chan struct{})
	var running, most atomic.Int32
	w.HandleFunc("wait", func(ctx context.Context, p []byte) ([]byte, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			old := most.Load()
			if n <= old || most.CompareAndSwap(old, n) {
				break
			}
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return p, nil
	})
	start(t, w)
	s := m.next(t)
	for i := range uint64(20) {
		s.send(task(i+1, "master.wait", "x"))
	}
	s.waitFor(t, "three held tasks", func() bool { return len(s.held) == 3 })
	s.locked(func() {
		if s.credit != 0 || s.sent != 3 {
			t.Errorf("with 3 tasks held: credit %d, sent %d; want 0 and 3", s.credit, s.sent)
		}
	})
	close(gate)
	s.waitFor(t, "20 dones", func() bool { return len(s.dones) == 20 })
	s.check(t)
	s.locked(func() {
		if s.maxHeld != 3 {
			t.Errorf("most tasks held = %d; want 3", s.maxHeld)
		}
		if s.granted != 23 || s.credit != 3 {
			t.Errorf("credit granted %d, unused %d; want 23 and 3", s.granted, s.credit)
		}
	})
	if n := most.Load(); n > 3 {
		t.Errorf("%d handler calls at once; want at most 3", n)
	}
}

func TestMux(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m, worker.Credit(2))
	w.HandleMuxFunc("three", func(ctx context.Context, p []byte) iter.Seq2[[]byte, error] {
		return func(yield func([]byte, error) bool) {
			for i := range 3 {
				if !yield(fmt.Appendf(nil, "%s-%d", p, i), nil) {
					return
				}
			}
		}
	})
	start(t, w)
	s := m.next(t)
	for i := range uint64(10) {
		s.send(task(i+1, "master.three", fmt.Sprint(i+1)))
	}
	s.waitFor(t, "10 dones", func() bool { return len(s.dones) == 10 })
	s.check(t)
	s.locked(func() {
		for id := uint64(1); id <= 10; id++ {
			var got []string
			for _, r := range s.results[id] {
				got = append(got, string(r.GetPayload()))
				if r.GetPipeline() != "" || r.GetClient() != "" || r.GetFunction() != "" {
					t.Errorf("task %d: result %v; want the payload alone (the master fills the routing fields)", id, r)
				}
			}
			want := []string{fmt.Sprintf("%d-0", id), fmt.Sprintf("%d-1", id), fmt.Sprintf("%d-2", id)}
			if !slices.Equal(got, want) {
				t.Errorf("task %d: results %q; want %q", id, got, want)
			}
			if e := s.dones[id].GetError(); e != nil {
				t.Errorf("task %d failed: %v", id, e)
			}
		}
	})
}

func TestTaskFailures(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m)
	w.HandleFunc("upper", upper)
	w.HandleFunc("fail", func(context.Context, []byte) ([]byte, error) { return nil, errors.New("boom") })
	w.HandleFunc("deny", func(context.Context, []byte) ([]byte, error) {
		return nil, status.Error(codes.PermissionDenied, "not you")
	})
	w.HandleFunc("panic", func(context.Context, []byte) ([]byte, error) { panic("oh no") })
	w.HandleFunc("nothing", func(context.Context, []byte) ([]byte, error) { return nil, nil })
	w.HandleFunc("badutf8", func(context.Context, []byte) ([]byte, error) { return nil, errors.New("bad \xff byte") })
	w.HandleMuxFunc("muxfail", func(ctx context.Context, p []byte) iter.Seq2[[]byte, error] {
		return func(yield func([]byte, error) bool) {
			if yield([]byte("first"), nil) {
				yield(nil, errors.New("second failed"))
			}
		}
	})
	w.HandleMuxFunc("muxpanic", func(ctx context.Context, p []byte) iter.Seq2[[]byte, error] {
		return func(yield func([]byte, error) bool) { panic("mux oh no") }
	})
	w.HandleMuxFunc("muxnone", func(ctx context.Context, p []byte) iter.Seq2[[]byte, error] {
		return func(yield func([]byte, error) bool) {}
	})
	start(t, w)
	s := m.next(t)

	noMessage := &palmv1.Task{Id: 9}
	cases := []struct {
		task     *palmv1.Task
		code     codes.Code // OK: no error
		message  string     // contained in the error's message
		function string     // the error's function
		results  []string
	}{
		{task: task(1, "master.fail", "x"), code: codes.Unknown, message: "boom", function: "master.fail"},
		{task: task(2, "master.deny", "x"), code: codes.PermissionDenied, message: "not you", function: "master.deny"},
		{task: task(3, "master.panic", "x"), code: codes.Internal, message: "oh no", function: "master.panic"},
		{task: task(4, "master.upper", "after the panic"), results: []string{"AFTER THE PANIC"}},
		{task: task(5, "master.nosuch", "x"), code: codes.NotFound, message: `"nosuch"`, function: "master.nosuch"},
		{task: task(6, "not a step", "x"), code: codes.InvalidArgument, message: "malformed"},
		{task: task(7, "master.nothing", "x")},
		{task: task(8, "master.badutf8", "x"), code: codes.Unknown, message: "bad \uFFFD byte", function: "master.badutf8"},
		{task: noMessage, code: codes.InvalidArgument, message: "no message"},
		{task: task(10, "master.muxfail", "x"), code: codes.Unknown, message: "second failed", function: "master.muxfail", results: []string{"first"}},
		{task: task(11, "master.muxpanic", "x"), code: codes.Internal, message: "mux oh no", function: "master.muxpanic"},
		{task: task(12, "master.muxnone", "x")},
	}
	for _, c := range cases {
		s.send(c.task)
	}
	s.waitFor(t, "every done", func() bool { return len(s.dones) == len(cases) })
	s.check(t)
	s.locked(func() {
		for _, c := range cases {
			id := c.task.GetId()
			e := s.dones[id].GetError()
			if codes.Code(e.GetCode()) != c.code || !strings.Contains(e.GetMessage(), c.message) || e.GetFunction() != c.function {
				t.Errorf("task %d (%s): error %v; want code %v, message with %q, function %q",
					id, c.task.GetMessage().GetFunction(), e, c.code, c.message, c.function)
			}
			var got []string
			for _, r := range s.results[id] {
				got = append(got, string(r.GetPayload()))
			}
			if !slices.Equal(got, c.results) {
				t.Errorf("task %d: results %q; want %q", id, got, c.results)
			}
		}
	})
}

func TestResultTooLarge(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m, palm.WithMaxMessageSize(1000))
	w.HandleFunc("big", func(context.Context, []byte) ([]byte, error) { return make([]byte, 1001), nil })
	w.HandleFunc("fits", func(context.Context, []byte) ([]byte, error) { return make([]byte, 1000), nil })
	start(t, w)
	s := m.next(t)
	s.send(task(1, "master.big", ""), task(2, "master.fits", ""), task(3, "master.fits", ""))
	s.waitFor(t, "three dones", func() bool { return len(s.dones) == 3 })
	s.check(t)
	s.locked(func() {
		if c := codes.Code(s.dones[1].GetError().GetCode()); c != codes.ResourceExhausted || len(s.results[1]) != 0 {
			t.Errorf("oversize result: code %v, %d results; want ResourceExhausted and none", c, len(s.results[1]))
		}
		for _, id := range []uint64{2, 3} {
			if s.dones[id].GetError() != nil || len(s.results[id]) != 1 {
				t.Errorf("task %d: %v, %d results", id, s.dones[id].GetError(), len(s.results[id]))
			}
		}
	})
}

func TestCache(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m)
	if _, err := w.Get(context.Background(), "k"); !errors.Is(err, worker.ErrNotRunning) {
		t.Errorf("Get before Run: %v; want ErrNotRunning", err)
	}
	w.HandleFunc("remember", func(ctx context.Context, p []byte) ([]byte, error) {
		key := "note-" + string(p)
		if _, err := w.Get(ctx, key); !errors.Is(err, kv.ErrNotFound) || status.Code(err) != codes.NotFound {
			return nil, fmt.Errorf("Get before Set: %v; want not found", err)
		}
		if k, err := w.Set(ctx, key, p); err != nil || k != key {
			return nil, fmt.Errorf("Set: %q, %v", k, err)
		}
		return w.Get(ctx, key)
	})
	w.HandleFunc("forget", func(ctx context.Context, p []byte) ([]byte, error) {
		var keys []string
		for k, err := range w.Keys(ctx, "note-") {
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		if _, err := w.Get(ctx, "\xff"); !errors.Is(err, kv.ErrInvalidKey) {
			return nil, fmt.Errorf("Get of a non-UTF-8 key: %v; want ErrInvalidKey", err)
		}
		if _, err := w.Set(ctx, "big", make([]byte, 5<<20)); !errors.Is(err, kv.ErrTooLarge) {
			return nil, fmt.Errorf("Set of 5 MiB: %v; want ErrTooLarge", err)
		}
		fresh, err := w.Set(ctx, "", []byte("v"))
		if err != nil || fresh == "" {
			return nil, fmt.Errorf("Set with an empty key: %q, %v", fresh, err)
		}
		for _, k := range keys {
			if ok, err := w.Delete(ctx, k); !ok || err != nil {
				return nil, fmt.Errorf("Delete(%q) = %v, %v", k, ok, err)
			}
		}
		if ok, err := w.Delete(ctx, "note-a"); ok || err != nil {
			return nil, fmt.Errorf("second Delete = %v, %v; want false, nil", ok, err)
		}
		return []byte(strings.Join(keys, ",")), nil
	})
	start(t, w)
	s := m.next(t)
	s.send(task(1, "master.remember", "a"), task(2, "master.remember", "b"))
	s.waitFor(t, "two dones", func() bool { return len(s.dones) == 2 })
	s.send(task(3, "master.forget", ""))
	s.waitFor(t, "three dones", func() bool { return len(s.dones) == 3 })
	s.check(t)
	s.locked(func() {
		for id, want := range map[uint64]string{1: "a", 2: "b", 3: "note-a,note-b"} {
			if e := s.dones[id].GetError(); e != nil {
				t.Errorf("task %d: %v", id, e)
			} else if got := string(s.results[id][0].GetPayload()); got != want {
				t.Errorf("task %d: %q; want %q", id, got, want)
			}
		}
	})
	if n, _ := m.store.Len(context.Background()); n != 1 {
		t.Errorf("the master's store holds %d keys; want 1 (the one set with an empty key)", n)
	}
}

func TestMessages(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m, worker.Messages(10), worker.Credit(4))
	w.HandleFunc("upper", upper)
	r := start(t, w)
	s := m.next(t)
	for i := range uint64(30) {
		s.send(task(i+1, "master.upper", "x"))
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	s.waitFor(t, "the stream's end", func() bool { return s.ended })
	s.check(t)
	s.locked(func() {
		if len(s.dones) != 10 || s.sent != 10 || s.granted != 10 {
			t.Errorf("%d dones, %d tasks sent, %d credit; want 10 of each", len(s.dones), s.sent, s.granted)
		}
		if !slices.Contains(s.events, "eof") {
			t.Error("the worker did not half-close")
		}
	})
}

func TestGracefulStop(t *testing.T) {
	m := startMaster(t)
	w, logs := newWorker(t, m)
	gate, started := make(chan struct{}), make(chan struct{})
	var cancelled atomic.Bool
	w.HandleFunc("slow", func(ctx context.Context, p []byte) ([]byte, error) {
		close(started)
		<-gate
		cancelled.Store(ctx.Err() != nil)
		return []byte("finished"), nil
	})
	r := start(t, w)
	s := m.next(t)
	s.send(task(1, "master.slow", "x"))
	<-started
	r.cancel()
	logs.waitFor(t, "stopping", 1)
	close(gate)
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	s.waitFor(t, "the stream's end", func() bool { return s.ended })
	s.check(t)
	if cancelled.Load() {
		t.Error("the handler's context was cancelled by a graceful stop")
	}
	s.locked(func() {
		if want := []string{"result 1", "done 1", "eof"}; !slices.Equal(s.events, want) {
			t.Errorf("events %q; want %q", s.events, want)
		}
		if c := s.doneCredit[1]; c != 0 {
			t.Errorf("%d credit granted while stopping; want 0", c)
		}
		if s.over != nil {
			t.Errorf("the stream ended with %v; want a clean end", s.over)
		}
	})
}

func TestStopTimeout(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m, palm.WithStopTimeout(50*time.Millisecond))
	started, cancelled := make(chan struct{}), make(chan struct{})
	w.HandleFunc("stuck", func(ctx context.Context, p []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	})
	r := start(t, w)
	s := m.next(t)
	s.send(task(1, "master.stuck", "x"))
	<-started
	r.cancel()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	select {
	case <-cancelled:
	case <-time.After(waitLimit):
		t.Error("the stop timed out but the handler's context was not cancelled")
	}
	s.waitFor(t, "the stream's end", func() bool { return s.ended })
	s.locked(func() {
		if len(s.dones) != 0 {
			t.Errorf("dones %v; want none: the task was abandoned", ids(s.dones))
		}
	})
}

func TestReconnect(t *testing.T) {
	m := startMaster(t)
	w, logs := newWorker(t, m, worker.Credit(2))
	started, cancelled := make(chan struct{}), make(chan struct{})
	w.HandleFunc("block", func(ctx context.Context, p []byte) ([]byte, error) {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return []byte("too late"), nil
	})
	w.HandleFunc("upper", upper)
	start(t, w)

	s1 := m.next(t)
	s1.send(task(1, "master.block", "x"))
	<-started
	s1.breakWith(status.Error(codes.Unavailable, "the master crashed"))
	select {
	case <-cancelled:
	case <-time.After(waitLimit):
		t.Fatal("the handler's context was not cancelled when its stream broke")
	}
	logs.waitFor(t, "disconnected from the master", 1)

	s2 := m.next(t)
	if !proto.Equal(s2.hello, s1.hello) || s2.firstGrant != 2 {
		t.Errorf("second hello %v with credit %d; want %v with 2", s2.hello, s2.firstGrant, s1.hello)
	}
	s2.send(task(100, "master.upper", "again"), task(101, "master.upper", "and again"))
	s2.waitFor(t, "two dones", func() bool { return len(s2.dones) == 2 })
	s2.check(t) // in particular, nothing about task 1
	s2.locked(func() {
		if got := string(s2.results[100][0].GetPayload()); got != "AGAIN" {
			t.Errorf("result %q; want AGAIN", got)
		}
	})
	s1.locked(func() {
		if len(s1.dones) != 0 {
			t.Errorf("the broken stream got dones %v", ids(s1.dones))
		}
	})
	logs.waitFor(t, "connected to the master", 2)
}

func TestUnreachableMaster(t *testing.T) {
	m := startMaster(t)
	m.refuse.Store(3)
	w, logs := newWorker(t, m)
	w.HandleFunc("upper", upper)
	start(t, w)
	s := m.next(t)
	s.send(task(1, "master.upper", "x"))
	s.waitFor(t, "a done", func() bool { return len(s.dones) == 1 })
	logs.waitFor(t, "cannot reach the master; trying again", 3)
}

func TestDrain(t *testing.T) {
	m := startMaster(t)
	w, logs := newWorker(t, m)
	gate, started := make(chan struct{}), make(chan struct{})
	w.HandleFunc("slow", func(ctx context.Context, p []byte) ([]byte, error) {
		close(started)
		<-gate
		return []byte("finished"), ctx.Err()
	})
	w.HandleFunc("upper", upper)
	r := start(t, w)
	s1 := m.next(t)
	s1.send(task(1, "master.slow", "x"))
	<-started
	s1.drain()
	logs.waitFor(t, "stopping", 1)
	close(gate)
	s1.waitFor(t, "the stream's end", func() bool { return s1.ended })
	s1.check(t)
	s1.locked(func() {
		if want := []string{"result 1", "done 1", "eof"}; !slices.Equal(s1.events, want) {
			t.Errorf("events %q; want %q", s1.events, want)
		}
		if e := s1.dones[1].GetError(); e != nil {
			t.Errorf("drained task failed: %v", e)
		}
		if c := s1.doneCredit[1]; c != 0 {
			t.Errorf("%d credit granted while draining; want 0", c)
		}
	})

	// The worker comes back, to the master's successor.
	s2 := m.next(t)
	s2.send(task(2, "master.upper", "x"))
	s2.waitFor(t, "a done", func() bool { return len(s2.dones) == 1 })
	r.cancel()
	if err := r.wait(t); err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	s2.check(t)
}

func TestOverCredit(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m, worker.Credit(1))
	gate := make(chan struct{})
	w.HandleFunc("wait", func(ctx context.Context, p []byte) ([]byte, error) {
		<-gate
		return p, nil
	})
	start(t, w)
	s := m.next(t)
	s.sendRaw(&palmv1.WorkResponse{Tasks: []*palmv1.Task{task(1, "master.wait", "a"), task(2, "master.wait", "b")}})
	s.waitFor(t, "the refusal", func() bool { return s.dones[2] != nil })
	close(gate)
	s.waitFor(t, "the held task's done", func() bool { return s.dones[1] != nil })
	s.check(t)
	s.locked(func() {
		if c := codes.Code(s.dones[2].GetError().GetCode()); c != codes.ResourceExhausted {
			t.Errorf("task over credit ended with %v; want ResourceExhausted", c)
		}
		if s.dones[1].GetError() != nil {
			t.Errorf("task within credit failed: %v", s.dones[1].GetError())
		}
	})
}

func TestNewValidates(t *testing.T) {
	cases := []struct {
		name, address string
		opts          []worker.Option
		want          string
	}{
		{"", "x", nil, "name is empty"},
		{"\xff", "x", nil, "UTF-8"},
		{"w", "", nil, "address is empty"},
		{"w", "x", []worker.Option{worker.Credit(0)}, "Credit(0)"},
		{"w", "x", []worker.Option{worker.Messages(-1)}, "Messages(-1)"},
		{"w", "x", []worker.Option{worker.Backoff(0, time.Second)}, "Backoff"},
		{"w", "x", []worker.Option{worker.Backoff(time.Second, time.Millisecond)}, "Backoff"},
		{"w", "x", []worker.Option{palm.WithMaxMessageSize(0)}, "WithMaxMessageSize"},
	}
	for _, c := range cases {
		_, err := worker.New(c.name, c.address, c.opts...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q, %q, ...) = %v; want an error containing %q", c.name, c.address, err, c.want)
		}
	}
	w, err := worker.New("w", "x", worker.Credit(1), worker.Messages(0), worker.Backoff(time.Second, time.Second))
	if err != nil || w.Name() != "w" || w.Logger() == nil {
		t.Errorf("New with valid options: %v", err)
	}
}

func TestHandlePanics(t *testing.T) {
	w, err := worker.New("w", "x")
	if err != nil {
		t.Fatal(err)
	}
	w.HandleFunc("taken", upper)
	for name, f := range map[string]func(){
		"empty name":    func() { w.HandleFunc("", upper) },
		"dotted name":   func() { w.HandleFunc("a.b", upper) },
		"spaced name":   func() { w.HandleFunc("a b", upper) },
		"taken name":    func() { w.HandleFunc("taken", upper) },
		"taken by mux":  func() { w.HandleMux("taken", worker.MuxHandlerFunc(nil)) },
		"nil handler":   func() { w.Handle("h", nil) },
		"nil func":      func() { w.HandleFunc("f", nil) },
		"nil mux":       func() { w.HandleMux("m", nil) },
		"nil mux func":  func() { w.HandleMuxFunc("mf", nil) },
		"non-UTF8 name": func() { w.HandleFunc("\xff", upper) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestRunErrors(t *testing.T) {
	m := startMaster(t)
	w, _ := newWorker(t, m)
	if err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "no function") {
		t.Errorf("Run with no function = %v; want an error", err)
	}
	w.HandleFunc("upper", upper)
	start(t, w)
	m.next(t)
	if err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("second Run = %v; want an error", err)
	}
}

func TestStopWhileUnreachable(t *testing.T) {
	// A master that refuses every stream: Run must still end with ctx.
	m := startMaster(t)
	m.refuse.Store(1 << 30)
	w, logs := newWorker(t, m)
	w.HandleFunc("upper", upper)
	r := start(t, w)
	logs.waitFor(t, "cannot reach the master; trying again", 2)
	r.cancel()
	if err := r.wait(t); err != nil {
		t.Errorf("Run = %v; want nil", err)
	}
}

func TestHandleWhileRunning(t *testing.T) {
	// A function registered while running is served at once.
	m := startMaster(t)
	w, _ := newWorker(t, m)
	w.HandleFunc("upper", upper)
	start(t, w)
	s := m.next(t)
	w.HandleFunc("late", upper)
	s.send(task(1, "master.late", "x"))
	s.waitFor(t, "a done", func() bool { return len(s.dones) == 1 })
	s.locked(func() {
		if e := s.dones[1].GetError(); e != nil {
			t.Errorf("late function: %v", e)
		}
	})
}
