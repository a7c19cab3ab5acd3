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

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/dispatch"
	"github.com/gopalm/palm/internal/names"
	"github.com/gopalm/palm/internal/pack"
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
// wait in a queue per function and go to workers only against the credit
// they grant, round-robin among the ready workers that serve the function.
// Results from a worker are sent on along the part's route with the routing
// fields of the task they answer, so a worker can neither lose nor redirect
// a reply; once every task of a message is done, an envelope marked Done
// follows. Every task ends with a result or an error for its client:
//   - a function no connected worker serves is answered NOT_FOUND at once,
//     naming the functions the workers serve (or after WaitForWorkers);
//   - a task still waiting when its client's deadline passes is answered
//     DEADLINE_EXCEEDED; the tasks of a client that went away are dropped
//     the moment it goes, before a worker sees them;
//   - a task whose worker goes away, or holds it past TaskTimeout, is
//     handed to another worker, at most MaxAttempts times in all, then
//     answered ABORTED or DEADLINE_EXCEEDED;
//   - a task whose results pass MaxResultBytes is answered
//     RESOURCE_EXHAUSTED, and its further results are dropped.
//
// One goroutine (Run) owns the core: it steps the core with each event (a
// message, a worker's report, a worker joining or leaving, a client gone,
// time passing) and carries out the batch of outputs the core returns
// (tasks to send, envelopes to deliver, watches, logs). Each worker stream has one goroutine
// receiving (it posts events to Run through a bounded channel, and waits
// while the results it posted and Run has not handled pass
// maxPendingBytes, so a flood of results slows that worker alone) and the
// stream handler's goroutine sending tasks, packed up to 256 per response,
// from a queue that credit bounds.
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

// workerList is the workers connected now, by name.
func (d *Dispatcher) workerList() []WorkerSummary {
	if r := d.roster.Load(); r != nil {
		return *r
	}
	return nil
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
	// TaskTimeout is how long a worker may hold a task before it goes to
	// another worker (counting as a failed attempt); 0 means
	// DefaultTaskTimeout, negative for no limit.
	TaskTimeout time.Duration
	// WaitForWorkers is how long a message for a function no connected
	// worker serves waits for one; 0 answers it NOT_FOUND at once.
	WaitForWorkers time.Duration
	// MaxResultBytes bounds the payload bytes of the results of one task;
	// past it the task fails with RESOURCE_EXHAUSTED. 0 means
	// DefaultMaxResultBytes.
	MaxResultBytes int
	// MaxSendBytes bounds the encoded tasks sent to a worker in one
	// response (a task larger than that goes alone): the worker's limit on
	// a message it receives. 0 means DefaultMaxSendBytes.
	MaxSendBytes int
	// HelloTimeout bounds the wait for a new stream's hello; 0 means
	// DefaultHelloTimeout.
	HelloTimeout time.Duration
	// Logger; nil is quiet.
	Logger hclog.Logger
}

// Defaults of DispatcherConfig.
const (
	// DefaultTaskTimeout is how long a worker may hold a task.
	DefaultTaskTimeout = 5 * time.Minute
	// DefaultMaxResultBytes bounds the results of one task: four messages
	// of the default size.
	DefaultMaxResultBytes = 16 << 20
	// DefaultReplaceWait is how long the tasks of a function whose last
	// worker left wait for a replacement (a worker restarting) before they
	// fail with NOT_FOUND.
	DefaultReplaceWait = 5 * time.Second
	// DefaultMaxSendBytes bounds the tasks of one response to a worker:
	// palm's default message size limit.
	DefaultMaxSendBytes = 4 << 20
	// DefaultHelloTimeout is how long a Dispatcher waits for the hello of
	// a new worker stream before it ends it.
	DefaultHelloTimeout = 30 * time.Second
	// MaxHelloFunctions is the most functions a worker's hello may name.
	MaxHelloFunctions = 256
	// MaxFunctionName is the longest function name a hello may give, in
	// bytes.
	MaxFunctionName = names.MaxLen
	// maxPendingBytes bounds the result payload one worker has posted to
	// Run and Run has not handled yet.
	maxPendingBytes = 8 << 20
	// taskOverhead bounds the bytes a task adds to a response beside its
	// own encoding: its tag and length.
	taskOverhead = 8
	// maxBurst is the most messages, or worker events, Run applies
	// before it hands tasks out.
	maxBurst = 256
	// maxNamed is the most function names an error message lists.
	maxNamed = 16
)

