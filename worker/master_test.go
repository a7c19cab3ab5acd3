package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
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
	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/worker"
)

// masterName is the name the fake master gives in its welcome.
const masterName = "master"

// waitLimit bounds every wait of the tests.
const waitLimit = 10 * time.Second

// fakeMaster is a DispatchService that hands each Work session to the test,
// which scripts it through a fakeSession, and a CacheService on a real
// kv.Memory; both served over bufconn.
type fakeMaster struct {
	palmv1.UnimplementedDispatchServiceServer

	lis      *palmtest.Listener
	store    *kv.Memory
	sessions chan *fakeSession
	refuse   atomic.Int32 // Work calls still to refuse with Unavailable, before any welcome
}

// newMaster starts a fake master with the given server options; stop stops
// it.
func newMaster(opts ...grpc.ServerOption) (m *fakeMaster, stop func()) {
	m = &fakeMaster{lis: palmtest.Listen(), store: kv.NewMemory(), sessions: make(chan *fakeSession, 16)}
	srv := grpc.NewServer(opts...)
	palmv1.RegisterDispatchServiceServer(srv, m)
	palmv1.RegisterCacheServiceServer(srv, kv.NewService(m.store))
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(m.lis) }()
	return m, func() { srv.Stop(); <-served }
}

// startMaster starts a fake master, stopped when the test ends.
func startMaster(t *testing.T, opts ...grpc.ServerOption) *fakeMaster {
	m, stop := newMaster(opts...)
	t.Cleanup(stop)
	return m
}

// next returns the next session a worker opened.
func (m *fakeMaster) next(t *testing.T) *fakeSession {
	t.Helper()
	select {
	case s := <-m.sessions:
		return s
	case <-time.After(waitLimit):
		t.Fatal("timed out waiting for the worker to connect")
		return nil
	}
}

// fakeSession is one Work stream as the fake master sees it. The test
// queues tasks with send; the master sends them only against credit, and
// records everything the worker sends, flagging protocol violations.
type fakeSession struct {
	hello *palmv1.Hello

	kick chan struct{} // something to send: capacity 1
	end  chan error    // the test ends the stream with this error

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every change
	firstGrant uint32        // the credit sent with the hello
	granted    int           // all credit granted
	credit     int           // credit granted and not yet used
	queue      []*palmv1.Task
	raw        []*palmv1.WorkResponse // sent as they are, whatever the credit
	held       map[uint64]bool
	maxHeld    int
	sent       int // tasks sent
	requests   int // WorkRequests received after the hello
	results    map[uint64][]*palmv1.PalmMessage
	dones      map[uint64]*palmv1.TaskDone
	doneCredit map[uint64]uint32 // the credit in the WorkRequest carrying each done
	events     []string          // "result 3", "done 3", "eof"
	violations []string
	over       error // how the stream ended, once it has; nil before
	ended      bool
}

func (m *fakeMaster) Work(stream palmv1.DispatchService_WorkServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if m.refuse.Add(-1) >= 0 {
		return status.Error(codes.Unavailable, "refused by the test")
	}
	s := &fakeSession{
		hello:      first.GetHello(),
		kick:       make(chan struct{}, 1),
		end:        make(chan error, 1),
		changed:    make(chan struct{}),
		firstGrant: first.GetCredit(),
		held:       map[uint64]bool{},
		results:    map[uint64][]*palmv1.PalmMessage{},
		dones:      map[uint64]*palmv1.TaskDone{},
		doneCredit: map[uint64]uint32{},
	}
	s.granted, s.credit = int(first.GetCredit()), int(first.GetCredit())
	if s.hello == nil {
		s.violations = append(s.violations, "first request without hello")
	}
	if err := stream.Send(&palmv1.WorkResponse{Welcome: &palmv1.Welcome{Master: masterName}}); err != nil {
		return err
	}
	select {
	case m.sessions <- s:
	default:
		return status.Error(codes.Internal, "the test does not take sessions")
	}
	received := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				received <- err
				return
			}
			s.record(req)
		}
	}()
	finish := func(err error) error {
		s.change(func() { s.over, s.ended = err, true })
		return err
	}
	for {
		if err := s.pump(stream); err != nil {
			return finish(err)
		}
		select {
		case <-s.kick:
		case err := <-s.end:
			return finish(err)
		case err := <-received:
			if errors.Is(err, io.EOF) {
				// The worker half-closed: as a master does, end the stream.
				s.change(func() {
					s.events = append(s.events, "eof")
					if len(s.held) > 0 {
						s.violations = append(s.violations, fmt.Sprintf("half-closed holding %d tasks", len(s.held)))
					}
				})
				return finish(nil)
			}
			return finish(err)
		case <-stream.Context().Done():
			return finish(stream.Context().Err())
		}
	}
}

// pump sends what is queued: raw responses, then tasks up to the credit.
func (s *fakeSession) pump(stream palmv1.DispatchService_WorkServer) error {
	var out []*palmv1.WorkResponse
	s.change(func() {
		out, s.raw = s.raw, nil
		for _, r := range out {
			for _, t := range r.GetTasks() {
				s.hold(t)
			}
		}
		n := min(s.credit, len(s.queue))
		if n == 0 {
			return
		}
		tasks := s.queue[:n:n]
		s.queue = s.queue[n:]
		s.credit -= n
		for _, t := range tasks {
			s.hold(t)
		}
		out = append(out, &palmv1.WorkResponse{Tasks: tasks})
	})
	for _, r := range out {
		if err := stream.Send(r); err != nil {
			return err
		}
	}
	return nil
}

