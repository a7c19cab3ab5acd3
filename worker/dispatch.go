package worker

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/pack"
)

// This file is the worker side of palm.v1.DispatchService.Work, one
// session (one stream) at a time. The stream rules it keeps:
//
//   - one goroutine calls Recv (recvLoop): it records each task in the
//     ledger and puts it in the session's run queue, which the credit
//     bounds, so it never waits for a handler;
//   - up to Concurrency runners (started as tasks arrive, and kept for the
//     session) take tasks from the run queue in order and call their
//     functions, so no goroutine is started per task;
//   - a runner adds a task's results and its done to the WorkRequest being
//     filled (at most maxBatch results and dones, and at most maxBatchBytes
//     of encoded results unless one result alone is larger); when no task
//     waits in the run queue (or the request is full) and no one is
//     sending, it sends the request itself, then whatever was added
//     meanwhile; when tasks wait, it leaves the sending to the sender
//     goroutine and goes on with the next task:
//     one goroutine sends at a time (the one holding the sending role), and
//     what others add while it sends goes in the next request, so requests
//     fill by themselves as the load grows and a lone task's result leaves
//     without a hand-off. A full request makes handlers wait (in yield, for
//     a MuxHandler) until the sender takes it: backpressure, never loss;
//   - what the receiver and the session loop have to send (refusals, the
//     half-close), and what busy runners leave, goes through a sender
//     goroutine, so that the receiver and the loop never wait on the
//     stream's flow control;
//   - the session loop (session.run) handles the rare events: the stream's
//     end, a stop and its deadline;
//   - all the session's state is under one mutex, and every wait on it ends
//     when the session does.

// maxBatch is the most results and dones packed in one WorkRequest.
const maxBatch = pack.MaxMessages

// maxBatchBytes bounds the encoded results packed in one WorkRequest.
const maxBatchBytes = pack.MaxBytes

// output is what a runner adds to the request being filled: a result, a
// done, or a result and the done that follows it.
type output struct {
	result *palmv1.TaskResult
	size   int // encoded size of result, measured by the runner
	done   *palmv1.TaskDone
	took   time.Duration // with done: how long the function took
	end    time.Time     // with done: when it returned
}

// queued is a task waiting in the run queue.
type queued struct {
	task    *palmv1.Task
	arrived time.Time
}

// session is one Work stream.
type session struct {
	w   *Worker
	log hclog.Logger

	stream palmv1.DispatchService_WorkClient
	recvd  chan error    // the error Recv ended with; buffered (1)
	kick   chan struct{} // a token: the sender goroutine has something to send
	sent   chan struct{} // closed when sending fails; sendErr is set
	closed chan struct{} // closed once the stream is half-closed
	runCtx context.Context

	mu       sync.Mutex
	led      *ledger    // the tasks held and the credit
	queue    []queued   // the run queue: tasks held and not yet started
	head     int        // queue[head:] waits
	runners  int        // runners started
	idle     int        // runners waiting for a task
	work     *sync.Cond // a task was queued, or the session ended
	room     *sync.Cond // the request was taken, or the session ended
	waiting  int        // runners waiting for room
	out      batch
	sending  bool   // someone holds the sending role
	over     bool   // the session ended: runners return, outputs are dropped
	why      reason // why the session is stopping, when it is
	halfDone bool   // CloseSend handed over
	welcomed bool
	sendErr  error
	took     time.Duration // the average time of a function call; 0 before the first

	tasks sync.WaitGroup // runners
	loops sync.WaitGroup // sender and receiver
}

// reason is why a session is stopping.
type reason string

const (
	byContext  reason = "the worker's context ended"
	byDrain    reason = "the master is draining"
	byMessages reason = "the worker completed its messages"
)