// NewDispatcher returns a Dispatcher; register it as an outbound part and
// as the DispatchService of the master's gRPC server.
func NewDispatcher(cfg DispatcherConfig) *Dispatcher {
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultTaskQueue
	}
	if cfg.HelloTimeout <= 0 {
		cfg.HelloTimeout = DefaultHelloTimeout
	}
	switch {
	case cfg.TaskTimeout == 0:
		cfg.TaskTimeout = DefaultTaskTimeout
	case cfg.TaskTimeout < 0:
		cfg.TaskTimeout = 0
	}
	if cfg.MaxResultBytes <= 0 {
		cfg.MaxResultBytes = DefaultMaxResultBytes
	}
	if cfg.MaxSendBytes <= 0 {
		cfg.MaxSendBytes = DefaultMaxSendBytes
	}
	l := orQuiet(cfg.Logger)
	return &Dispatcher{
		cfg:     cfg,
		logger:  l,
		events:  make(chan event, 1024),
		ready:   make(chan struct{}),
		runDone: make(chan struct{}),
		closing: make(chan struct{}),
	}
}

// Workers is the number of workers connected.
func (d *Dispatcher) Workers() int { return int(d.workers.Load()) }

// Queued is the number of tasks waiting for a worker.
func (d *Dispatcher) Queued() int { return int(d.queued.Load()) }

// heldTasks is the number of tasks held by workers, not yet done.
func (d *Dispatcher) heldTasks() int { return int(d.inflight.Load()) }

// redeliveries is the number of tasks put back in the queue, for another
// worker, because the worker holding them left or took too long.
func (d *Dispatcher) redeliveries() uint64 { return d.redelivered.Load() }

type eventKind int

const (
	joined eventKind = iota
	request
	left
	gone          // an origin's call ended: drop its waiting tasks
	stopAssigning // Drain: hand out no more tasks; ack is closed once Run knows
)

type event struct {
	kind   eventKind
	w      *workerConn
	req    *palmv1.WorkRequest
	bytes  int64 // result payload of req, counted in w.pending
	origin Origin
	ack    chan struct{}
}

// workerConn is one worker's stream as Run sees it.
type workerConn struct {
	id        dispatch.WorkerID
	name      string
	functions []string

	// The tasks handed to the worker and not yet sent, which the credit
	// cap bounds, so that Run never waits on them; ready holds a token
	// while there are some.
	mu    sync.Mutex
	tasks []*palmv1.Task
	ready chan struct{}

	pending atomic.Int64  // result bytes posted and not yet handled
	room    chan struct{} // a token when pending went down
}

// give queues a task for the worker's stream.
func (w *workerConn) give(t *palmv1.Task) {
	w.mu.Lock()
	w.tasks = append(w.tasks, t)
	w.mu.Unlock()
	signal(w.ready)
}

// take appends the tasks queued for the stream to buf, and empties the
// queue.
func (w *workerConn) take(buf []*palmv1.Task) []*palmv1.Task {
	w.mu.Lock()
	buf = append(buf, w.tasks...)
	clear(w.tasks)
	w.tasks = w.tasks[:0]
	w.mu.Unlock()
	return buf
}

// A task's Value is the message to hand to a worker, a
// *palmv1.PalmMessage, or a *rejection for a task rejected before the
// core. A core Message's Origin is an Origin, and its Sequence the
// client's.

// rejection is a task that cannot go to a worker: its message, why, and
// the step it named.
type rejection struct {
	msg  *palmv1.PalmMessage
	err  error
	step Step
}

// taskMsg is the message of a task.
func taskMsg(t *dispatch.Task) *palmv1.PalmMessage {
	if r, ok := t.Value.(*rejection); ok {
		return r.msg
	}
	return t.Value.(*palmv1.PalmMessage)
}

// single is one message of one task, in one allocation: the common case.
type single struct {
	t dispatch.Task
	m dispatch.Message
}

