package client

import (
	"context"
	"errors"
	"io"
	"iter"
	"runtime/debug"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/pack"
)

// This file is the client side of palm.v1.GatewayService.Stream: one Job is
// one stream, worked by three goroutines of its own and the caller's:
//
//   - the puller ranges over the caller's payloads and hands each to the
//     sender through a channel of pullQueue places; when it is full the
//     puller waits, so payloads are taken no faster than they are sent.
//   - the sender is the only goroutine that calls Send and CloseSend. It
//     numbers the messages 1, 2, 3..., refuses oversize payloads locally,
//     packs what is ready into one StreamRequest (never waiting to fill a
//     batch), and waits while the window of unfinished messages is full.
//     With a SubAddress, once every payload is sent it waits to half-close
//     until no result is awaited, so the first server can still report a
//     message lost between components on the stream.
//   - the receiver is the only goroutine that calls Recv. It frees window
//     places for the sequences the server completes and hands replies to
//     the caller through a channel of recvQueue places; when it is full the
//     receiver waits, and gRPC flow control slows the server down.
//   - the caller's goroutine, running the range loop, yields replies and
//     local refusals (through a channel of refusedQueue places; when it is
//     full the sender waits), counts them against Messages, and when the
//     loop ends cancels the stream and waits for the three goroutines.
//
// With a SubAddress, the replies come from the Client's shared subscription
// (subscribe.go): its reader queues them for the job's waiter, the caller's
// goroutine takes them from there, and the sender also waits while the
// waiter holds a Window of them, or an eighth of its bound, not yet taken.
//
// Every wait also watches the job's context. Recv runs in a goroutine of its
// own, rather than in the caller's, so that a payload refused locally can
// be reported while no reply is on its way.

const (
	// messageOverhead estimates the bytes a PalmMessage adds to its fields.
	messageOverhead = 32

	pullQueue    = 64
	recvQueue    = 4
	refusedQueue = 16
)

// errPayloadsPanicked is the cause a job is cancelled with when the
// payloads iterator panics; the panic is raised again in the caller.
var errPayloadsPanicked = errors.New("client: the payloads iterator panicked")

// JobOption changes how one Job runs. It is a type of its own, rather than
// an Option, because it belongs to one call and not to the Client: giving a
// JobOption to New, or an Option to Job, does not compile.
type JobOption func(*jobSettings)

type jobSettings struct {
	messages int
	cache    string
}

// Messages ends a Job after n results, like the original client's messages
// argument: replies and per-message errors both count. n must not be
// negative. Default: 0, no limit; the Job then ends when the server has
// completed every message sent.
func Messages(n int) JobOption {
	return func(s *jobSettings) { s.messages = n }
}

// Cache sets the `cache` field of every message of a Job: free-form UTF-8
// text that servers carry along unchanged. Default: empty.
func Cache(text string) JobOption {
	return func(s *jobSettings) { s.cache = text }
}

// Job sends one message per payload to function and yields the results as
// they come back, like the original client's job. function has the form
// described at Eval and is validated the same way.
//
// Each range over the returned sequence runs the job: it opens a stream to
// the server, numbers the messages 1, 2, 3... in the order payloads yields
// them, and keeps at most Window of them unfinished at a time. It yields
// (payload, nil) for each reply, in the order the replies arrive, and
// (nil, err) for a message that failed, with err a *MessageError naming the
// message; the job goes on after such an error. A payload over the message
// size limit is not sent and yields a *MessageError with ResourceExhausted.
//
// The job ends, and the loop with it, after the number of results set by
// Messages; or when the server has completed every message once payloads is
// exhausted; or on an error of the stream as a whole (the server went away,
// ctx ended, an invalid function), which is yielded once as a gRPC status
// error that is not a *MessageError. Breaking out of the loop ends the job
// too. A message that produced no reply yields nothing.
//
// With SubAddress, the replies come from the Client's subscription there
// (errors of the first step still come from the server). While a Window of
// them (at most 1024, or 8 MiB) waits for the loop to take them, the job
// sends no more; once 8192 of them, or 64 MiB (four times the message size
// limit, if more), wait, it ends with ResourceExhausted, so that the
// Client's other calls go on. The job
// ends, once every message has left the first server, when each message
// sent has had a result, or after Messages results. A pipeline that sends
// nothing on for some messages, or several replies for one (a tee joined by
// a sink), needs Messages, or a deadline on ctx. A message the first
// server published on and that was lost between components (no stage
// subscribed, or the subscription it was on broke) yields a *MessageError
// with DataLoss naming the topic; the first answer of a message wins when
// one of its answers is such a report (a message reported as possibly lost
// may still arrive).
//
// payloads is called from a goroutine of the Job; the slices it yields must
// not be changed afterwards while the job runs. When the job ends early,
// the next yield returns false; the range loop returns only once payloads
// has returned, so a payloads iterator that waits for its values should also
// stop when ctx ends. A panic in payloads is raised again in the caller's
// goroutine. Several Jobs may run at once on one Client.
func (c *Client) Job(ctx context.Context, function string, payloads iter.Seq[[]byte], opts ...JobOption) iter.Seq2[[]byte, error] {
	var s jobSettings
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	return func(yield func([]byte, error) bool) {
		first, err := c.checkFunction(function)
		switch {
		case err != nil:
		case s.messages < 0:
			err = status.Errorf(codes.InvalidArgument, "Messages(%d): the count must not be negative", s.messages)
		case !utf8.ValidString(s.cache):
			err = status.Error(codes.InvalidArgument, "the Cache text is not valid UTF-8")
		case payloads == nil:
			err = status.Error(codes.InvalidArgument, "the payloads sequence is nil")
		}
		if err != nil {
			yield(nil, err)
			return
		}
		j := &job{
			c:         c,
			function:  function,
			first:     first,
			cache:     s.cache,
			pipeline:  newID(),
			limit:     s.messages,
			budget:    min(pack.MaxBytes, c.max),
			inflight:  newInflight(),
			room:      make(chan struct{}, 1),
			payloads:  make(chan []byte, pullQueue),
			refused:   make(chan *MessageError, refusedQueue),
			responses: make(chan *palmv1.StreamResponse, recvQueue),
			sendDone:  make(chan struct{}),
			recvDone:  make(chan struct{}),
		}
		j.run(ctx, payloads, yield)
	}
}

