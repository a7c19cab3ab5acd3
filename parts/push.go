package parts

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/backoff"
	"github.com/gopalm/palm/internal/pack"
	"github.com/gopalm/palm/internal/route"
)

// PushConfig configures a Push.
type PushConfig struct {
	// Address is where the component the messages go to serves its
	// GatewayService. Required.
	Address string
	// Window is the most messages sent and not yet completed there; 0
	// means DefaultWindow.
	Window int
	// WindowBytes is the most payload bytes sent and not yet completed
	// there; 0 means DefaultWindowBytes. A message larger than it goes
	// alone.
	WindowBytes int
	// Dial are the options to dial Address with; nil means the
	// component's (its TLS, token and limits).
	Dial []grpc.DialOption
	// BackoffMin and BackoffMax bound the delay before the stream is
	// opened again after it broke; 0 means DefaultBackoffMin and
	// DefaultBackoffMax.
	BackoffMin, BackoffMax time.Duration
	// Logger; nil means the component's.
	Logger hclog.Logger
}

// Push is an outbound part that forwards the messages it takes into
// another component's gateway, over one GatewayService stream (the
// original's PushConnection): a component that passes its messages on to
// a server, a master or a gateway elsewhere.
//
// Push finishes the messages it takes, as Functions does: a message is
// complete at its origin once the component it was pushed to has completed
// it. Each message goes on with its stage moved one on, so its next step must
// name the component at Address; the step this component was asked for is
// the forwarding. What comes back for a message (its replies, then its
// completion) goes to the part's route, or, with no route, straight back
// to the message's origin. At most Window messages and WindowBytes of
// payload are out at once; past that the part stops taking messages from
// its inbox, which slows the parts before it.
//
// When the stream breaks, every message out on it is answered with an
// Unavailable error (it may or may not have been handled there), and the
// stream is opened again after a backoff; while it cannot be opened, the
// messages taken are answered Unavailable at once rather than left to
// wait. Origins must be comparable (palm's are pointers).
type Push struct {
	cfg    PushConfig
	logger hclog.Logger

	mu        sync.Mutex
	next      uint64
	out       map[uint64]*pushed
	flights   map[flightKey]*flight
	held      int
	heldBytes int
	freed     chan struct{} // a place in the window was freed
}

type flightKey struct {
	origin Origin
	seq    uint64
}

// flight is what is out for one message of an origin: the forwarded
// messages not yet completed, and whether its last envelope came.
type flight struct {
	n    int
	done bool
}

type pushed struct {
	key   flightKey
	msg   *palmv1.PalmMessage // as forwarded, for the error if it is lost
	step  Step
	bytes int
}

// NewPush returns a Push to the gateway at cfg.Address.
func NewPush(cfg PushConfig) (*Push, error) {
	if cfg.Address == "" {
		return nil, errors.New("parts: a Push needs the Address of the gateway it sends to")
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.WindowBytes <= 0 {
		cfg.WindowBytes = DefaultWindowBytes
	}
	cfg.BackoffMin, cfg.BackoffMax = backoffBounds(cfg.BackoffMin, cfg.BackoffMax)
	return &Push{cfg: cfg, logger: orQuiet(cfg.Logger), out: map[uint64]*pushed{}, flights: map[flightKey]*flight{}, freed: make(chan struct{}, 1)}, nil
}

// Prepare takes the component's dial options and logger where p has none.
func (p *Push) Prepare(env Env) error {
	if p.cfg.Dial == nil {
		p.cfg.Dial = env.Dial
	}
	p.logger = loggerOr(p.logger, env).With("to", p.cfg.Address)
	return nil
}

// Describe notes where the part sends to.
func (p *Push) Describe(d *Description) {
	d.Note("address", p.cfg.Address)
	d.Note("window", fmt.Sprint(p.cfg.Window))
}

// Held is the number of messages sent and not yet completed.
func (p *Push) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held
}

// Run forwards messages until ctx ends.
func (p *Push) Run(ctx context.Context, link *Link) error {
	conn, err := grpc.NewClient(p.cfg.Address, p.cfg.Dial...)
	if err != nil {
		return fmt.Errorf("push to %s: %w", p.cfg.Address, err)
	}
	defer conn.Close()
	gw := palmv1.NewGatewayServiceClient(conn)
	b := backoff.New(p.cfg.BackoffMin, p.cfg.BackoffMax)
	for ctx.Err() == nil {
		began := time.Now()
		err := p.session(ctx, link, gw)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(began) > p.cfg.BackoffMax {
			b.Reset() // it had been open a while: start again from the minimum
		}
		wait := b.Fail()
		p.logger.Warn("the stream to the gateway broke; messages are answered Unavailable until it is open again", "error", err, "retry_in", wait)
		p.refuseFor(ctx, link, wait, err)
	}
	return nil
}

