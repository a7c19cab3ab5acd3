package parts

import (
	"context"
	"errors"
	"io"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/dispatch"
	"github.com/gopalm/palm/internal/route"
)

// DefaultTaskQueue is the number of tasks a Dispatcher keeps waiting for a
// worker before it stops taking messages.
const DefaultTaskQueue = 4096

// Dispatcher is the outbound part of a master that hands messages to
// workers, and the palm.v1.DispatchService those workers connect to.
//
// Each message it receives goes through Scatter (one message to zero or
// more) and each resulting message becomes a task in a dispatch.Core: tasks
// go to workers only against the credit they grant, round-robin among the
// ready workers that serve the function. Results from a worker are sent on
// along the part's route with the routing fields of the task they answer,
// so a worker can neither lose nor redirect a reply; once every task of a
// message is done, an envelope marked Done follows. A task whose worker goes
// away is handed to another worker, at most MaxAttempts times in all, then
// answered with an error. Tasks whose client has gone are dropped before a
// worker sees them.
//
// One goroutine (Run) owns the core. Each worker stream has one goroutine
// receiving (it posts events to Run through a bounded channel, so a flood of
// results slows the worker) and the stream handler's goroutine sending
// tasks, packed up to 256 per response, from a queue that credit bounds.
type Dispatcher struct {
	palmv1.UnimplementedDispatchServiceServer

	cfg    DispatcherConfig
	logger hclog.Logger

	events   chan event
	ready    chan struct{}
	runDone  chan struct{} // closed when Run returns
	closing  chan struct{}
	closeOne sync.Once
	streams  sync.WaitGroup
	nextID   atomic.Uint64
	nextTask uint64 // owned by Run

	workers     atomic.Int64
	queued      atomic.Int64
	inflight    atomic.Int64
	redelivered atomic.Uint64
	roster      atomic.Pointer[[]WorkerSummary]
}

// WorkerSummary describes a connected worker.
type WorkerSummary struct {
	Name      string
	Functions []string
}

// Roster is the workers connected now, by name.
func (d *Dispatcher) Roster() []WorkerSummary {
	if r := d.roster.Load(); r != nil {
		return *r
	}
	return nil
}

// keepRoster publishes the workers for Roster.
func (d *Dispatcher) keepRoster(workers map[dispatch.WorkerID]*workerConn) {
	r := make([]WorkerSummary, 0, len(workers))
	for _, w := range workers {
		r = append(r, WorkerSummary{Name: w.name, Functions: w.functions})
	}
	slices.SortFunc(r, func(a, b WorkerSummary) int { return strings.Compare(a.Name, b.Name) })
	d.roster.Store(&r)
}

// DispatcherConfig configures a Dispatcher.
type DispatcherConfig struct {
	// Master is the master's name, sent to workers in the welcome.
	Master string
	// Scatter turns one message into the messages handed to workers; nil
	// hands out the message itself.
	Scatter func(*palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage]
	// Queue is the number of tasks kept waiting for a worker; 0 means
	// DefaultTaskQueue. When it is full the part stops taking messages.
	Queue int
	// MaxAttempts is how many times a task is handed out before it fails;
	// 0 means dispatch.DefaultMaxAttempts.
	MaxAttempts int
	// HelloTimeout bounds the wait for a new stream's hello; 0 means
	// DefaultHelloTimeout.
	HelloTimeout time.Duration
	// Logger; nil is quiet.
	Logger hclog.Logger
}

// NewDispatcher returns a Dispatcher; register it as an outbound part and
// as the DispatchService of the master's gRPC server.
func NewDispatcher(cfg DispatcherConfig) *Dispatcher {
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultTaskQueue
	}
	if cfg.HelloTimeout <= 0 {
		cfg.HelloTimeout = DefaultHelloTimeout
	}
	l := cfg.Logger
	if l == nil {
		l = hclog.NewNullLogger()
	}
	return &Dispatcher{
		cfg:     cfg,
		logger:  l,
		events:  make(chan event, 1024),
		ready:   make(chan struct{}),
		runDone: make(chan struct{}),
		closing: make(chan struct{}),
	}
}

