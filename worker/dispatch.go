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
)

// This file is the worker side of palm.v1.DispatchService.Work, one
// session (one stream) at a time. The stream rules it keeps:
//
//   - exactly one goroutine calls Send and CloseSend (sendLoop), and one
//     calls Recv (recvLoop); a third, the session loop (session.run), owns
//     every decision and all state, through the ledger;
//   - each task runs in a goroutine of its own, at most Credit at once (the
//     ledger never holds more); its results and its done go to the session
//     loop through a bounded queue (Credit entries, at most maxBatch), and a
//     full queue makes the handler wait (in yield, for a MuxHandler):
//     backpressure, never loss;
//   - the session loop packs what is ready into one WorkRequest (at most
//     maxBatch results and dones, and at most maxBatchBytes of encoded
//     results unless one result alone is larger) while the sender is busy
//     with the previous one; a full WorkRequest stops it taking from the
//     queue until the sender takes it;
//   - every goroutine watches the session's context, which is cancelled when
//     the session ends: by a broken stream, a finished or timed-out stop.

// maxBatch is the most results and dones packed in one WorkRequest.
const maxBatch = 256

// maxBatchBytes bounds the encoded results packed in one WorkRequest.
const maxBatchBytes = 1 << 20

// output is what a task goroutine hands the session loop: a result, a
// done, or a result and the done that follows it.
type output struct {
	result *palmv1.TaskResult
	size   int // encoded size of result, measured by the task goroutine
	done   *palmv1.TaskDone
}

// sendItem is what the session loop hands the sender: a request, or the
// order to half-close.
type sendItem struct {
	req       *palmv1.WorkRequest
	closeSend bool
}

// session is one Work stream.
type session struct {
	w   *Worker
	led *ledger
	log hclog.Logger

	stream  palmv1.DispatchService_WorkClient
	outc    chan output   // task goroutines -> session loop; bounded
	sendc   chan sendItem // session loop -> sender; unbuffered
	recvc   chan *palmv1.WorkResponse
	recvd   chan error    // the error Recv ended with; buffered (1)
	sent    chan struct{} // closed when the sender fails; sendErr is set
	sendErr error

	tasks sync.WaitGroup // task goroutines
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
		led:    led,
		log:    w.logger,
		stream: stream,
		outc:   make(chan output, min(w.set.credit, maxBatch)),
		sendc:  make(chan sendItem),
		recvc:  make(chan *palmv1.WorkResponse),
		recvd:  make(chan error, 1),
		sent:   make(chan struct{}),
	}
	s.loops.Add(2)
	go s.sendLoop(sctx)
	go s.recvLoop(sctx)
	welcomed, err = s.run(ctx, sctx)
	cancel(errSessionEnded)
	s.loops.Wait()
	s.waitTasks()
	return welcomed, err
}

var errSessionEnded = errors.New("the worker's stream to the master ended")

// sendLoop is the one goroutine that sends on the stream.
func (s *session) sendLoop(ctx context.Context) {
	defer s.loops.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-s.sendc:
			var err error
			if it.closeSend {
				err = s.stream.CloseSend()
			} else {
				err = s.stream.Send(it.req)
			}
			if err != nil {
				s.sendErr = err
				close(s.sent)
				return
			}
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
		select {
		case s.recvc <- resp:
		case <-ctx.Done():
			return
		}
	}
}

// emit hands a task's output to the session loop, waiting for room in the
// queue; it reports false when the session ended first.
func (s *session) emit(ctx context.Context, o output) bool {
	select {
	case s.outc <- o:
		return true
	case <-ctx.Done():
		return false
	}
}

// waitTasks waits for the task goroutines of the session, whose context is
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

// batch is the WorkRequest the session loop is filling.
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

// take hands over the request and starts an empty one.
func (b *batch) take() *palmv1.WorkRequest {
	r := b.req
	b.req, b.count, b.size = &palmv1.WorkRequest{}, 0, 0
	return r
}