// session runs one Work stream until it ends. It reports whether the
// master welcomed the worker, and the error that ended the session when it
// did not end by a stop.
func (w *Worker) session(ctx context.Context, dispatch palmv1.DispatchServiceClient, led *ledger) (welcomed bool, err error) {
	led.reset()
	// The stream outlives ctx: a graceful stop still sends results after
	// ctx ends. Values of ctx go on to handlers.
	sctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)

	unhook := context.AfterFunc(ctx, func() { cancel(context.Canceled) })
	w.logger.Debug("opening a stream", "address", w.address)
	stream, err := dispatch.Work(sctx)
	if !unhook() {
		return false, nil // ctx ended while connecting: nothing held, nothing to finish
	}
	if err != nil {
		return false, err
	}
	s := &session{
		w:      w,
		log:    w.logger,
		stream: stream,
		led:    led,
		recvd:  make(chan error, 1),
		kick:   make(chan struct{}, 1),
		sent:   make(chan struct{}),
		closed: make(chan struct{}),
		runCtx: sctx,
		out: batch{
			req:   &palmv1.WorkRequest{Hello: &palmv1.Hello{Name: w.name, Functions: w.functions()}, Credit: led.grant()},
			limit: min(maxBatchBytes, w.cfg.MaxMessageSize),
		},
	}
	s.work = sync.NewCond(&s.mu)
	s.room = sync.NewCond(&s.mu)
	stopWaits := context.AfterFunc(sctx, s.end)
	defer stopWaits()
	s.loops.Add(2)
	go s.sendLoop(sctx)
	go s.recvLoop(sctx)
	s.signal() // the hello
	err = s.run(ctx)
	// Over before the tasks' contexts end: a handler that returns on its
	// context finds nothing to send its done on (the tasks abandoned by a
	// stop that timed out stay abandoned), rather than racing the
	// AfterFunc that would mark it.
	s.end()
	cancel(errSessionEnded)
	s.loops.Wait()
	s.waitTasks()
	s.mu.Lock()
	welcomed = s.welcomed
	s.mu.Unlock()
	return welcomed, err
}

var errSessionEnded = errors.New("the worker's stream to the master ended")

// end marks the session over and wakes every goroutine waiting on it.
func (s *session) end() {
	s.mu.Lock()
	s.over = true
	s.work.Broadcast()
	s.room.Broadcast()
	s.mu.Unlock()
}

// signal asks the sender goroutine to send what there is.
func (s *session) signal() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// sendLoop sends on behalf of the receiver and the session loop.
func (s *session) sendLoop(ctx context.Context) {
	defer s.loops.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			s.mu.Lock()
			s.flush()
			s.mu.Unlock()
		}
	}
}

// flush sends, unless someone else is, the request being filled and what
// is added while it sends, then the half-close once it is due. It is
// called with s.mu held, and releases it while sending.
func (s *session) flush() {
	if s.sending {
		return // the sender sends what was added when it comes back
	}
	s.sending = true
	defer func() { s.sending = false }()
	for s.sendErr == nil && !s.over {
		var req *palmv1.WorkRequest
		switch {
		case !s.out.empty():
			req = s.out.take()
			if s.waiting > 0 {
				s.room.Broadcast()
			}
		case s.why != "" && !s.halfDone && s.led.holding() == 0:
			s.halfDone = true
		default:
			return
		}
		s.mu.Unlock()
		var err error
		if req != nil {
			err = s.stream.Send(req)
		} else {
			err = s.stream.CloseSend()
			if err == nil {
				close(s.closed)
			}
		}
		s.mu.Lock()
		if err != nil {
			// The stream is broken, and Recv reports why.
			s.sendErr = err
			close(s.sent)
		}
	}
}

// recvLoop is the one goroutine that receives from the stream.
func (s *session) recvLoop(ctx context.Context) {
	defer s.loops.Done()
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			s.recvd <- err
			return
		}
		s.received(ctx, resp)
	}
}

// received applies one WorkResponse: the welcome, tasks, a drain.
func (s *session) received(ctx context.Context, resp *palmv1.WorkResponse) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if resp.GetWelcome() != nil && !s.welcomed {
		s.welcomed = true
		s.log.Info("connected to the master", "address", s.w.address, "master", resp.GetWelcome().GetMaster())
	}
	refused := false
	tasks := resp.GetTasks()
	if len(tasks) == 1 && s.head == len(s.queue) && s.idle > 0 && s.fast() && !s.halfDone {
		// A lone task for a function that returns in microseconds, with a
		// runner free: the receiver runs it itself, sparing the hand-off
		// (a sequential Eval's case). The free runner's place is taken
		// meanwhile, so the concurrency holds, and nothing else arrives
		// while the receiver runs it.
		if t := tasks[0]; s.led.take(t.GetId(), len(t.GetMessage().GetPayload())) == accept {
			s.idle--
			s.mu.Unlock()
			s.runTask(ctx, t, now)
			s.mu.Lock()
			s.idle++
			return
		}
	}
	for _, t := range tasks {
		if s.take(ctx, t, now) {
			refused = true
		}
	}
	if resp.GetDrain() {
		s.stop(byDrain)
		refused = true // the half-close may be due
	}
	if refused {
		s.signal()
	}
}

// fast reports whether the functions called lately returned within
// inlineTime, on average; s.mu is held.
func (s *session) fast() bool { return s.took > 0 && s.took < inlineTime }

// inlineTime is how quickly a function must return, on average, for the
// receiver to run a lone task itself.
const inlineTime = 20 * time.Microsecond

// timed records how long a function call took; s.mu is held.
func (s *session) timed(d time.Duration) {
	d = max(d, 1)
	if s.took == 0 {
		s.took = d
		return
	}
	s.took += (d - s.took) / 8
}