// loop is Run's state: the core and the I/O that carries out its outputs,
// touched by Run's goroutine alone. Each turn reads a burst of events,
// steps the core with each, then carries out the core's Ready: it sends
// tasks to worker streams, envelopes along the link, and logs; it never
// asks the core a question in the middle of an event.
type loop struct {
	d       *Dispatcher
	ctx     context.Context
	link    *Link
	core    *dispatch.Core
	workers map[dispatch.WorkerID]*workerConn
	watches map[any]func() bool // origins with a watch on their end
	timer   *time.Timer
	timerAt time.Time // when timer fires; zero when stopped
	now     time.Time // the time of the turn

	// Scratch, reused from turn to turn.
	tasks   []*dispatch.Task
	results []dispatch.Result
	dones   []dispatch.Finish
	unsent  []dispatch.Assignment
	handled []event // requests whose result bytes go back after the turn
}

// Run owns the dispatch core until ctx ends.
func (d *Dispatcher) Run(ctx context.Context, link *Link) error {
	l := &loop{
		d: d, ctx: ctx, link: link,
		core: dispatch.New(dispatch.Config{
			Capacity:       d.cfg.Queue,
			MaxAttempts:    d.cfg.MaxAttempts,
			TaskTimeout:    d.cfg.TaskTimeout,
			WaitForWorkers: d.cfg.WaitForWorkers,
			ReplaceWait:    DefaultReplaceWait,
			MaxResultBytes: d.cfg.MaxResultBytes,
		}),
		workers: map[dispatch.WorkerID]*workerConn{},
		watches: map[any]func() bool{},
		timer:   time.NewTimer(time.Hour),
	}
	l.timer.Stop()
	close(d.ready)
	defer close(d.runDone)
	defer l.unwatchAll()
	for l.turn() {
		if err := l.apply(); err != nil {
			return nil // the link's context ended: the master is stopping
		}
		d.queued.Store(int64(l.core.Queued()))
		d.inflight.Store(int64(l.core.InFlight()))
		d.redelivered.Store(l.core.Requeued())
	}
	return nil
}

// turn waits for something to happen and steps the core with it, and with
// what else waits, up to a burst: the tasks of a burst go out together, in
// fewer responses, and the loop's bookkeeping is paid once. It reports
// false when ctx ended.
func (l *loop) turn() bool {
	inbox := l.link.Inbox()
	if l.core.Room() == 0 {
		inbox = nil // full: let the gateway's windows hold the clients
	}
	select {
	case <-l.ctx.Done():
		return false
	case e := <-inbox:
		l.now = time.Now()
		l.accept(e)
		if l.core.Room() > 0 {
			pack.Take(inbox, maxBurst-1, func(e Envelope) bool { l.accept(e); return l.core.Room() > 0 })
		}
	case ev := <-l.d.events:
		l.now = time.Now()
		l.handle(ev)
		pack.Take(l.d.events, maxBurst-1, func(ev event) bool { l.handle(ev); return true })
	case <-l.timer.C:
		l.timerAt = time.Time{}
		l.now = time.Now()
		l.core.Step(dispatch.Event{Kind: dispatch.Tick, At: l.now})
	}
	return true
}

// accept scatters a message into tasks and submits them as one message.
func (l *loop) accept(e Envelope) {
	_, isOneCall := e.Origin.(oneCall)
	if e.Origin != nil && e.Origin.Context().Err() != nil {
		if isOneCall {
			// A call cancelled on a stream that goes on: the stream
			// still wants it completed, by a message of no task.
			l.submit(&dispatch.Message{Origin: e.Origin, Sequence: e.Sequence}, nil)
		}
		return // its client has gone
	}
	d := l.d
	if d.cfg.Scatter == nil && e.Step.Function != "" {
		// The common case, without a scatter hook: one task, its step
		// already parsed by the gateway, and no slice to build.
		one := &single{
			t: dispatch.Task{Function: e.Step.Function, Value: e.Msg},
			m: dispatch.Message{Origin: e.Origin, Single: isOneCall, Deadline: e.Deadline, Sequence: e.Sequence},
		}
		l.submit(&one.m, append(l.tasks[:0], &one.t))
		return
	}
	m := &dispatch.Message{Origin: e.Origin, Single: isOneCall, Deadline: e.Deadline, Sequence: e.Sequence}
	msgs := []*palmv1.PalmMessage{e.Msg}
	if d.cfg.Scatter != nil {
		var err error
		if msgs, err = collect(d.cfg.Scatter, e.Msg); err != nil {
			d.logger.Error("scatter failed", "error", err)
			l.submit(m, append(l.tasks[:0], rejected(e.Msg, err, e.Step)))
			return
		}
	}
	tasks := l.tasks[:0]
	for _, msg := range msgs {
		fn := e.Step.Function
		if msg != e.Msg || fn == "" {
			step, err := route.Current(msg)
			if err != nil {
				tasks = append(tasks, rejected(msg, err, step))
				continue
			}
			fn = step.Function
		}
		tasks = append(tasks, &dispatch.Task{Function: fn, Value: msg})
	}
	l.submit(m, tasks)
}