// DefaultHelloTimeout is how long a Dispatcher waits for the hello of a
// new worker stream before it ends it.
const DefaultHelloTimeout = 30 * time.Second

// Workers is the number of workers connected.
func (d *Dispatcher) Workers() int { return int(d.workers.Load()) }

// Queued is the number of tasks waiting for a worker.
func (d *Dispatcher) Queued() int { return int(d.queued.Load()) }

// InFlight is the number of tasks held by workers, not yet done.
func (d *Dispatcher) InFlight() int { return int(d.inflight.Load()) }

// Redelivered is the number of tasks put back in the queue, for another
// worker, because the worker holding them left.
func (d *Dispatcher) Redelivered() uint64 { return d.redelivered.Load() }

type eventKind int

const (
	joined eventKind = iota
	request
	left
	stopAssigning // Drain: hand out no more tasks; ack is closed once Run knows
)

type event struct {
	kind eventKind
	w    *workerConn
	req  *palmv1.WorkRequest
	ack  chan struct{}
}

// workerConn is one worker's stream as Run sees it.
type workerConn struct {
	id        dispatch.WorkerID
	name      string
	functions []string
	tasks     chan *palmv1.Task // bounded by the credit cap: Run never waits on it
}

// fanout tracks the tasks a message was scattered into.
type fanout struct {
	origin    Origin
	sequence  uint64
	remaining int
}

// taskState is what the core holds for a task.
type taskState struct {
	msg *palmv1.PalmMessage
	fan *fanout
}

// Run owns the dispatch core until ctx ends.
func (d *Dispatcher) Run(ctx context.Context, link *Link) error {
	core := dispatch.New(d.cfg.Queue, d.cfg.MaxAttempts)
	workers := map[dispatch.WorkerID]*workerConn{}
	close(d.ready)
	defer close(d.runDone)
	assigning := true
	for {
		inbox := link.Inbox()
		if core.Room() == 0 {
			inbox = nil // full: let the gateway's windows hold the clients
		}
		select {
		case <-ctx.Done():
			return nil
		case e := <-inbox:
			if err := d.accept(ctx, link, core, e); err != nil {
				return nil
			}
		case ev := <-d.events:
			if ev.kind == stopAssigning {
				assigning = false
				close(ev.ack)
				break
			}
			if err := d.handle(ctx, link, core, workers, ev); err != nil {
				return nil
			}
		}
		if !assigning {
			// Draining: the workers were told no new task comes. What
			// waits in the queue ends with the stop.
		} else if err := d.assign(ctx, link, core, workers); err != nil {
			return nil
		}
		d.queued.Store(int64(core.Queued()))
		d.inflight.Store(int64(core.InFlight()))
	}
}

// accept scatters a message into tasks.
func (d *Dispatcher) accept(ctx context.Context, link *Link, core *dispatch.Core, e Envelope) error {
	if e.Origin != nil && e.Origin.Context().Err() != nil {
		return nil // its client has gone
	}
	if d.cfg.Scatter == nil && e.Step.Function != "" {
		// The common case, without a scatter hook: one task, its step
		// already parsed by the gateway, and no slice to build.
		d.nextTask++
		fan := &fanout{origin: e.Origin, sequence: e.Sequence, remaining: 1}
		core.Push(&dispatch.Task{ID: dispatch.TaskID(d.nextTask), Function: e.Step.Function, Origin: e.Origin, Value: &taskState{msg: e.Msg, fan: fan}})
		return nil
	}
	msgs := []*palmv1.PalmMessage{e.Msg}
	if d.cfg.Scatter != nil {
		var err error
		if msgs, err = collect(d.cfg.Scatter, e.Msg); err != nil {
			d.logger.Error("scatter failed", "error", err)
			return d.fail(ctx, link, e.Msg, Envelope{Origin: e.Origin, Sequence: e.Sequence, Done: true}, err, e.Step)
		}
	}
	if len(msgs) == 0 {
		return link.Send(ctx, Envelope{Origin: e.Origin, Sequence: e.Sequence, Done: true})
	}
	fan := &fanout{origin: e.Origin, sequence: e.Sequence, remaining: len(msgs)}
	for _, m := range msgs {
		fn := e.Step.Function
		if m != e.Msg || fn == "" {
			step, err := route.Current(m)
			if err != nil {
				fan.remaining--
				if err := d.fail(ctx, link, m, Envelope{Origin: e.Origin, Sequence: e.Sequence, Done: fan.remaining == 0}, err, step); err != nil {
					return err
				}
				continue
			}
			fn = step.Function
		}
		d.nextTask++
		core.Push(&dispatch.Task{ID: dispatch.TaskID(d.nextTask), Function: fn, Origin: e.Origin, Value: &taskState{msg: m, fan: fan}})
	}
	return nil
}