// take handles one task from the master, with s.mu held; it reports whether
// it added a refusal to the request.
func (s *session) take(ctx context.Context, t *palmv1.Task, now time.Time) bool {
	id := t.GetId()
	if s.halfDone {
		s.log.Debug("task arrived after the worker half-closed; the master gives it to another worker", "task", id)
		return false
	}
	switch s.led.take(id, len(t.GetMessage().GetPayload())) {
	case accept:
		if s.head > 0 && s.head >= len(s.queue)/2 {
			// Move what waits to the front, so that the queue's array
			// stays within twice the tasks held.
			n := copy(s.queue, s.queue[s.head:])
			clear(s.queue[n:])
			s.queue, s.head = s.queue[:n], 0
		}
		s.queue = append(s.queue, queued{task: t, arrived: now})
		switch {
		case s.idle > 0:
			s.idle--
			s.work.Signal()
		case s.runners < s.w.set.concurrency:
			s.runners++
			s.tasks.Add(1)
			go s.runner(ctx)
		}
	case overCredit:
		s.log.Warn("the master sent more tasks than the credit the worker granted; refusing the task", "task", id)
		s.out.addDone(&palmv1.TaskDone{TaskId: id, Error: &palmv1.Error{
			Code:    uint32(codes.ResourceExhausted),
			Message: "the master sent this task beyond the credit the worker granted",
		}})
		return true
	case duplicate:
		s.log.Warn("the master sent a task the worker already holds; ignoring it", "task", id)
	}
	return false
}

// runner runs queued tasks, one at a time, until the session ends.
func (s *session) runner(ctx context.Context) {
	defer s.tasks.Done()
	s.mu.Lock()
	for {
		for s.head == len(s.queue) && !s.over {
			s.idle++
			s.work.Wait() // whoever wakes a runner counts it out of idle
		}
		if s.over {
			s.mu.Unlock()
			return
		}
		q := s.queue[s.head]
		s.queue[s.head] = queued{}
		s.head++
		s.mu.Unlock()
		s.runTask(ctx, q.task, q.arrived)
		s.mu.Lock()
	}
}

// emit adds a task's output to the request being filled, waiting for room,
// and sends it when no one else is sending; it reports false when the
// session ended first.
func (s *session) emit(o output) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.over && s.sendErr == nil && (s.out.full() || !s.out.fits(o)) {
		if !s.sending {
			s.flush()
			continue
		}
		s.waiting++
		s.room.Wait()
		s.waiting--
	}
	if s.over || s.sendErr != nil {
		return false
	}
	if o.result != nil {
		s.out.addResult(o.result, o.size)
	}
	if o.done != nil {
		s.timed(o.took)
		s.out.addDone(o.done)
		if !s.led.finish(o.done.GetTaskId(), o.end) {
			s.log.Error("internal error: done for a task not held", "task", o.done.GetTaskId())
		}
		s.out.req.Credit += s.led.grant()
		if s.led.exhausted() {
			s.stop(byMessages)
		}
	}
	if s.head == len(s.queue) || s.out.full() {
		// Nothing more to run at once, or no room: send now.
		s.flush()
	} else {
		// More tasks wait: this runner goes on with the next, and the
		// sender sends what the runners have added by the time it runs,
		// so that a loaded worker's results travel many per request.
		s.signal()
	}
	return true
}

// stop makes the session grant no more credit and half-close once it holds
// nothing; s.mu is held.
func (s *session) stop(r reason) {
	if s.why == "" {
		s.why = r
		s.log.Info("stopping", "reason", string(r), "holding", s.led.holding())
	}
	s.led.stop()
}

// waitTasks waits for the runners of the session, whose context is
// cancelled, at most the stop timeout.
func (s *session) waitTasks() {
	done := make(chan struct{})
	go func() { s.tasks.Wait(); close(done) }()
	t := time.NewTimer(s.w.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.log.Warn("a function call is still running after its stream ended: the function ignores its context", "timeout", s.w.cfg.StopTimeout)
	}
}

// batch is the WorkRequest being filled.
type batch struct {
	req   *palmv1.WorkRequest
	count int // results and dones in req
	size  int // encoded bytes of the results in req
	limit int // most encoded result bytes, unless one result alone is more
}

func (b *batch) empty() bool {
	return b.count == 0 && b.req.GetHello() == nil && b.req.GetCredit() == 0
}

// full reports whether b takes no more outputs.
func (b *batch) full() bool { return b.count >= maxBatch || b.size >= b.limit }

// fits reports whether o can join b without going over the byte limit.
func (b *batch) fits(o output) bool {
	return b.count == 0 || o.result == nil || b.size+o.size <= b.limit
}