// rejected is a task for m, which cannot go to a worker: it fails with
// err at once.
func rejected(m *palmv1.PalmMessage, err error, step Step) *dispatch.Task {
	return &dispatch.Task{Rejected: true, Value: &rejection{msg: m, err: err, step: step}}
}

// submit steps the core with m and its tasks.
func (l *loop) submit(m *dispatch.Message, tasks []*dispatch.Task) {
	l.core.Step(dispatch.Event{Kind: dispatch.Submit, At: l.now, Message: m, Tasks: tasks})
	clear(tasks)
	l.tasks = tasks[:0]
}

// handle steps the core with one event of a worker stream, an origin or
// Drain.
func (l *loop) handle(ev event) {
	switch ev.kind {
	case stopAssigning:
		// The core hands out nothing from this step on, so that no task
		// follows a worker's drain.
		l.core.Step(dispatch.Event{Kind: dispatch.Stop, At: l.now})
		close(ev.ack)
	case gone:
		l.core.Step(dispatch.Event{Kind: dispatch.Gone, At: l.now, Origin: ev.origin})
	case joined:
		if l.workers[ev.w.id] == nil {
			l.workers[ev.w.id] = ev.w
			l.core.Step(dispatch.Event{Kind: dispatch.Join, At: l.now, Worker: ev.w.id, Functions: ev.w.functions})
		}
	case left:
		l.core.Step(dispatch.Event{Kind: dispatch.Leave, At: l.now, Worker: ev.w.id})
	case request:
		l.report(ev)
	}
}

// report steps the core with a worker's results, dones and credit.
func (l *loop) report(ev event) {
	req := ev.req
	results, dones := l.results[:0], l.dones[:0]
	for _, r := range req.GetResults() {
		results = append(results, dispatch.Result{Task: dispatch.TaskID(r.GetTaskId()), Bytes: len(r.GetMessage().GetPayload()), Value: r})
	}
	for _, done := range req.GetDone() {
		dones = append(dones, dispatch.Finish{Task: dispatch.TaskID(done.GetTaskId()), Failed: done.GetError() != nil, Value: done})
	}
	l.core.Step(dispatch.Event{
		Kind: dispatch.Report, At: l.now, Worker: ev.w.id,
		Results: results, Dones: dones, Credit: int(min(req.GetCredit(), dispatch.MaxCredit)),
	})
	clear(results)
	clear(dones)
	l.results, l.dones = results[:0], dones[:0]
	if ev.bytes > 0 {
		l.handled = append(l.handled, ev)
	}
}

// apply carries out the core's Ready, and then the Ready of the tasks it
// could not send because their origins had ended, until there are none.
func (l *loop) apply() error {
	defer l.giveBack()
	for {
		rd := l.core.Ready(l.now)
		l.watchAll(rd)
		l.roster(rd)
		l.send(rd.Assigned)
		err := l.deliver(rd.Outputs)
		l.note(rd)
		l.arm(rd.Deadline)
		l.core.Advance()
		if err != nil || len(l.unsent) == 0 {
			return err
		}
		for _, a := range l.unsent {
			l.core.Step(dispatch.Event{Kind: dispatch.Unsent, At: l.now, Worker: a.Worker, Task: a.Task.ID})
		}
		clear(l.unsent)
		l.unsent = l.unsent[:0]
	}
}

// giveBack returns the result bytes of the requests handled this turn to
// their workers' receiving goroutines.
func (l *loop) giveBack() {
	for _, ev := range l.handled {
		if ev.w.pending.Add(-ev.bytes) < maxPendingBytes {
			signal(ev.w.room)
		}
	}
	clear(l.handled)
	l.handled = l.handled[:0]
}