// collect runs a scatter hook, turning a panic into an error.
func collect(f func(*palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage], m *palmv1.PalmMessage) (out []*palmv1.PalmMessage, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = status.Errorf(codes.Internal, "scatter panicked: %v", r)
		}
	}()
	for s := range f(m) {
		if s != nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// fail sends an error reply for m, carrying done's completion.
func (d *Dispatcher) fail(ctx context.Context, link *Link, m *palmv1.PalmMessage, done Envelope, err error, step Step) error {
	reply := derive(m, nil)
	reply.Error = route.ErrorOf(err, step)
	done.Msg = reply
	return link.Send(ctx, done)
}

// handle applies one worker event to the core.
func (d *Dispatcher) handle(ctx context.Context, link *Link, core *dispatch.Core, workers map[dispatch.WorkerID]*workerConn, ev event) error {
	w := ev.w
	switch ev.kind {
	case joined:
		if err := core.Join(w.id, w.functions); err != nil {
			return nil
		}
		workers[w.id] = w
		d.workers.Store(int64(len(workers)))
		d.keepRoster(workers)
		d.logger.Info("worker joined", "worker", w.name, "functions", w.functions)
	case left:
		if workers[w.id] == nil {
			return nil
		}
		delete(workers, w.id)
		d.workers.Store(int64(len(workers)))
		d.keepRoster(workers)
		held := core.InFlight()
		failed := core.Leave(w.id)
		d.redelivered.Add(uint64(max(0, held-core.InFlight()-len(failed))))
		d.logger.Info("worker left", "worker", w.name, "given up", len(failed))
		for _, t := range failed {
			st := t.Value.(*taskState)
			err := status.Errorf(codes.Aborted, "the task was handed to %d workers and each went away before finishing it", t.Attempts)
			if err := d.finish(ctx, link, st, err); err != nil {
				return err
			}
		}
	case request:
		req := ev.req
		for _, r := range req.GetResults() {
			t := core.Held(w.id, dispatch.TaskID(r.GetTaskId()))
			if t == nil {
				d.logger.Debug("result for a task the worker does not hold; ignored", "worker", w.name, "task", r.GetTaskId())
				continue
			}
			st := t.Value.(*taskState)
			out := result(st.msg, r.GetMessage())
			step := Step{Server: d.cfg.Master, Function: t.Function}
			if err := link.Send(ctx, Envelope{Msg: out, Origin: st.fan.origin, Sequence: st.fan.sequence, Step: step}); err != nil {
				return err
			}
		}
		for _, done := range req.GetDone() {
			t, ok := core.Done(w.id, dispatch.TaskID(done.GetTaskId()))
			if !ok {
				d.logger.Debug("done for a task the worker does not hold; ignored", "worker", w.name, "task", done.GetTaskId())
				continue
			}
			var err error
			if e := done.GetError(); e != nil {
				// A failure is never OK, and a code gRPC does not define
				// means nothing to the client: both become Unknown.
				code := codes.Code(e.GetCode())
				if code == codes.OK || code > codes.Unauthenticated {
					code = codes.Unknown
				}
				err = status.Error(code, e.GetMessage())
			}
			if err := d.finish(ctx, link, t.Value.(*taskState), err); err != nil {
				return err
			}
		}
		if n := req.GetCredit(); n > 0 {
			core.Grant(w.id, int(min(n, dispatch.MaxCredit)))
		}
	}
	return nil
}

// result is a worker's result message with the routing fields of the task
// it answers, whatever the worker put there.
func result(task, r *palmv1.PalmMessage) *palmv1.PalmMessage {
	if r == nil {
		r = &palmv1.PalmMessage{}
	}
	r.Pipeline = task.GetPipeline()
	r.Client = task.GetClient()
	r.Sequence = task.GetSequence()
	r.Error = nil
	if r.Function == "" {
		r.Function, r.Stage, r.Cache = task.GetFunction(), task.GetStage(), task.GetCache()
	}
	return r
}

// finish marks one task of a fanout done, with an error reply when err is
// set, and completes the message when it was the last.
func (d *Dispatcher) finish(ctx context.Context, link *Link, st *taskState, err error) error {
	st.fan.remaining--
	e := Envelope{Origin: st.fan.origin, Sequence: st.fan.sequence, Done: st.fan.remaining == 0}
	if err != nil {
		step, _ := route.Current(st.msg)
		return d.fail(ctx, link, st.msg, e, err, step)
	}
	if !e.Done {
		return nil
	}
	return link.Send(ctx, e)
}

// assign hands out every task that can go now.
func (d *Dispatcher) assign(ctx context.Context, link *Link, core *dispatch.Core, workers map[dispatch.WorkerID]*workerConn) error {
	for {
		id, t, ok := core.Next()
		if !ok {
			return nil
		}
		st := t.Value.(*taskState)
		if o := st.fan.origin; o != nil && o.Context().Err() != nil {
			// The client has gone: no worker spends time on it.
			core.Done(id, t.ID)
			core.Grant(id, 1)
			st.fan.remaining--
			continue
		}
		workers[id].tasks <- &palmv1.Task{Id: uint64(t.ID), Message: st.msg}
	}
}

// post hands an event to Run, waiting while its queue is full, until ctx
// ends or Run has returned.
func (d *Dispatcher) post(ctx context.Context, ev event) error {
	select {
	case d.events <- ev:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-d.runDone:
		return errStopping
	}
}

var errStopping = status.Error(codes.Unavailable, "the master is shutting down")

// postStatus is the status for a failed post: the master stopping, or the
// stream's context ending.
func postStatus(err error) error {
	if errors.Is(err, errStopping) {
		return errStopping
	}
	return status.FromContextError(err).Err()
}

// Work implements palm.v1.DispatchService/Work.
func (d *Dispatcher) Work(stream palmv1.DispatchService_WorkServer) error {
	ctx := stream.Context()
	select {
	case <-d.ready:
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
	select {
	case <-d.closing:
		return errStopping
	default:
	}
	first, err := d.hello(stream)
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return status.Error(codes.InvalidArgument, "the first WorkRequest of a worker must carry a hello: the worker's name and functions")
	}
	if len(hello.GetName()) > route.MaxIDLen || len(hello.GetFunctions()) > 10000 {
		return status.Errorf(codes.InvalidArgument, "hello: the name may be at most %d bytes and the functions at most 10000", route.MaxIDLen)
	}
	for _, f := range hello.GetFunctions() {
		if f == "" || strings.ContainsAny(f, ". \t\n") {
			return status.Errorf(codes.InvalidArgument, "hello: function %q: give function names alone, such as \"foo\" for the step \"%s.foo\": no dots or spaces", f, d.cfg.Master)
		}
	}
	d.streams.Add(1)
	defer d.streams.Done()
	w := &workerConn{
		id:        dispatch.WorkerID(d.nextID.Add(1)),
		name:      hello.GetName(),
		functions: hello.GetFunctions(),
		tasks:     make(chan *palmv1.Task, dispatch.MaxCredit),
	}
	if err := stream.Send(&palmv1.WorkResponse{Welcome: &palmv1.Welcome{Master: d.cfg.Master}}); err != nil {
		return err
	}
	if err := d.post(ctx, event{kind: joined, w: w}); err != nil {
		return postStatus(err)
	}
	// Whatever happens next, Run hears that the worker left, so that its
	// tasks go to other workers.
	defer d.post(context.Background(), event{kind: left, w: w})
	first.Hello = nil
	if err := d.post(ctx, event{kind: request, w: w, req: first}); err != nil {
		return postStatus(err)
	}
	recvDone := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err == io.EOF {
				err = nil // the worker half-closed: it is done
			}
			if err != nil || req == nil {
				recvDone <- err
				return
			}
			if err := d.post(ctx, event{kind: request, w: w, req: req}); err != nil {
				// The master is stopping: say so, rather than end the
				// stream as if the worker had finished.
				recvDone <- postStatus(err)
				return
			}
		}
	}()
	resp := &palmv1.WorkResponse{}
	closing := d.closing
	for {
		select {
		case t := <-w.tasks:
			resp.Tasks = append(resp.Tasks[:0], t)
			for len(resp.Tasks) < maxBatch {
				select {
				case t := <-w.tasks:
					resp.Tasks = append(resp.Tasks, t)
					continue
				default:
				}
				break
			}
			err := stream.Send(resp)
			clear(resp.Tasks)
			if err != nil {
				return err
			}
		case <-closing:
			closing = nil
			// Tasks handed out before the master stopped assigning go
			// before the drain; none comes after it.
			if len(w.tasks) > 0 {
				resp.Tasks = resp.Tasks[:0]
				for len(w.tasks) > 0 {
					resp.Tasks = append(resp.Tasks, <-w.tasks)
				}
				err := stream.Send(resp)
				clear(resp.Tasks)
				if err != nil {
					return err
				}
			}
			if err := stream.Send(&palmv1.WorkResponse{Drain: true}); err != nil {
				return err
			}
		case err := <-recvDone:
			// The worker half-closed (nil) or the stream broke.
			if err != nil {
				d.logger.Debug("worker stream ended", "worker", w.name, "error", err)
			}
			return err
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// hello waits for the first WorkRequest of a stream, at most the hello
// timeout: a connection that opens a stream and says nothing does not hold
// the handler for ever.
func (d *Dispatcher) hello(stream palmv1.DispatchService_WorkServer) (*palmv1.WorkRequest, error) {
	type first struct {
		req *palmv1.WorkRequest
		err error
	}
	got := make(chan first, 1)
	go func() {
		req, err := stream.Recv() // returns when the handler does, at the latest
		got <- first{req, err}
	}()
	t := time.NewTimer(d.cfg.HelloTimeout)
	defer t.Stop()
	select {
	case f := <-got:
		return f.req, f.err
	case <-t.C:
		return nil, status.Errorf(codes.DeadlineExceeded, "no hello within %v of opening the stream: a worker's first WorkRequest carries its hello", d.cfg.HelloTimeout)
	}
}

// Drain tells every connected worker to finish what it holds and leave,
// and waits until their streams have ended or ctx ends.
func (d *Dispatcher) Drain(ctx context.Context) error {
	d.closeOne.Do(func() {
		// Run stops handing out tasks first, so that none follows a
		// worker's drain (the protocol's promise).
		ack := make(chan struct{})
		if d.post(ctx, event{kind: stopAssigning, ack: ack}) == nil {
			select {
			case <-ack:
			case <-ctx.Done():
			case <-d.runDone:
			}
		}
		close(d.closing)
	})
	done := make(chan struct{})
	go func() { d.streams.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
