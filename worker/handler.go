package worker

import (
	"context"
	"fmt"
	"iter"
	"runtime/debug"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/route"
)

// MuxHandler is a function that produces any number of results for one
// task, the original's MuxWorker (whose function was a generator).
//
// HandleMux is called with the task's message and returns a sequence of
// (payload, error) pairs, which the worker ranges over: each non-nil
// payload is sent to the master as one result of the task, as soon as it
// is yielded (a nil payload is skipped, as palm.Handler's nil means "no
// reply"); the first non-nil error ends the task, after the results already
// yielded, with that error (its gRPC code, or Unknown); the end of the
// sequence ends the task successfully, with as many results as were
// yielded, possibly none. A panic, in HandleMux or in the sequence, is
// logged with its stack and ends the task with Internal.
//
// The worker sends results while the sequence runs, through a bounded
// queue: a sequence that yields faster than the stream carries results
// waits in yield. When the task's stream breaks, ctx is cancelled and yield
// returns false; the sequence must then stop.
//
// msg must not be modified, nor kept after the sequence ends. HandleMux may
// be called from several goroutines at once.
type MuxHandler interface {
	HandleMux(ctx context.Context, msg *palmv1.PalmMessage) iter.Seq2[[]byte, error]
}

// MuxHandlerFunc adapts a function of the payload alone to a MuxHandler.
type MuxHandlerFunc func(ctx context.Context, payload []byte) iter.Seq2[[]byte, error]

// HandleMux calls f with the message's payload.
func (f MuxHandlerFunc) HandleMux(ctx context.Context, msg *palmv1.PalmMessage) iter.Seq2[[]byte, error] {
	return f(ctx, msg.GetPayload())
}

// runTask runs one task, which arrived at arrived, and emits its results
// and its done. ctx is the session's: cancelled when the stream breaks.
func (s *session) runTask(ctx context.Context, t *palmv1.Task, arrived time.Time) {
	id, msg := t.GetId(), t.GetMessage()
	start := time.Now()
	var (
		step    route.Step
		err     error
		results int
		last    *palmv1.TaskResult // a plain handler's result, sent with the done
		done    *palmv1.TaskDone
	)
	if msg == nil {
		err = status.Errorf(codes.InvalidArgument, "task %d carries no message", id)
	} else {
		step, err = route.Current(msg)
	}
	if s.log.IsTrace() { // spare the hot path the arguments' allocations
		s.log.Trace("task started", "task", id, "function", msg.GetFunction(), "stage", msg.GetStage())
	}
	if err == nil {
		// The function's context ends when the task's time is up (what
		// remains of the client's deadline, or the master's task timeout).
		// The time the task waited in the worker's queue counts.
		fctx, expired := ctx, false
		if ms := t.GetTimeoutMs(); ms > 0 {
			left := time.Duration(min(ms, 1<<40))*time.Millisecond - start.Sub(arrived)
			if expired = left <= 0; !expired {
				var cancel context.CancelFunc
				fctx, cancel = context.WithTimeout(ctx, left)
				defer cancel()
			}
		}
		e, ok := s.w.lookup(step.Function)
		switch {
		case expired:
			err = status.Errorf(codes.DeadlineExceeded, "the task's deadline passed while it waited in worker %q's queue", s.w.name)
		case !ok:
			err = status.Errorf(codes.NotFound, "worker %q has no function %q", s.w.name, step.Function)
		case e.mux != nil:
			results, err = s.callMux(fctx, e.mux, id, msg, step)
		default:
			last, done, err = s.callOne(fctx, e.one, id, msg, step)
			if last != nil {
				results = 1
			}
		}
	}
	if done == nil {
		done = &palmv1.TaskDone{TaskId: id}
	}
	if err != nil {
		done.Error = route.ErrorOf(err, step)
	}
	end := time.Now()
	if s.emit(output{result: last, size: resultSize(last), done: done, end: end, took: end.Sub(start)}) && s.log.IsDebug() {
		s.log.Debug("task done", "task", id, "function", step.String(), "results", results,
			"error", done.GetError().GetMessage(), "took", end.Sub(start))
	}
}

// callOne calls a palm.Handler, turning a panic into Internal.
func (s *session) callOne(ctx context.Context, h palm.Handler, id uint64, msg *palmv1.PalmMessage, step route.Step) (res *palmv1.TaskResult, done *palmv1.TaskDone, err error) {
	defer s.recoverPanic(step, id, &err)
	payload, err := h.Handle(ctx, msg)
	if err != nil {
		s.log.Error("user function gave an error", "function", step.String(), "task", id, "error", fmt.Sprintf("%+v", err))
		return nil, nil, err
	}
	if payload == nil {
		return nil, nil, nil
	}
	if err := s.checkSize(payload); err != nil {
		return nil, nil, err
	}
	// The result, its message and the task's done in one allocation.
	r := &struct {
		res  palmv1.TaskResult
		msg  palmv1.PalmMessage
		done palmv1.TaskDone
	}{}
	r.msg.Payload = payload
	r.res.TaskId, r.res.Message = id, &r.msg
	r.done.TaskId = id
	return &r.res, &r.done, nil
}

// callMux ranges over a MuxHandler's results, emitting each, and turns a
// panic into Internal.
func (s *session) callMux(ctx context.Context, h MuxHandler, id uint64, msg *palmv1.PalmMessage, step route.Step) (n int, err error) {
	defer s.recoverPanic(step, id, &err)
	for payload, ferr := range h.HandleMux(ctx, msg) {
		if ferr != nil {
			s.log.Error("user function gave an error", "function", step.String(), "task", id, "error", fmt.Sprintf("%+v", ferr))
			return n, ferr
		}
		if payload == nil {
			continue
		}
		if err := s.checkSize(payload); err != nil {
			return n, err
		}
		r := &palmv1.TaskResult{TaskId: id, Message: &palmv1.PalmMessage{Payload: payload}}
		if !s.emit(output{result: r, size: resultSize(r)}) {
			return n, context.Cause(ctx) // the stream is gone; nothing more is sent
		}
		n++
	}
	return n, nil
}

func (s *session) recoverPanic(step route.Step, id uint64, err *error) {
	if r := recover(); r != nil {
		s.log.Error("user function panicked", "function", step.String(), "task", id, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*err = status.Errorf(codes.Internal, "function panicked: %v", r)
	}
}

// checkSize refuses a result payload over the message size limit, which
// would otherwise break the stream when sent.
func (s *session) checkSize(payload []byte) error {
	if max := s.w.cfg.MaxMessageSize; len(payload) > max {
		return status.Errorf(codes.ResourceExhausted,
			"the function's result is %d bytes; the limit is %d bytes (palm.WithMaxMessageSize)", len(payload), max)
	}
	return nil
}

// resultSize bounds the encoded size of a result that carries only a
// payload (as every result of this package does) without encoding it: the
// task id and the field headers take at most 24 bytes besides the payload.
func resultSize(r *palmv1.TaskResult) int {
	if r == nil {
		return 0
	}
	return len(r.GetMessage().GetPayload()) + 24
}