// send queues the tasks assigned for their workers' streams; a task whose
// origin has ended goes to l.unsent instead, so that no worker spends time
// on it.
func (l *loop) send(assigned []dispatch.Assignment) {
	for _, a := range assigned {
		t := a.Task
		if o, _ := t.Origin.(Origin); o != nil && o.Context().Err() != nil {
			l.unsent = append(l.unsent, a)
			continue
		}
		task := &palmv1.Task{Id: uint64(t.ID), Message: t.Value.(*palmv1.PalmMessage)}
		if !t.Deadline.IsZero() {
			// The worker may stop when the client no longer wants the
			// result; the task timeout is the master's own business.
			task.TimeoutMs = uint64(max(1, t.Deadline.Sub(l.now).Milliseconds()))
		}
		l.workers[a.Worker].give(task)
	}
}

// deliver sends the envelopes of the core's outputs, in order.
func (l *loop) deliver(outputs []dispatch.Output) error {
	for _, o := range outputs {
		origin, _ := o.Message.Origin.(Origin)
		e := Envelope{Origin: origin, Sequence: o.Message.Sequence, Done: o.Done}
		switch o.Kind {
		case dispatch.Route:
			e.Msg = result(o.Task.Value.(*palmv1.PalmMessage), o.Value.(*palmv1.TaskResult).GetMessage())
			e.Step = Step{Server: l.d.cfg.Master, Function: o.Task.Function}
		case dispatch.Fail:
			step, err := l.failure(o)
			e.Msg = palm.ChangePayload(taskMsg(o.Task), nil)
			e.Msg.Error = route.ErrorOf(err, step)
		case dispatch.Complete:
			e.Done = true
		default: // dispatch.Dropped: nothing to send
			continue
		}
		if err := l.link.Send(l.ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// watchAll starts and stops the watches on origins' ends that the core
// asks for: Run hears when a watched origin's call ends, so that its
// waiting tasks leave the queue at once.
func (l *loop) watchAll(rd *dispatch.Ready) {
	d := l.d
	for _, key := range rd.Watch {
		o := key.(Origin)
		l.watches[key] = context.AfterFunc(o.Context(), func() {
			select {
			case d.events <- event{kind: gone, origin: o}:
			case <-d.runDone:
			}
		})
	}
	for _, key := range rd.Unwatch {
		if stop := l.watches[key]; stop != nil {
			stop()
			delete(l.watches, key)
		}
	}
}

func (l *loop) unwatchAll() {
	for _, stop := range l.watches {
		stop()
	}
}

// roster applies the roster's changes: the workers' streams known, Roster
// and Workers, the log.
func (l *loop) roster(rd *dispatch.Ready) {
	if len(rd.Joined) == 0 && len(rd.Left) == 0 {
		return
	}
	for _, id := range rd.Joined {
		w := l.workers[id]
		l.d.logger.Info("worker joined", "worker", w.name, "functions", w.functions)
	}
	for _, dep := range rd.Left {
		w := l.workers[dep.Worker]
		delete(l.workers, dep.Worker)
		l.d.logger.Info("worker left", "worker", w.name, "given up", dep.Failed)
	}
	r := make([]WorkerSummary, 0, len(l.workers))
	for _, w := range l.workers {
		r = append(r, WorkerSummary{Name: w.name, Functions: w.functions})
	}
	slices.SortFunc(r, func(a, b WorkerSummary) int { return strings.Compare(a.Name, b.Name) })
	l.d.roster.Store(&r)
	l.d.workers.Store(int64(len(l.workers)))
}

// note logs what the core reports beside the outputs.
func (l *loop) note(rd *dispatch.Ready) {
	d := l.d
	for _, fn := range rd.Waiting {
		d.logger.Warn("no connected worker serves the function; its messages wait for one", "function", fn, "wait", d.cfg.WaitForWorkers)
	}
	if rd.TimedOut > 0 {
		d.logger.Warn("tasks held past the task timeout go to other workers", "tasks", rd.TimedOut, "timeout", d.cfg.TaskTimeout)
	}
	if len(rd.Ignored) > 0 && d.logger.IsDebug() {
		for _, ig := range rd.Ignored {
			name := ""
			if w := l.workers[ig.Worker]; w != nil {
				name = w.name
			}
			d.logger.Debug("report for a task the worker does not hold; ignored", "worker", name, "task", ig.Task, "done", ig.Done)
		}
	}
}

// arm sets the timer for the core's next deadline, when that is earlier
// than the timer's; a timer that fires early finds nothing and is armed
// again, which costs less than moving it with every task.
func (l *loop) arm(at time.Time) {
	if at.IsZero() || (!l.timerAt.IsZero() && !at.Before(l.timerAt)) {
		return
	}
	l.timer.Reset(time.Until(at))
	l.timerAt = at
}

// oneCall is an Origin that stands for one message alone: an Eval, or a
// call on a client's stream that goes on after it. When its context ends
// its waiting tasks are dropped and the message is still completed (the
// stream it is part of wants to hear it); once the message is completed
// the origin is forgotten, so that its context ending later costs nothing.
type oneCall interface {
	Origin
	oneCall()
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

// failure is the step to name and the status a client gets for a task
// that failed.
func (l *loop) failure(o dispatch.Output) (Step, error) {
	d := l.d
	t := o.Task
	if r, ok := t.Value.(*rejection); ok {
		return r.step, r.err
	}
	step, _ := route.Current(t.Value.(*palmv1.PalmMessage))
	switch o.Reason {
	case dispatch.Failed:
		return step, workerError(o.Value.(*palmv1.TaskDone).GetError())
	case dispatch.TooLarge:
		worker := "?"
		if w := l.workers[o.Value.(dispatch.WorkerID)]; w != nil {
			worker = w.name
		}
		d.logger.Warn("a task's results passed the limit; the task fails", "worker", worker, "function", t.Function, "limit", d.cfg.MaxResultBytes)
		return step, status.Errorf(codes.ResourceExhausted, "the results of one task passed %d bytes (the master's limit, four times its message size limit); the rest were dropped", d.cfg.MaxResultBytes)
	case dispatch.Unserved:
		return step, status.Errorf(codes.NotFound, "no connected worker of %s serves %q: %s; start a worker with that function, or make the master wait for one (master.WaitForWorkers)", d.cfg.Master, t.Function, l.served())
	case dispatch.NoWorker:
		return step, status.Errorf(codes.NotFound, "no worker of %s serving %q connected while the message waited for one (up to %v, master.WaitForWorkers; %v after the function's last worker left); %s",
			d.cfg.Master, t.Function, d.cfg.WaitForWorkers, max(DefaultReplaceWait, d.cfg.WaitForWorkers), l.served())
	case dispatch.Expired:
		return step, status.Error(codes.DeadlineExceeded, "the message's deadline passed while it waited for a worker")
	case dispatch.TimedOut:
		return step, status.Errorf(codes.DeadlineExceeded, "the task was handed to %d workers and each held it past the task timeout (%v, master.TaskTimeout)", t.Attempts, d.cfg.TaskTimeout)
	default: // dispatch.Abandoned
		return step, status.Errorf(codes.Aborted, "the task was handed to %d workers and each went away before finishing it", t.Attempts)
	}
}

// workerError is the status of a worker's failed done. A failure is never
// OK, and a code gRPC does not define means nothing to the client: both
// become Unknown.
func workerError(e *palmv1.Error) error {
	return status.Error(route.Code(e), e.GetMessage())
}

// served says which functions the connected workers serve, for an error
// message.
func (l *loop) served() string {
	if names := l.core.Functions(maxNamed); len(names) > 0 {
		return "the workers serve " + strings.Join(names, ", ")
	}
	return "no worker is connected"
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
	r.TimeoutMs = 0
	if r.Function == "" {
		r.Function, r.Stage, r.Cache = task.GetFunction(), task.GetStage(), task.GetCache()
	}
	return r
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
	first, err := d.open(stream)
	if err != nil {
		return err
	}
	d.streams.Add(1)
	defer d.streams.Done()
	hello := first.GetHello()
	w := &workerConn{
		id:        dispatch.WorkerID(d.nextID.Add(1)),
		name:      hello.GetName(),
		functions: hello.GetFunctions(),
		ready:     make(chan struct{}, 1),
		room:      make(chan struct{}, 1),
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
	go d.receive(ctx, stream, w, recvDone)
	return d.sendLoop(stream, w, recvDone)
}

// open waits for Run and for the stream's hello, and checks it.
func (d *Dispatcher) open(stream palmv1.DispatchService_WorkServer) (*palmv1.WorkRequest, error) {
	ctx := stream.Context()
	select {
	case <-d.ready:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	select {
	case <-d.closing:
		return nil, errStopping
	default:
	}
	first, err := d.hello(stream)
	if err != nil {
		return nil, err
	}
	hello := first.GetHello()
	if hello == nil {
		return nil, status.Error(codes.InvalidArgument, "the first WorkRequest of a worker must carry a hello: the worker's name and functions")
	}
	if err := d.checkHello(hello); err != nil {
		return nil, err
	}
	return first, nil
}

// receive is the one goroutine that receives from a worker's stream: it
// posts each request to Run, and reports how the stream ended on done.
func (d *Dispatcher) receive(ctx context.Context, stream palmv1.DispatchService_WorkServer, w *workerConn, done chan<- error) {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			err = nil // the worker half-closed: it is done
		}
		if err != nil || req == nil {
			done <- err
			return
		}
		if err := d.postRequest(ctx, w, req); err != nil {
			// The master is stopping: say so, rather than end the stream
			// as if the worker had finished.
			done <- postStatus(err)
			return
		}
	}
}

// sendLoop is the stream handler's goroutine, the one that sends to the
// worker: the tasks Run hands it, then the drain once the master drains.
func (d *Dispatcher) sendLoop(stream palmv1.DispatchService_WorkServer, w *workerConn, recvDone <-chan error) error {
	ctx := stream.Context()
	s := taskSender{stream: stream, max: d.cfg.MaxSendBytes, resp: &palmv1.WorkResponse{}}
	closing := d.closing
	for {
		select {
		case <-w.ready:
			if err := s.send(w); err != nil {
				return err
			}
		case <-closing:
			closing = nil
			// Tasks handed out before the master stopped assigning go
			// before the drain; none comes after it.
			if err := s.send(w); err != nil {
				return err
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

// taskSender sends a worker's tasks in responses.
type taskSender struct {
	stream palmv1.DispatchService_WorkServer
	max    int // MaxSendBytes
	resp   *palmv1.WorkResponse
	taken  []*palmv1.Task
}

// send sends the tasks queued for w, at most pack.MaxMessages and s.max bytes per
// response (a larger task alone), so that the worker can take each.
func (s *taskSender) send(w *workerConn) error {
	s.taken = w.take(s.taken[:0])
	defer clear(s.taken)
	for rest := s.taken; len(rest) > 0; {
		n, size := 1, rest[0].SizeVT()
		for n < len(rest) {
			next := rest[n].SizeVT() + taskOverhead
			if !pack.Fits(n, size, next, pack.MaxMessages, s.max) {
				break
			}
			n, size = n+1, size+next
		}
		s.resp.Tasks = rest[:n]
		rest = rest[n:]
		err := s.stream.Send(s.resp)
		s.resp.Tasks = nil
		if err != nil {
			return err
		}
	}
	return nil
}

// checkHello bounds what a hello may name, so that no worker grows the
// master's memory or its InfoService answer without bound.
func (d *Dispatcher) checkHello(h *palmv1.Hello) error {
	if name := h.GetName(); name != "" {
		if err := names.Worker(name); err != nil {
			return status.Errorf(codes.InvalidArgument, "hello: %v", err)
		}
	}
	if n := len(h.GetFunctions()); n > MaxHelloFunctions {
		return status.Errorf(codes.InvalidArgument, "hello: %d functions; a worker may name at most %d (name none to serve every function)", n, MaxHelloFunctions)
	}
	for _, f := range h.GetFunctions() {
		if err := names.Function(f); err != nil {
			return status.Errorf(codes.InvalidArgument, "hello: function %q: %v", truncate(f, 32), err)
		}
	}
	return nil
}

// postRequest posts a worker's request to Run, first waiting while the
// results it posted before and Run has not handled pass maxPendingBytes.
func (d *Dispatcher) postRequest(ctx context.Context, w *workerConn, req *palmv1.WorkRequest) error {
	n := int64(0)
	for _, r := range req.GetResults() {
		n += int64(len(r.GetMessage().GetPayload()))
	}
	for n > 0 && w.pending.Load() >= maxPendingBytes {
		select {
		case <-w.room:
		case <-ctx.Done():
			return ctx.Err()
		case <-d.runDone:
			return errStopping
		}
	}
	w.pending.Add(n)
	if err := d.post(ctx, event{kind: request, w: w, req: req, bytes: n}); err != nil {
		w.pending.Add(-n)
		return err
	}
	return nil
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