// run is the session loop. ctx is Run's context, sctx the session's.
func (s *session) run(ctx, sctx context.Context) (welcomed bool, err error) {
	var (
		out = &batch{
			req:   &palmv1.WorkRequest{Hello: &palmv1.Hello{Name: s.w.name, Functions: s.w.functions()}, Credit: s.led.grant()},
			limit: min(maxBatchBytes, s.w.cfg.MaxMessageSize),
		}
		carry  *output // an output that did not fit in out
		closed bool    // CloseSend handed to the sender
		why    reason  // why the session is stopping, when it is
		done   = ctx.Done()
		// Closed when the sender fails.
		sendFailed = s.sent
		// The bounds of a stop caused by ctx, and of the wait for the
		// master to end the stream after CloseSend.
		stopTimer, waitTimer *time.Timer
	)
	defer func() {
		for _, t := range []*time.Timer{stopTimer, waitTimer} {
			if t != nil {
				t.Stop()
			}
		}
	}()
	timerC := func(t *time.Timer) <-chan time.Time {
		if t == nil {
			return nil
		}
		return t.C
	}
	stop := func(r reason) {
		if why == "" {
			why = r
			s.log.Info("stopping", "reason", string(r), "holding", s.led.holding())
		}
		s.led.stop()
	}
	add := func(o output) {
		if o.result != nil {
			out.addResult(o.result, o.size)
		}
		if o.done != nil {
			out.addDone(o.done)
			if !s.led.finish(o.done.GetTaskId()) {
				s.log.Error("internal error: done for a task not held", "task", o.done.GetTaskId())
			}
			out.req.Credit += s.led.grant()
			if s.led.exhausted() {
				stop(byMessages)
			}
		}
	}
	for {
		// What to hand the sender, if anything: the batch, or, once
		// stopping with nothing held and everything handed over, the
		// half-close.
		var sendc chan sendItem
		var item sendItem
		switch {
		case !out.empty():
			sendc, item = s.sendc, sendItem{req: out.req}
		case why != "" && !closed && carry == nil && s.led.holding() == 0:
			sendc, item = s.sendc, sendItem{closeSend: true}
		}
		// Take outputs while the batch has room.
		var outc chan output
		if carry == nil && !out.full() {
			outc = s.outc
		}
		select {
		case sendc <- item:
			if item.closeSend {
				closed = true
				s.log.Debug("half-closed the stream; waiting for the master to end it")
				waitTimer = time.NewTimer(s.w.cfg.StopTimeout)
				continue
			}
			out.take()
			if carry != nil {
				add(*carry)
				carry = nil
			}
		case o := <-outc:
			// Take what else is ready here, sparing the full select
			// above a round per output.
			for {
				if !out.fits(o) {
					carry = &o
					break
				}
				add(o)
				if out.full() {
					break
				}
				var more bool
				select {
				case o, more = <-s.outc:
				default:
				}
				if !more {
					break
				}
			}
		case resp := <-s.recvc:
			if resp.GetWelcome() != nil && !welcomed {
				welcomed = true
				s.log.Info("connected to the master", "address", s.w.address, "master", resp.GetWelcome().GetMaster())
			}
			for _, t := range resp.GetTasks() {
				if refusal := s.take(sctx, t, closed); refusal != nil {
					out.addDone(refusal)
				}
			}
			if resp.GetDrain() {
				stop(byDrain)
			}
		case err := <-s.recvd:
			return welcomed, s.ended(err, welcomed, why, closed)
		case <-sendFailed:
			// Sending failed: the stream is broken, and Recv reports why.
			sendFailed = nil
			if !errors.Is(s.sendErr, io.EOF) {
				s.log.Warn("cannot send to the master", "error", s.sendErr)
			}
		case <-done:
			done = nil
			stop(byContext)
			stopTimer = time.NewTimer(s.w.cfg.StopTimeout)
		case <-timerC(stopTimer):
			s.log.Warn("the stop timed out; abandoning the tasks still held",
				"timeout", s.w.cfg.StopTimeout, "holding", s.led.holding())
			return welcomed, nil
		case <-timerC(waitTimer):
			s.log.Warn("the master did not end the stream after the worker half-closed it", "timeout", s.w.cfg.StopTimeout)
			return welcomed, nil
		}
	}
}

// take handles one task from the master; it returns the done refusing it
// when the master sent it beyond the credit.
func (s *session) take(sctx context.Context, t *palmv1.Task, closed bool) *palmv1.TaskDone {
	id := t.GetId()
	if closed {
		s.log.Debug("task arrived after the worker half-closed; the master gives it to another worker", "task", id)
		return nil
	}
	switch s.led.take(id) {
	case accept:
		s.tasks.Add(1)
		go s.runTask(sctx, t)
	case overCredit:
		s.log.Warn("the master sent more tasks than the credit the worker granted; refusing the task", "task", id)
		return &palmv1.TaskDone{TaskId: id, Error: &palmv1.Error{
			Code:    uint32(codes.ResourceExhausted),
			Message: "the master sent this task beyond the credit the worker granted",
		}}
	case duplicate:
		s.log.Warn("the master sent a task the worker already holds; ignoring it", "task", id)
	}
	return nil
}

// ended logs how a stream ended and returns the error to report.
func (s *session) ended(err error, welcomed bool, why reason, closed bool) error {
	clean := errors.Is(err, io.EOF)
	switch {
	case closed && clean:
		s.log.Debug("the master ended the stream")
		return nil
	case why != "" && s.led.holding() == 0:
		s.log.Debug("the stream ended while stopping", "error", err)
		return nil
	case clean:
		err = status.Error(codes.Unavailable, "the master ended the stream")
	}
	if welcomed {
		s.log.Warn("disconnected from the master", "address", s.w.address, "error", err, "abandoned", s.led.holding())
	}
	return err
}