// session opens a stream and forwards on it until it breaks or ctx ends;
// what was out on it is then answered with an error.
func (p *Push) session(ctx context.Context, link *Link, gw palmv1.GatewayServiceClient) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := gw.Stream(sctx)
	if err != nil {
		return err
	}
	var rerr error
	received := make(chan struct{})
	go func() { defer close(received); rerr = p.receive(sctx, link, stream) }()
	err = p.send(sctx, link, stream, received)
	cancel()
	<-received
	if err == nil || errors.Is(err, errReceiveEnded) {
		err = rerr
	}
	p.lose(ctx, link, err)
	return err
}

// send takes envelopes from the inbox while the window has room and sends
// them on stream, packing what is ready into one request.
func (p *Push) send(ctx context.Context, link *Link, stream palmv1.GatewayService_StreamClient, received <-chan struct{}) error {
	for {
		if err := p.room(ctx, received); err != nil {
			return err
		}
		var e Envelope
		select {
		case e = <-link.Inbox():
		case <-received:
			return errReceiveEnded
		case <-ctx.Done():
			return ctx.Err()
		}
		batch, size := p.take(ctx, link, e, nil, 0)
		more := func() bool { return len(batch) < pack.MaxMessages && size < pack.MaxBytes && p.hasRoom() }
		if more() {
			pack.Take(link.Inbox(), math.MaxInt, func(e Envelope) bool {
				batch, size = p.take(ctx, link, e, batch, size)
				return more()
			})
		}
		if len(batch) == 0 {
			continue
		}
		if err := stream.Send(&palmv1.StreamRequest{Messages: batch}); err != nil {
			return err
		}
	}
}

// errReceiveEnded stops the sender when the receiver has ended: the
// receiver's error is the stream's.
var errReceiveEnded = errors.New("the stream's receiver ended")

// take registers e and adds what it forwards to batch; a completion, a
// message whose origin has gone and one with no next step are answered
// here.
func (p *Push) take(ctx context.Context, link *Link, e Envelope, batch []*palmv1.PalmMessage, size int) ([]*palmv1.PalmMessage, int) {
	key := flightKey{e.Origin, e.Sequence}
	gone := e.Origin != nil && e.Origin.Context().Err() != nil
	if e.Msg == nil || gone {
		if e.Done || gone {
			p.finish(ctx, link, key)
		}
		return batch, size
	}
	// One copy, forwarded with its stage moved on: its current step is
	// the one it goes to.
	m := proto.Clone(e.Msg).(*palmv1.PalmMessage)
	m.Stage++
	step, err := route.Current(m)
	if err != nil {
		err = status.Errorf(codes.InvalidArgument, "this component forwards each message to its next step, but %q has none after stage %d; add a step naming the component it is pushed to", e.Msg.GetFunction(), e.Msg.GetStage())
		p.emit(ctx, link, Envelope{Msg: failed(e.Msg, err, e.Step), Origin: e.Origin, Sequence: e.Sequence})
		p.finish(ctx, link, key)
		return batch, size
	}
	if !e.Deadline.IsZero() {
		m.TimeoutMs = uint64(max(1, time.Until(e.Deadline).Milliseconds()))
	}
	p.mu.Lock()
	p.next++
	m.Sequence = p.next
	f := p.flights[key]
	if f == nil {
		f = &flight{}
		p.flights[key] = f
	}
	f.n++
	f.done = true // as Functions does, Push finishes what it takes
	n := len(m.GetPayload())
	p.out[m.Sequence] = &pushed{key: key, msg: m, step: step, bytes: n}
	p.held++
	p.heldBytes += n
	p.mu.Unlock()
	return append(batch, m), size + n
}

func failed(m *palmv1.PalmMessage, err error, step Step) *palmv1.PalmMessage {
	reply := palm.ChangePayload(m, nil)
	reply.Error = route.ErrorOf(err, step)
	return reply
}

func (p *Push) hasRoom() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held == 0 || (p.held < p.cfg.Window && p.heldBytes < p.cfg.WindowBytes)
}

