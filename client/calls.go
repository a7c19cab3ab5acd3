package client

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/pack"
	"github.com/gopalm/palm/internal/route"
)

// This file is the Evals of a Client without a SubAddress: they share one
// palm.v1.GatewayService.Stream, each a call of its own on it
// (StreamRequest.calls), so that an Eval costs a message each way and no
// stream set-up (a unary call opens a stream per call: headers, a handler
// goroutine and trailers).
//
//   - The stream opens on the first Eval, in a goroutine of its own under
//     the Client's lifetime (not the Eval's context, which may end first);
//     Evals wait for it until their own context ends.
//   - An Eval takes one of Window places, numbers its message apart from
//     the calls open on the stream, queues it for the sender, and waits for
//     its completion, its context or the end of the stream.
//   - The sender is the only goroutine that calls Send and CloseSend: it
//     packs the queued messages, and the sequences of calls whose context
//     ended (StreamRequest.cancel, so that the server drops their work),
//     into requests of at most pack.MaxMessages messages and pack.MaxBytes.
//   - The receiver is the only one that calls Recv: it keeps each call's
//     first reply (and first error reply), and on its completion wakes its
//     Eval and frees its place. When the stream ends, every call whose
//     message was sent ends with the stream's error; one whose message had
//     not left yet goes on the next stream, and the next Eval opens it.
//   - A stream with no call open for callsIdle is half-closed, so that an
//     idle Client holds nothing on the server.

// callsIdle is how long the Evals' stream stays open with no call.
const callsIdle = 30 * time.Second

// calls is a Client's shared stream of Evals, reopened when it ends.
type calls struct {
	c     *Client
	life  context.Context // the Client's: ends with Close
	slots chan struct{}   // a token per call open, Window of them
	idle  time.Duration

	mu     sync.Mutex
	cur    *callStream // nil until opened, or after it ended
	closed bool
}

func newCalls(c *Client, life context.Context) *calls {
	return &calls{c: c, life: life, slots: make(chan struct{}, c.window), idle: callsIdle}
}

// callStream is one stream of Evals.
type callStream struct {
	cs     *calls
	opened chan struct{} // closed once stream is set or err explains why not
	stream palmv1.GatewayService_StreamClient
	cancel context.CancelFunc
	wake   chan struct{} // a token when there is something to send
	done   chan struct{} // closed when the stream has ended; err says why

	mu      sync.Mutex
	open    map[uint64]*call
	next    uint64
	out     []*palmv1.PalmMessage
	cancels []uint64
	closing bool // half-closed for idleness: takes no more calls
	err     error
	used    time.Time // when the last call completed
}

// call is one Eval on a callStream.
type call struct {
	reply, failure *palmv1.PalmMessage // the first reply, and the first carrying an error
	done           chan struct{}       // closed on completion
	sent           bool                // a Send with its message returned nil (under the stream's mu)
}

// result is what a completed call returns: its first reply (nil for
// none), or the status of its first error reply.
func (cl *call) result() (*palmv1.PalmMessage, error) {
	if cl.failure != nil {
		return nil, route.Status(cl.failure.GetError())
	}
	return cl.reply, nil
}

// maxUnsent is how many streams an Eval's message may see end before it
// left: a server restarting ends one (the next waits for it to be back); a
// server that ends every stream at once (one that is stopping) fails the
// Eval with its status.
const maxUnsent = 3

// errCallsClosed is what an Eval gets once its stream has half-closed for
// idleness, before it was queued: it opens another.
var errCallsClosed = errors.New("client: the stream of Evals closed")