// Repeat returns a sequence that yields payload n times, or forever when n
// is negative, like Python's itertools.repeat. Every value is the same
// slice. It is handy for examples and tests of Job.
func Repeat(payload []byte, n int) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for i := 0; n < 0 || i < n; i++ {
			if !yield(payload) {
				return
			}
		}
	}
}

// job is one run of a Job.
type job struct {
	c        *Client
	function string
	first    string // the first step, named in local refusals
	cache    string
	pipeline string
	limit    int // results before the job ends; 0 for no limit
	budget   int // bytes per StreamRequest

	mu       sync.Mutex
	inflight inflight
	room     chan struct{} // a place in the window may have opened

	payloads  chan []byte                 // puller → sender
	refused   chan *MessageError          // sender → caller
	responses chan *palmv1.StreamResponse // receiver → caller

	sendDone chan struct{}
	sent     uint64 // messages numbered; read after sendDone
	sentAll  bool   // every payload was sent or refused, then CloseSend; read after sendDone

	recvDone chan struct{}
	recvErr  error // read after recvDone

	// With a SubAddress: the job's share of the Client's subscription, the
	// messages sent that have had no result yet and those whose result was
	// a report of their loss (under mu); allSent is closed when every
	// payload was sent or refused, settled when then no result is awaited.
	w       *waiter
	pending map[uint64]struct{}
	lost    map[uint64]struct{}
	allSent chan struct{}
	settled chan struct{}
	settle  sync.Once

	results    int    // results yielded, in the caller's goroutine
	panicValue any    // read after the puller ended
	panicStack []byte // read after the puller ended
}

// run works the job in the caller's goroutine until it ends, and returns
// once every goroutine of the job has.
func (j *job) run(parent context.Context, payloads iter.Seq[[]byte], yield func([]byte, error) bool) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	if j.c.subs != nil {
		w, err := j.c.subs.join(ctx, j.pipeline)
		if err != nil {
			yield(nil, err)
			return
		}
		defer j.c.subs.leave(w)
		j.w, j.pending, j.lost = w, map[uint64]struct{}{}, map[uint64]struct{}{}
		j.allSent, j.settled = make(chan struct{}), make(chan struct{})
	}
	stream, err := j.c.gateway.Stream(ctx)
	if err != nil {
		yield(nil, err)
		return
	}
	sendCtx, stopSend := context.WithCancel(ctx)
	defer stopSend()

	var wg sync.WaitGroup
	defer func() {
		cancel(nil)
		wg.Wait()
		j.c.log.Debug("job ended", "pipeline", j.pipeline, "sent", j.sent, "results", j.results)
		if j.panicValue != nil {
			j.c.log.Error("payloads iterator panicked", "pipeline", j.pipeline, "panic", j.panicValue, "stack", string(j.panicStack))
			panic(j.panicValue)
		}
	}()
	wg.Go(func() { j.pull(sendCtx, payloads, cancel) })
	wg.Go(func() { j.send(sendCtx, stream) })
	wg.Go(func() { j.receive(ctx, stream, stopSend) })
	j.consume(ctx, yield)
}