// room waits until the window has room.
func (p *Push) room(ctx context.Context, received <-chan struct{}) error {
	for !p.hasRoom() {
		select {
		case <-p.freed:
		case <-received:
			return errReceiveEnded
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// receive hands what the gateway sends back to where it goes.
func (p *Push) receive(ctx context.Context, link *Link, stream palmv1.GatewayService_StreamClient) error {
	for {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		for _, m := range resp.GetMessages() {
			p.mu.Lock()
			x := p.out[m.GetSequence()]
			p.mu.Unlock()
			if x == nil {
				p.logger.Debug("a reply for no message out; dropped", "sequence", m.GetSequence())
				continue
			}
			m.Sequence = x.key.seq
			p.emit(ctx, link, Envelope{Msg: m, Origin: x.key.origin, Sequence: x.key.seq, Step: x.step})
		}
		for _, seq := range resp.GetCompleted() {
			if x := p.complete(seq); x != nil {
				p.finishOne(ctx, link, x.key)
			}
		}
	}
}

// complete takes the message seq out of the window.
func (p *Push) complete(seq uint64) *pushed {
	p.mu.Lock()
	x := p.out[seq]
	if x != nil {
		delete(p.out, seq)
		p.held--
		p.heldBytes -= x.bytes
	}
	p.mu.Unlock()
	select {
	case p.freed <- struct{}{}:
	default:
	}
	return x
}

// finishOne counts one forwarded message of key done; finish marks the
// last envelope of key come. Either completes key once both hold.
func (p *Push) finishOne(ctx context.Context, link *Link, key flightKey) {
	p.settle(ctx, link, key, -1)
}
func (p *Push) finish(ctx context.Context, link *Link, key flightKey) { p.settle(ctx, link, key, 0) }

func (p *Push) settle(ctx context.Context, link *Link, key flightKey, delta int) {
	p.mu.Lock()
	f := p.flights[key]
	if f == nil {
		f = &flight{}
	}
	f.n += delta
	f.done = f.done || delta == 0
	last := f.n == 0 && f.done
	if last {
		delete(p.flights, key)
	}
	p.mu.Unlock()
	if last {
		p.emit(ctx, link, Envelope{Origin: key.origin, Sequence: key.seq, Done: true})
	}
}

// lose answers every message out with an error: the stream they were on
// broke.
func (p *Push) lose(ctx context.Context, link *Link, cause error) {
	p.mu.Lock()
	lost := make([]*pushed, 0, len(p.out))
	for seq, x := range p.out {
		lost = append(lost, x)
		delete(p.out, seq)
	}
	p.held, p.heldBytes = 0, 0
	p.mu.Unlock()
	err := p.unavailable(cause, "the stream broke before it answered; the message may or may not have been handled there")
	for _, x := range lost {
		reply := failed(x.msg, err, x.step)
		reply.Sequence, reply.Stage = x.key.seq, x.msg.GetStage()-1
		p.emit(ctx, link, Envelope{Msg: reply, Origin: x.key.origin, Sequence: x.key.seq})
		p.finishOne(ctx, link, x.key)
	}
}

func (p *Push) unavailable(cause error, what string) error {
	return status.Errorf(codes.Unavailable, "forwarding to the gateway at %s: %s (%v); retry later", p.cfg.Address, what, cause)
}

// refuseFor answers the messages taken in the next d Unavailable, as the
// gateway cannot be reached.
func (p *Push) refuseFor(ctx context.Context, link *Link, d time.Duration, cause error) {
	t := time.NewTimer(d)
	defer t.Stop()
	err := p.unavailable(cause, "it cannot be reached now")
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case e := <-link.Inbox():
			if e.Msg != nil {
				p.emit(ctx, link, Envelope{Msg: failed(e.Msg, err, e.Step), Origin: e.Origin, Sequence: e.Sequence})
			}
			p.finish(ctx, link, flightKey{e.Origin, e.Sequence})
		}
	}
}

// emit sends e on the part's route, or with no route delivers it to its
// origin.
func (p *Push) emit(ctx context.Context, link *Link, e Envelope) {
	if link.Route() != "" {
		if err := link.Send(ctx, e); err != nil {
			p.logger.Debug("not sent on: the component is stopping", "error", err)
		}
		return
	}
	if e.Origin == nil {
		return
	}
	if err := e.Origin.Deliver(ctx, e); err != nil {
		p.logger.Debug("not delivered: the client has gone", "sequence", e.Sequence, "error", err)
	}
}

// Drain waits until every message out is completed, or ctx ends.
func (p *Push) Drain(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for p.Held() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// backoffBounds returns lo and hi, with the defaults where they are not
// set: DefaultBackoffMin, and DefaultBackoffMax or lo when hi < lo.
func backoffBounds(lo, hi time.Duration) (time.Duration, time.Duration) {
	if lo <= 0 {
		lo = DefaultBackoffMin
	}
	if hi < lo {
		hi = max(DefaultBackoffMax, lo)
	}
	return lo, hi
}