// eval sends m as a call on the shared stream and waits for its
// completion, returning its first reply (nil for none).
func (cs *calls) eval(ctx context.Context, m *palmv1.PalmMessage) (*palmv1.PalmMessage, error) {
	select {
	case cs.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	var lastErr error // why the last stream ended before the message left
	for attempt := 0; ; attempt++ {
		if attempt == maxUnsent {
			<-cs.slots
			return nil, lastErr
		}
		s, err := cs.stream(ctx)
		if err != nil {
			<-cs.slots
			return nil, err
		}
		cl, seq, err := s.queue(ctx, m)
		if errors.Is(err, errCallsClosed) {
			attempt-- // closed for idleness: no fault of the server's
			continue
		}
		if err != nil {
			lastErr = err // ended before it was queued
			continue
		}
		retry := func(err error) {
			// The old stream's sender may still read m: the next one
			// gets a message of its own.
			lastErr = err
			m = &palmv1.PalmMessage{Pipeline: m.Pipeline, Client: m.Client, Stage: m.Stage, Function: m.Function, Cache: m.Cache, Payload: m.Payload}
		}
		select {
		case <-cl.done:
			return cl.result()
		case <-s.done:
			select {
			case <-cl.done: // completed just before the stream ended
				return cl.result()
			default:
			}
			s.mu.Lock()
			sent := cl.sent
			s.mu.Unlock()
			if !sent {
				// The stream ended before the message left: the
				// server never had it, and it goes on the next stream
				// (which waits, as a unary call would, for a server
				// that is coming back), keeping its place.
				retry(s.err)
				continue
			}
			return nil, s.err
		case <-ctx.Done():
			s.abandon(seq)
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
}

// stream returns the open stream of Evals, opening one when there is none.
func (cs *calls) stream(ctx context.Context) (*callStream, error) {
	cs.mu.Lock()
	if cs.closed {
		cs.mu.Unlock()
		return nil, status.Error(codes.Canceled, "client: the Client is closed")
	}
	s := cs.cur
	if s == nil {
		s = &callStream{
			cs:     cs,
			opened: make(chan struct{}),
			wake:   make(chan struct{}, 1),
			done:   make(chan struct{}),
			open:   map[uint64]*call{},
		}
		cs.cur = s
		go s.run()
	}
	cs.mu.Unlock()
	select {
	case <-s.opened:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if s.stream == nil {
		return nil, s.err
	}
	return s, nil
}

// close ends the stream of Evals for good: Client.Close.
func (cs *calls) close() {
	cs.mu.Lock()
	cs.closed = true
	cs.mu.Unlock()
}

// run opens the stream, then sends until it ends.
func (s *callStream) run() {
	ctx, cancel := context.WithCancel(s.cs.life)
	s.cancel = cancel
	stream, err := s.cs.c.gateway.Stream(ctx)
	if err != nil {
		s.end(err)
		close(s.opened)
		return
	}
	s.stream = stream
	close(s.opened)
	go s.receive()
	s.send(ctx)
}

// queue numbers m (the Eval's own, set here and sent as it is) apart from
// the calls open and hands it to the sender.
func (s *callStream) queue(ctx context.Context, m *palmv1.PalmMessage) (*call, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, 0, s.err
	}
	if s.closing {
		return nil, 0, errCallsClosed
	}
	s.next++
	m.Sequence = s.next
	if d, ok := ctx.Deadline(); ok {
		// The deadline travels with the message, so that the server
		// drops it when the time is up.
		m.TimeoutMs = uint64(max(1, time.Until(d).Milliseconds()))
	}
	cl := &call{done: make(chan struct{})}
	s.open[m.Sequence] = cl
	s.out = append(s.out, m)
	signal(s.wake)
	return cl, m.Sequence, nil
}

// abandon asks the server to drop the open call seq; its place is freed
// when the server completes it.
func (s *callStream) abandon(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[seq] == nil || s.err != nil {
		return
	}
	s.cancels = append(s.cancels, seq)
	signal(s.wake)
}

// send is the only caller of Send and CloseSend.
func (s *callStream) send(ctx context.Context) {
	timer := time.NewTimer(s.cs.idle)
	defer timer.Stop()
	var msgs []*palmv1.PalmMessage
	var cancels []uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.done:
			return
		case <-timer.C:
			s.mu.Lock()
			idle := len(s.open) == 0 && len(s.out) == 0 && time.Since(s.used) >= s.cs.idle
			if idle {
				s.closing = true
				s.cs.forget(s) // s.mu, then cs.mu: nowhere the other way round
			}
			s.mu.Unlock()
			if idle {
				_ = s.stream.CloseSend() // the receiver sees the server end the stream
				return
			}
			timer.Reset(s.cs.idle)
			continue
		case <-s.wake:
		}
		s.mu.Lock()
		msgs = append(msgs[:0], s.out...)
		clear(s.out)
		s.out = s.out[:0]
		cancels, s.cancels = append(cancels[:0], s.cancels...), s.cancels[:0]
		s.mu.Unlock()
		rest, ask := msgs, cancels
		for len(rest) > 0 || len(ask) > 0 {
			req := &palmv1.StreamRequest{Calls: true, Cancel: ask}
			ask = nil
			n, total := 0, 0
			for n < len(rest) {
				size := len(rest[n].Payload) + len(rest[n].Function) + len(rest[n].Pipeline) + len(rest[n].Client) + messageOverhead
				if !pack.Fits(n, total, size, pack.MaxMessages, min(pack.MaxBytes, s.cs.c.max)) {
					break
				}
				n++
				total += size
			}
			req.Messages, rest = rest[:n], rest[n:]
			// Marked before the Send, so that a stream that ends while it
			// is on its way never has the message sent again (at most
			// once); unmarked when Send says it did not leave.
			s.mark(req.Messages, true)
			if err := s.stream.Send(req); err != nil {
				s.mark(req.Messages, false)
				return // the receiver hears why
			}
		}
		clear(msgs) // sent: the payloads are the callers' again
	}
}

// mark records whether the calls of msgs may have left.
func (s *callStream) mark(msgs []*palmv1.PalmMessage, sent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range msgs {
		if cl := s.open[m.GetSequence()]; cl != nil {
			cl.sent = sent
		}
	}
}

// receive is the only caller of Recv.
func (s *callStream) receive() {
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = status.Error(codes.Unavailable, "client: the server ended the stream of Evals")
			}
			s.end(err)
			return
		}
		s.mu.Lock()
		for _, m := range resp.GetMessages() {
			cl := s.open[m.GetSequence()]
			if cl == nil {
				continue // a call given up on
			}
			if cl.reply == nil {
				cl.reply = m
			}
			if m.GetError() != nil && cl.failure == nil {
				cl.failure = m
			}
		}
		for _, seq := range resp.GetCompleted() {
			if cl := s.open[seq]; cl != nil {
				delete(s.open, seq)
				close(cl.done)
				<-s.cs.slots
			}
		}
		if len(s.open) == 0 {
			s.used = time.Now()
		}
		s.mu.Unlock()
	}
}

// end ends the stream with err: the calls open end with it, their places
// are freed, and the next Eval opens another stream.
func (s *callStream) end(err error) {
	s.cs.forget(s)
	s.mu.Lock()
	if s.err == nil {
		s.err = err
		for seq, cl := range s.open {
			delete(s.open, seq)
			if cl.sent {
				<-s.cs.slots // the others keep theirs, to be sent again
			}
		}
		s.out = nil
		close(s.done)
	}
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
}

// forget makes the next Eval open a new stream, if s was the current one.
func (cs *calls) forget(s *callStream) {
	cs.mu.Lock()
	if cs.cur == s {
		cs.cur = nil
	}
	cs.mu.Unlock()
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