// pull hands the payloads to the sender, then closes j.payloads. It returns
// without closing it when ctx ends, and cancels the job when payloads
// panics.
func (j *job) pull(ctx context.Context, payloads iter.Seq[[]byte], fail context.CancelCauseFunc) {
	defer func() {
		if r := recover(); r != nil {
			j.panicValue, j.panicStack = r, debug.Stack()
			fail(errPayloadsPanicked)
		}
	}()
	for p := range payloads {
		select {
		case j.payloads <- p:
		case <-ctx.Done():
			return
		}
	}
	close(j.payloads)
}

// send is the only caller of Send and CloseSend on the job's stream.
func (j *job) send(ctx context.Context, stream palmv1.GatewayService_StreamClient) {
	var seq uint64
	defer func() {
		j.sent = seq
		close(j.sendDone)
	}()
	var (
		carry *palmv1.PalmMessage // numbered, not yet in a batch
		ended bool                // every payload has been taken
	)
	for {
		var batch []*palmv1.PalmMessage
		total := 0
		deadline, hasDeadline := ctx.Deadline()
	fill:
		for carry != nil || !ended {
			if carry == nil {
				var (
					p  []byte
					ok bool
				)
				if len(batch) == 0 {
					select {
					case p, ok = <-j.payloads:
					case <-ctx.Done():
						return
					}
				} else {
					select {
					case p, ok = <-j.payloads:
					case <-ctx.Done():
						return
					default:
						break fill // nothing more is ready: send what we have
					}
				}
				if !ok {
					ended = true
					break fill
				}
				seq++
				if len(p) > j.c.max {
					select {
					case j.refused <- &MessageError{Sequence: seq, Function: j.first, Err: j.c.payloadTooLarge(len(p))}:
					case <-ctx.Done():
						return
					}
					continue
				}
				carry = &palmv1.PalmMessage{
					Pipeline: j.pipeline,
					Client:   j.c.id,
					Function: j.function,
					Cache:    j.cache,
					Payload:  p,
					Sequence: seq,
				}
				if hasDeadline {
					// The job's deadline travels with each message, so
					// that servers drop what it no longer wants.
					carry.TimeoutMs = uint64(max(1, time.Until(deadline).Milliseconds()))
				}
			}
			size := len(carry.Payload) + len(carry.Function) + len(carry.Cache) +
				len(carry.Pipeline) + len(carry.Client) + messageOverhead
			if !pack.Fits(len(batch), total, size, maxJobBatch, j.budget) || (len(batch) > 0 && j.full()) {
				break
			}
			if len(batch) == 0 && !j.waitForRoom(ctx) {
				return
			}
			j.open(carry.Sequence)
			batch = append(batch, carry)
			total += size
			carry = nil
		}
		if len(batch) > 0 {
			if err := stream.Send(&palmv1.StreamRequest{Messages: batch}); err != nil {
				return // the stream is over; the receiver reports why
			}
		}
		if ended && carry == nil {
			j.sentAll = true
			if j.w != nil {
				// Keep the stream open while results are awaited from the
				// SubAddress: the first server reports through it a
				// message lost further on.
				close(j.allSent)
				select {
				case <-j.settled:
				case <-ctx.Done():
					return
				}
			}
			_ = stream.CloseSend()
			return
		}
	}
}

// receive is the only caller of Recv on the job's stream. It stops the
// sender when the stream ends.
func (j *job) receive(ctx context.Context, stream palmv1.GatewayService_StreamClient, stopSend context.CancelFunc) {
	defer close(j.recvDone)
	defer stopSend()
	for {
		resp, err := stream.Recv()
		if err != nil {
			j.recvErr = err
			return
		}
		j.release(resp.GetCompleted())
		if len(resp.GetMessages()) == 0 {
			continue
		}
		select {
		case j.responses <- resp:
		case <-ctx.Done():
			j.recvErr = status.FromContextError(ctx.Err()).Err()
			return
		}
	}
}

