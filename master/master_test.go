package master_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"sync"
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

// rawWorker speaks DispatchService by hand, as a worker in another
// language would. It answers each task with "<name> processed <payload>".
// A task whose payload is "poison" makes it die: its stream is cut with the
// task unfinished.
type rawWorker struct {
	name   string
	credit uint32
	delay  time.Duration // the time each task takes
	mu     sync.Mutex
	count  int
}

func (w *rawWorker) tasks() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count
}

// run works until ctx ends or it takes poison; it reports whether it died.
func (w *rawWorker) run(ctx context.Context, l *palmtest.Listener, t *testing.T) (died bool) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cc := l.Conn(t)
	stream, err := palmv1.NewDispatchServiceClient(cc).Work(ctx)
	if err != nil {
		return false
	}
	if stream.Send(&palmv1.WorkRequest{Hello: &palmv1.Hello{Name: w.name}, Credit: w.credit}) != nil {
		return false
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return false
		}
		if resp.Drain {
			stream.CloseSend()
			for {
				if _, err := stream.Recv(); err != nil {
					return false
				}
			}
		}
		req := &palmv1.WorkRequest{}
		for _, task := range resp.Tasks {
			if string(task.Message.Payload) == "poison" {
				return true
			}
			w.mu.Lock()
			w.count++
			w.mu.Unlock()
			if w.delay > 0 {
				time.Sleep(w.delay) // the work itself
			}
			out := palm.ChangePayload(task.Message, []byte(w.name+" processed "+string(task.Message.Payload)))
			out.Client = "someone-else" // the master must not let a worker redirect a reply
			req.Results = append(req.Results, &palmv1.TaskResult{TaskId: task.Id, Message: out})
			req.Done = append(req.Done, &palmv1.TaskDone{TaskId: task.Id})
			req.Credit++
		}
		if stream.Send(req) != nil {
			return false
		}
	}
}