func (s *fakeSession) hold(t *palmv1.Task) {
	s.held[t.GetId()] = true
	s.maxHeld = max(s.maxHeld, len(s.held))
	s.sent++
}

// record takes in one WorkRequest from the worker.
func (s *fakeSession) record(req *palmv1.WorkRequest) {
	s.change(func() {
		s.requests++
		s.granted += int(req.GetCredit())
		s.credit += int(req.GetCredit())
		if req.GetHello() != nil {
			s.violations = append(s.violations, "second hello")
		}
		for _, r := range req.GetResults() {
			id := r.GetTaskId()
			if !s.held[id] {
				s.violations = append(s.violations, fmt.Sprintf("result for task %d, not held", id))
			}
			s.results[id] = append(s.results[id], r.GetMessage())
			s.events = append(s.events, fmt.Sprintf("result %d", id))
		}
		for _, d := range req.GetDone() {
			id := d.GetTaskId()
			if !s.held[id] {
				s.violations = append(s.violations, fmt.Sprintf("done for task %d, not held", id))
			}
			delete(s.held, id)
			s.dones[id] = d
			s.doneCredit[id] = req.GetCredit()
			s.events = append(s.events, fmt.Sprintf("done %d", id))
		}
	})
	s.poke()
}

// change runs f under the lock and wakes whoever waits for a change.
func (s *fakeSession) change(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *fakeSession) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// send queues tasks, sent as credit allows.
func (s *fakeSession) send(tasks ...*palmv1.Task) {
	s.change(func() { s.queue = append(s.queue, tasks...) })
	s.poke()
}

// sendRaw sends a response as it is, whatever the credit.
func (s *fakeSession) sendRaw(r *palmv1.WorkResponse) {
	s.change(func() { s.raw = append(s.raw, r) })
	s.poke()
}

// drain tells the worker the master is shutting down.
func (s *fakeSession) drain() { s.sendRaw(&palmv1.WorkResponse{Drain: true}) }

// breakWith ends the stream with err, as a crashing master would.
func (s *fakeSession) breakWith(err error) { s.end <- err }

// wait waits until cond, called under the lock, holds, and reports false
// when it does not within waitLimit.
func (s *fakeSession) wait(cond func() bool) bool {
	deadline := time.After(waitLimit)
	for {
		s.mu.Lock()
		ok, changed := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-deadline:
			return false
		}
	}
}

// waitFor waits until cond holds, or fails the test.
func (s *fakeSession) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !s.wait(cond) {
		s.mu.Lock()
		defer s.mu.Unlock()
		t.Fatalf("timed out waiting for %s; events: %v", what, s.events)
	}
}

// check fails the test if the worker broke the protocol.
func (s *fakeSession) check(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.violations {
		t.Errorf("protocol violation: %s", v)
	}
	// Results of a task come before its done.
	seen := map[string]bool{}
	for _, e := range s.events {
		if id, ok := strings.CutPrefix(e, "result "); ok && seen["done "+id] {
			t.Errorf("result for task %s after its done", id)
		}
		seen[e] = true
	}
}

// locked runs f under the session's lock.
func (s *fakeSession) locked(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// task returns a task for function with payload, and routing fields the
// results must carry back.
func task(id uint64, function, payload string) *palmv1.Task {
	return &palmv1.Task{Id: id, Message: &palmv1.PalmMessage{
		Pipeline: fmt.Sprintf("pipe-%d", id),
		Client:   "client-1",
		Function: function,
		Cache:    "cached",
		Payload:  []byte(payload),
		Sequence: id * 10,
	}}
}

// logWatch is a logger sink that lets a test wait for a log message.
type logWatch struct {
	mu    sync.Mutex
	seen  map[string]int
	wakes chan struct{}
}

func (l *logWatch) Accept(_ string, _ hclog.Level, msg string, _ ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[msg]++
	close(l.wakes)
	l.wakes = make(chan struct{})
}

// waitFor waits until msg has been logged n times in all.
func (l *logWatch) waitFor(t *testing.T, msg string, n int) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		l.mu.Lock()
		ok, wakes := l.seen[msg] >= n, l.wakes
		l.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-wakes:
		case <-deadline:
			t.Fatalf("timed out waiting for the log message %q", msg)
		}
	}
}

// testLogger returns a logger that writes to the test's log at Trace, and a
// watch on its messages.
func testLogger(t *testing.T) (hclog.Logger, *logWatch) {
	l := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Trace, Output: testWriter{t}, IndependentLevels: true})
	w := &logWatch{seen: map[string]int{}, wakes: make(chan struct{})}
	l.RegisterSink(w)
	return l, w
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// newWorker returns a worker named "w1" dialing m, logging to the test.
func newWorker(t *testing.T, m *fakeMaster, opts ...worker.Option) (*worker.Worker, *logWatch) {
	t.Helper()
	l, watch := testLogger(t)
	opts = append([]worker.Option{m.lis.Option(), palm.WithLogger(l), worker.Backoff(time.Millisecond, 20*time.Millisecond)}, opts...)
	w, err := worker.New("w1", palmtest.Target, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return w, watch
}

// running is a Run in progress.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

// start runs w until the test ends (or stop), and checks that Run returns
// nil.
func start(t *testing.T, w *worker.Worker) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
			r.done <- err
		case <-time.After(waitLimit):
			t.Error("Run did not return after its context ended")
		}
	})
	return r
}

// wait waits for Run to return and returns its error.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(waitLimit):
		t.Fatal("Run did not return")
		return nil
	}
}

// ids returns the sorted keys of m.
func ids[V any](m map[uint64]V) []uint64 {
	return slices.Sorted(maps.Keys(m))
}