// consume yields the job's results in the caller's goroutine until the job
// ends or the caller stops.
func (j *job) consume(ctx context.Context, yield func([]byte, error) bool) {
	// result yields one result and reports whether the job goes on.
	result := func(p []byte, err error) bool {
		j.results++
		return yield(p, err) && (j.limit == 0 || j.results < j.limit)
	}
	replies := func(msgs []*palmv1.PalmMessage) bool {
		for _, m := range msgs {
			if !j.answered(m) {
				continue
			}
			var more bool
			if e := m.GetError(); e != nil {
				more = result(nil, replyError(m.GetSequence(), j.function, e))
			} else {
				more = result(m.GetPayload(), nil)
			}
			if !more {
				return false
			}
		}
		return true
	}
	var (
		recvDone = j.recvDone
		sendDone <-chan struct{} // watched once the stream has ended
		subReady <-chan struct{} // nil without a SubAddress
		allSent  = j.allSent     // nil without a SubAddress
		over     bool            // every message has left the first server
	)
	if j.w != nil {
		subReady = j.w.signal
	}
	// done reports, after replies, whether the job is over: the last reply
	// awaited from the SubAddress came. Once every payload was sent, it
	// lets the sender half-close when no result is awaited.
	done := func() bool {
		if over && !j.waiting() {
			return true
		}
		if allSent == nil && j.w != nil && !j.waiting() {
			j.settle.Do(func() { close(j.settled) })
		}
		return false
	}
	for {
		select {
		case resp := <-j.responses:
			if !replies(resp.GetMessages()) || done() {
				return
			}
		case <-subReady:
			msgs, err := j.w.take()
			j.wake() // the sender may wait for the queue to be taken
			if !replies(msgs) {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if done() {
				return
			}
		case <-allSent:
			allSent = nil
			if !j.waiting() {
				j.settle.Do(func() { close(j.settled) })
			}
		case e := <-j.refused:
			if !result(nil, e) {
				return
			}
		case <-recvDone:
			recvDone = nil
			for len(j.responses) > 0 && j.w == nil { // the receiver has stopped: these are the last
				if !replies((<-j.responses).GetMessages()) {
					return
				}
			}
			if j.recvErr != io.EOF {
				if context.Cause(ctx) != errPayloadsPanicked {
					yield(nil, j.recvErr)
				}
				return
			}
			// The server ended the call OK, which it does once the sender
			// has half-closed: report the refusals made before that.
			sendDone = j.sendDone
		case <-sendDone:
			for len(j.refused) > 0 {
				if !result(nil, <-j.refused) {
					return
				}
			}
			if !j.sentAll {
				yield(nil, status.Error(codes.Internal, "the server ended the job's stream before the client had sent every message"))
				return
			}
			if !j.waiting() {
				return
			}
			// Every message has left the first server; the rest of the
			// replies come from the SubAddress.
			over, sendDone = true, nil
		}
	}
}

// waiting reports whether a reply is still awaited from the SubAddress: a
// message was sent that has had no result yet.
func (j *job) waiting() bool {
	if j.w == nil {
		return false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.pending) > 0
}

// answered records that the message m answers had a result, and reports
// whether m is to be yielded. With a SubAddress, a message's first answer
// wins when one of them reports its loss (DataLoss: a message reported as
// possibly lost may still arrive): a loss report after its result, and a
// result after its loss report, are dropped.
func (j *job) answered(m *palmv1.PalmMessage) bool {
	if j.w == nil {
		return true
	}
	seq := m.GetSequence()
	j.mu.Lock()
	defer j.mu.Unlock()
	_, awaited := j.pending[seq]
	delete(j.pending, seq)
	if _, reported := j.lost[seq]; reported {
		return false
	}
	if m.GetError() != nil && codes.Code(m.GetError().GetCode()) == codes.DataLoss {
		if !awaited {
			return false
		}
		j.lost[seq] = struct{}{}
	}
	return true
}

// full reports whether the window is full, or, with a SubAddress, the
// replies waiting for the caller to take them are enough for now.
func (j *job) full() bool {
	j.mu.Lock()
	n := j.inflight.len()
	j.mu.Unlock()
	return n >= j.c.window || (j.w != nil && j.w.held(j.c.window))
}

// open records a message as sent and unfinished.
func (j *job) open(seq uint64) {
	j.mu.Lock()
	j.inflight.add(seq)
	if j.pending != nil {
		j.pending[seq] = struct{}{}
	}
	j.mu.Unlock()
}

// release records completions and wakes the sender when places opened.
func (j *job) release(seqs []uint64) {
	if len(seqs) == 0 {
		return
	}
	j.mu.Lock()
	n := j.inflight.complete(seqs)
	j.mu.Unlock()
	if n > 0 {
		j.wake()
	}
}

// wake tells the sender that a place may have opened.
func (j *job) wake() {
	select {
	case j.room <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// waitForRoom waits until the window has a free place, and reports false
// when ctx ended first.
func (j *job) waitForRoom(ctx context.Context) bool {
	for j.full() {
		select {
		case <-j.room:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// maxJobBatch is the most messages of a Job packed in one request: fewer
// than pack.MaxMessages, so that a window holds several requests and the
// server works on one while the next is on its way.
const maxJobBatch = 64