func startMaster(t *testing.T, opts ...master.Option) (*master.Master, *palmtest.Listener) {
	t.Helper()
	m, err := master.New("server", append([]master.Option{palm.WithLogger(palmtest.Logger(t, hclog.Warn))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m, palmtest.Serve(t, m)
}

func newClient(t *testing.T, l *palmtest.Listener) *client.Client {
	t.Helper()
	c, err := client.New("server", palmtest.Target, l.Option())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func startWorkers(t *testing.T, l *palmtest.Listener, workers ...*rawWorker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.run(ctx, l, t) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func waitWorkers(t *testing.T, m *master.Master, n int) {
	t.Helper()
	palmtest.Eventually(t, 10*time.Second, fmt.Sprintf("%d workers connected", n), func() bool { return m.Workers() == n })
}

func job(t *testing.T, c *client.Client, payloads iter.Seq[[]byte], opts ...client.JobOption) (replies []string, errs []error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for r, err := range c.Job(ctx, "server.foo", payloads, opts...) {
		if err != nil {
			var me *client.MessageError
			if !errors.As(err, &me) {
				t.Fatalf("job failed: %v", err)
			}
			errs = append(errs, err)
			continue
		}
		replies = append(replies, string(r))
	}
	return replies, errs
}

func TestParallel(t *testing.T) {
	m, l := startMaster(t)
	// Equal workers: each task takes them the same time. (Without any
	// work, which worker is ready first is up to the goroutine scheduler.)
	w1 := &rawWorker{name: "worker1", credit: 4, delay: 200 * time.Microsecond}
	w2 := &rawWorker{name: "worker2", credit: 4, delay: 200 * time.Microsecond}
	startWorkers(t, l, w1, w2)
	waitWorkers(t, m, 2)
	replies, errs := job(t, newClient(t, l), client.Repeat([]byte("a message"), 1000))
	if len(replies) != 1000 || len(errs) != 0 {
		t.Fatalf("%d replies, %d errors", len(replies), len(errs))
	}
	by := map[string]int{}
	for _, r := range replies {
		name, _, _ := strings.Cut(r, " ")
		by[name]++
	}
	if by["worker1"] < 400 || by["worker2"] < 400 {
		t.Fatalf("uneven share between equal workers: %v", by)
	}
}

func TestScatterGather(t *testing.T) {
	count := 0
	m, l := startMaster(t,
		master.Scatter(func(msg *palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage] {
			return func(yield func(*palmv1.PalmMessage) bool) {
				for range 3 {
					if !yield(msg) {
						return
					}
				}
			}
		}),
		master.Gather(func(msg *palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage] {
			return func(yield func(*palmv1.PalmMessage) bool) {
				count++
				if count == 30 {
					yield(palm.ChangePayload(msg, []byte("final message")))
					return
				}
				yield(msg)
			}
		}))
	startWorkers(t, l, &rawWorker{name: "w", credit: 1})
	waitWorkers(t, m, 1)
	replies, _ := job(t, newClient(t, l), client.Repeat([]byte("a message"), 10))
	if len(replies) != 30 || replies[29] != "final message" {
		t.Fatalf("%d replies, last %q", len(replies), replies[len(replies)-1])
	}
}

// A worker that dies holding tasks: another worker finishes them and every
// message gets exactly one reply.
func TestWorkerDiesMidJob(t *testing.T) {
	m, l := startMaster(t)
	good := &rawWorker{name: "good", credit: 2}
	startWorkers(t, l, good)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	doomed := &rawWorker{name: "doomed", credit: 8}
	died := make(chan bool, 1)
	go func() { died <- doomed.run(ctx, l, t) }()
	waitWorkers(t, m, 2)
	payloads := func(yield func([]byte) bool) {
		for i := range 200 {
			p := fmt.Sprint(i)
			if i == 50 {
				p = "poison"
			}
			if !yield([]byte(p)) {
				return
			}
		}
	}
	// The poison kills each worker that takes it; with one good worker
	// left, it fails after three attempts (the good worker dies too, so
	// restart it each time).
	go func() {
		for i := 0; i < 3; i++ {
			if d := good.run(ctx, l, t); !d {
				return
			}
		}
	}()
	replies, errs := job(t, newClient(t, l), payloads)
	if len(replies) != 199 || len(errs) != 1 || status.Code(errs[0]) != codes.Aborted {
		t.Fatalf("%d replies, errors %v", len(replies), errs)
	}
	seen := map[string]bool{}
	for _, r := range replies {
		_, p, _ := strings.Cut(r, " processed ")
		if seen[p] {
			t.Fatalf("two replies for %q", p)
		}
		seen[p] = true
	}
	cancel()
	<-died
}

// With no worker, messages wait; an Eval whose deadline passes first gets
// DeadlineExceeded, and a worker that joins later takes what waits at once.
func TestNoWorkerYet(t *testing.T) {
	// By default a function nobody serves is answered at once, naming the
	// fix.
	_, l := startMaster(t)
	c := newClient(t, l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.Eval(ctx, "server.foo", []byte("x"))
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "WaitForWorkers") {
		t.Fatalf("eval with no worker: %v", err)
	}

	// Told to wait, the master hands the message to the worker that comes.
	m, l := startMaster(t, master.WaitForWorkers(30*time.Second))
	c = newClient(t, l)
	got := make(chan string, 1)
	go func() {
		r, err := c.Eval(ctx, "server.foo", []byte("late"))
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(r)
	}()
	palmtest.Eventually(t, 10*time.Second, "the message waits", func() bool { return m.Queued() == 1 })
	startWorkers(t, l, &rawWorker{name: "joiner", credit: 1})
	waitWorkers(t, m, 1)
	if r := <-got; r != "joiner processed late" {
		t.Fatalf("eval: %q", r)
	}

	// It waits no longer than it was told.
	_, l = startMaster(t, master.WaitForWorkers(200*time.Millisecond))
	c = newClient(t, l)
	if _, err := c.Eval(ctx, "server.foo", []byte("x")); status.Code(err) != codes.NotFound {
		t.Fatalf("eval after the wait: %v", err)
	}
}

// A worker that comes back after its tasks were given to another, and sends
// results for them anyway, is ignored: the client gets one reply per message.
func TestLateDuplicateDropped(t *testing.T) {
	m, l := startMaster(t)
	c := newClient(t, l)
	open := func(ctx context.Context, name string, credit uint32) palmv1.DispatchService_WorkClient {
		s, err := palmv1.NewDispatchServiceClient(l.Conn(t)).Work(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(&palmv1.WorkRequest{Hello: &palmv1.Hello{Name: name}, Credit: credit}); err != nil {
			t.Fatal(err)
		}
		if resp, err := s.Recv(); err != nil || resp.Welcome == nil {
			t.Fatalf("welcome: %v %v", resp, err)
		}
		return s
	}
	nextTask := func(s palmv1.DispatchService_WorkClient) *palmv1.Task {
		resp, err := s.Recv()
		if err != nil || len(resp.Tasks) != 1 {
			t.Fatalf("task: %v %v", resp, err)
		}
		return resp.Tasks[0]
	}
	ctxA, dieA := context.WithCancel(context.Background())
	a := open(ctxA, "a", 1)
	// The job starts once a worker serves foo.
	replies := make(chan []string, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var r []string
		for reply, err := range c.Job(ctx, "server.foo", client.Repeat([]byte("x"), 1)) {
			if err != nil {
				r = append(r, "error: "+err.Error())
				continue
			}
			r = append(r, string(reply))
		}
		replies <- r
	}()
	task := nextTask(a)
	dieA() // a dies holding the task
	palmtest.Eventually(t, 10*time.Second, "a has left", func() bool { return m.Workers() == 0 })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := open(ctx, "b", 1)
	if again := nextTask(b); again.Id != task.Id {
		t.Fatalf("redelivered task %d, want %d", again.Id, task.Id)
	}
	back := open(ctx, "a", 0) // a comes back and reports the old task
	stale := &palmv1.WorkRequest{
		Results: []*palmv1.TaskResult{{TaskId: task.Id, Message: &palmv1.PalmMessage{Payload: []byte("stale from a")}}},
		Done:    []*palmv1.TaskDone{{TaskId: task.Id}},
	}
	if err := back.Send(stale); err != nil {
		t.Fatal(err)
	}
	fresh := &palmv1.WorkRequest{
		Results: []*palmv1.TaskResult{{TaskId: task.Id, Message: &palmv1.PalmMessage{Payload: []byte("from b")}}},
		Done:    []*palmv1.TaskDone{{TaskId: task.Id}},
	}
	if err := b.Send(fresh); err != nil {
		t.Fatal(err)
	}
	if r := <-replies; len(r) != 1 || r[0] != "from b" {
		t.Fatalf("replies %q; want only b's", r)
	}
}

// A worker that names its functions as steps (with the master's name) is
// told how to name them, instead of waiting for tasks that never match.
func TestHelloFunctionNames(t *testing.T) {
	_, l := startMaster(t)
	for fn, fix := range map[string]string{"server.foo": "give the function alone", "": "give it a name", "a b": `use "-" or "_"`} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		stream, err := palmv1.NewDispatchServiceClient(l.Conn(t)).Work(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stream.Send(&palmv1.WorkRequest{Hello: &palmv1.Hello{Name: "w", Functions: []string{fn}}, Credit: 1})
		_, err = stream.Recv()
		cancel()
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), fix) {
			t.Errorf("hello with function %q: got %v, want InvalidArgument saying %q", fn, err, fix)
		}
	}
}

// A message that waits for a worker that never comes does not take the
// whole stop bound: the connected worker still hears the drain, with no
// task after it, and leaves cleanly before the master is cut.
func TestDrainReachesWorkersWhenIntakeHangs(t *testing.T) {
	m, err := master.New("server", palm.WithLogger(palmtest.Logger(t, hclog.Warn)), palm.WithStopTimeout(2*time.Second), master.WaitForWorkers(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	l := palmtest.Listen()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx, l) }()
	defer func() { stop(); <-served }()

	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	stream, err := palmv1.NewDispatchServiceClient(l.Conn(t)).Work(wctx)
	if err != nil {
		t.Fatal(err)
	}
	stream.Send(&palmv1.WorkRequest{Hello: &palmv1.Hello{Name: "w", Functions: []string{"foo"}}, Credit: 1})
	if first, err := stream.Recv(); err != nil || first.GetWelcome() == nil {
		t.Fatalf("welcome: %v %v", first, err)
	}
	// A message for bar, which no worker serves: told to wait, it waits in the queue.
	gw := palmv1.NewGatewayServiceClient(l.Conn(t))
	go gw.Eval(wctx, &palmv1.EvalRequest{Message: &palmv1.PalmMessage{Pipeline: "p", Client: "c", Function: "server.bar", Sequence: 1}})
	info := palmv1.NewInfoServiceClient(l.Conn(t))
	palmtest.Eventually(t, 5*time.Second, "the message is queued", func() bool {
		r, err := info.Info(wctx, &palmv1.InfoRequest{})
		return err == nil && r.GetCounters()["tasks_queued"] == 1
	})
	stop()
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("the stream ended without a drain: %v", err)
		}
		if len(resp.GetTasks()) > 0 {
			t.Fatalf("a task for a worker that serves only foo: %v", resp)
		}
		if resp.GetDrain() {
			break
		}
	}
	stream.CloseSend()
	if _, err = stream.Recv(); err != io.EOF {
		t.Errorf("after half-closing on drain, the stream ended with %v, not cleanly: the master was cut before its workers left", err)
	}
}