func (b *batch) addResult(r *palmv1.TaskResult, size int) {
	b.req.Results = append(b.req.Results, r)
	b.size += size
	b.count++
}

func (b *batch) addDone(d *palmv1.TaskDone) {
	b.req.Done = append(b.req.Done, d)
	b.count++
}

// take hands over the request and starts an empty one, with room for as
// many results and dones as the one handed over, so that it does not grow
// by steps.
func (b *batch) take() *palmv1.WorkRequest {
	r := b.req
	b.req, b.count, b.size = &palmv1.WorkRequest{}, 0, 0
	if n := len(r.Results); n > 0 {
		b.req.Results = make([]*palmv1.TaskResult, 0, n)
	}
	if n := len(r.Done); n > 0 {
		b.req.Done = make([]*palmv1.TaskDone, 0, n)
	}
	return r
}

// run is the session loop: it waits for the stream's end, and carries out
// a stop caused by ctx, Run's context, within the stop timeout. Each case
// of its select is a method of sessionLoop.
func (s *session) run(ctx context.Context) error {
	l := &sessionLoop{s: s, done: ctx.Done(), sendFailed: s.sent, closed: s.closed}
	defer l.stopTimers()
	for {
		select {
		case err := <-s.recvd:
			return s.ended(err)
		case <-l.sendFailed:
			l.onSendFailed()
		case <-l.closed:
			l.onClosed()
		case <-l.done:
			l.onStop()
		case <-timerC(l.stopBound):
			return l.onStopTimedOut()
		case <-timerC(l.endBound):
			return l.onNoEnd()
		}
	}
}

// sessionLoop is what the session loop waits for: each channel is nil once
// its event came, and each bound nil until it is set.
type sessionLoop struct {
	s          *session
	done       <-chan struct{} // ctx's end
	sendFailed <-chan struct{}
	closed     <-chan struct{} // the half-close
	// The bounds of a stop caused by ctx, and of the wait for the master
	// to end the stream after CloseSend.
	stopBound, endBound *time.Timer
}

func (l *sessionLoop) stopTimers() {
	for _, t := range []*time.Timer{l.stopBound, l.endBound} {
		if t != nil {
			t.Stop()
		}
	}
}

// timerC is t's channel, nil for no timer.
func timerC(t *time.Timer) <-chan time.Time {
	if t == nil {
		return nil
	}
	return t.C
}

// onSendFailed logs why sending failed; Recv reports the stream's end.
func (l *sessionLoop) onSendFailed() {
	l.sendFailed = nil
	s := l.s
	if s.mu.Lock(); !errors.Is(s.sendErr, io.EOF) {
		s.log.Warn("cannot send to the master", "error", s.sendErr)
	}
	s.mu.Unlock()
}

// onClosed bounds the wait for the master to end the stream once it is
// half-closed.
func (l *sessionLoop) onClosed() {
	l.closed = nil
	l.s.log.Debug("half-closed the stream; waiting for the master to end it")
	l.endBound = time.NewTimer(l.s.w.cfg.StopTimeout)
}

// onStop stops the session because ctx ended, within the stop timeout.
func (l *sessionLoop) onStop() {
	l.done = nil
	s := l.s
	s.mu.Lock()
	s.stop(byContext)
	s.mu.Unlock()
	s.signal()
	l.stopBound = time.NewTimer(s.w.cfg.StopTimeout)
}

// onStopTimedOut ends a stop that took too long, abandoning what is held.
func (l *sessionLoop) onStopTimedOut() error {
	s := l.s
	s.mu.Lock()
	holding := s.led.holding()
	s.mu.Unlock()
	s.log.Warn("the stop timed out; abandoning the tasks still held", "timeout", s.w.cfg.StopTimeout, "holding", holding)
	return nil
}

// onNoEnd gives up on a master that does not end the half-closed stream.
func (l *sessionLoop) onNoEnd() error {
	l.s.log.Warn("the master did not end the stream after the worker half-closed it", "timeout", l.s.w.cfg.StopTimeout)
	return nil
}

// ended logs how a stream ended and returns the error to report.
func (s *session) ended(err error) error {
	s.mu.Lock()
	welcomed, why, closed, holding := s.welcomed, s.why, s.halfDone, s.led.holding()
	s.mu.Unlock()
	clean := errors.Is(err, io.EOF)
	switch {
	case closed && clean:
		s.log.Debug("the master ended the stream")
		return nil
	case why != "" && holding == 0:
		s.log.Debug("the stream ended while stopping", "error", err)
		return nil
	case clean:
		err = status.Error(codes.Unavailable, "the master ended the stream")
	}
	if welcomed {
		s.log.Warn("disconnected from the master", "address", s.w.address, "error", err, "abandoned", holding)
	}
	return err
}
