package parts

import (
	"context"
	"errors"
	"io"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/drain"
	"github.com/gopalm/palm/internal/pack"
	"github.com/gopalm/palm/internal/route"
)

// DefaultWindow is the number of unfinished messages a Gateway takes from
// one stream before it stops reading from it.
const DefaultWindow = 1024

// DefaultWindowBytes is the payload bytes a Gateway holds for one stream
// in messages taken and not finished (with the replies waiting to be sent)
// before it stops reading from it; replies wait to be sent up to as many
// bytes again.
const DefaultWindowBytes = 32 << 20

// DefaultSlowClient is how long a reply may wait for room in the queue of a
// stream whose client does not read before the stream is cut.
const DefaultSlowClient = 10 * time.Second

// maxBatch is the most items packed in one Send of the gateway's streams.
// Only dispatcher.go still names it; the rest name pack.MaxMessages.
const maxBatch = pack.MaxMessages

// Gateway is the inbound part that serves palm.v1.GatewayService: clients
// call Eval or open a Stream, and every message that passes the door check
// goes into the router along the part's route. Replies come back through the
// Origin each message carries.
//
// Eval waits for its one message. Stream follows the rules written in
// gateway.proto: one goroutine receives (and stops receiving while the
// stream's window is full: Window unfinished messages, or WindowBytes of
// payload taken and not finished with replies not yet sent), the handler's
// goroutine alone sends, packing up to 256 replies and completions per
// response from a queue bounded by 64 times the window in count and by
// WindowBytes in payload. A full queue makes the part delivering replies
// wait for that client, at most SlowClient: then the stream is cut with
// RESOURCE_EXHAUSTED, so one client that does not read holds up the others
// for a bounded time only, and never grows the server's memory.
type Gateway struct {
	palmv1.UnimplementedGatewayServiceServer

	check       route.Check
	window      int
	windowBytes int
	slowClient  time.Duration
	logger      hclog.Logger

	ready  chan struct{} // closed when Run has the link
	link   *Link
	runCtx context.Context
	gate   *drain.Gate // the messages taken and not finished
}

// GatewayConfig configures a Gateway.
type GatewayConfig struct {
	// Server is the name of the server; messages must name it in their
	// current step. Required.
	Server string
	// Known reports whether a function is served; nil accepts any.
	Known func(function string) bool
	// MaxPayload is the largest payload accepted, in bytes; 0 for no limit.
	MaxPayload int
	// Window is the per-stream limit of unfinished messages; 0 means
	// DefaultWindow.
	Window int
	// WindowBytes is the per-stream limit of payload bytes held: messages
	// taken and not finished, with their replies waiting to be sent; and,
	// again, replies waiting. 0 means DefaultWindowBytes. A message larger
	// than it is still taken when the stream holds nothing else.
	WindowBytes int
	// SlowClient is how long a reply waits for room in a stream's queue
	// before the stream is cut; 0 means DefaultSlowClient.
	SlowClient time.Duration
	// Logger; nil is quiet.
	Logger hclog.Logger
}

// NewGateway returns a Gateway; register it as an inbound part and as the
// GatewayService of a gRPC server.
func NewGateway(cfg GatewayConfig) *Gateway {
	w := cfg.Window
	if w <= 0 {
		w = DefaultWindow
	}
	if cfg.WindowBytes <= 0 {
		cfg.WindowBytes = DefaultWindowBytes
	}
	if cfg.SlowClient <= 0 {
		cfg.SlowClient = DefaultSlowClient
	}
	return &Gateway{
		check:       route.Check{Server: cfg.Server, MaxPayload: cfg.MaxPayload, Known: cfg.Known},
		window:      w,
		windowBytes: cfg.WindowBytes,
		slowClient:  cfg.SlowClient,
		logger:      orQuiet(cfg.Logger),
		ready:       make(chan struct{}),
		gate:        drain.New(),
	}
}

// Run makes the gateway ready to take messages and waits for ctx to end.
func (g *Gateway) Run(ctx context.Context, link *Link) error {
	g.link = link
	g.runCtx = ctx
	close(g.ready)
	<-ctx.Done()
	return nil
}

// Drain stops the gateway taking new messages (they are refused with
// Unavailable) and waits until every message already taken is finished, or
// ctx ends. Streams then end with Unavailable once their replies are sent.
func (g *Gateway) Drain(ctx context.Context) error { return g.gate.Drain(ctx) }

// holding is the number of messages taken and not yet finished.
func (g *Gateway) holding() int { return int(g.gate.Held()) }

var errDraining = status.Error(codes.Unavailable, "the server is shutting down; send to another server or retry later")

// take counts a message in; it fails when the gateway is draining.
func (g *Gateway) take() error {
	if !g.gate.Enter() {
		return errDraining
	}
	return nil
}

func (g *Gateway) release(n int64) { g.gate.Leave(n) }

// wait blocks until Run has started, or ctx ends.
func (g *Gateway) wait(ctx context.Context) error {
	select {
	case <-g.ready:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

// Eval implements palm.v1.GatewayService/Eval.
func (g *Gateway) Eval(ctx context.Context, req *palmv1.EvalRequest) (*palmv1.EvalResponse, error) {
	m := req.GetMessage()
	step, err := g.check.Admit(m)
	if err != nil {
		return nil, err
	}
	if err := g.wait(ctx); err != nil {
		return nil, err
	}
	if err := g.take(); err != nil {
		return nil, err
	}
	defer g.release(1)
	deadline := messageDeadline(m, time.Now())
	if d, ok := ctx.Deadline(); ok && (deadline.IsZero() || d.Before(deadline)) {
		deadline = d
	}
	replies, err := evalCall(ctx, g.runCtx, g.link, Envelope{Msg: m, Sequence: m.GetSequence(), Step: step, Deadline: deadline}, g.windowBytes)
	if err != nil {
		if status.Code(err) == codes.ResourceExhausted {
			err = status.Errorf(codes.ResourceExhausted, "%s; use a Stream", status.Convert(err).Message())
		}
		return nil, err
	}
	return &palmv1.EvalResponse{Messages: replies}, nil
}

// evalCall sends e into the router from a new one-call origin and waits
// for its replies, keeping at most limit bytes of them, until ctx or the
// part's runCtx ends; a reply that carries an error is the call's error.
func evalCall(ctx, runCtx context.Context, link *Link, e Envelope, limit int) ([]*palmv1.PalmMessage, error) {
	o := &evalOrigin{ctx: ctx, done: make(chan struct{}), limit: limit}
	e.Origin = o
	if err := link.Send(ctx, e); err != nil {
		return nil, contextStatus(ctx, err)
	}
	select {
	case <-o.done:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-runCtx.Done():
		return nil, errDraining
	}
	for _, r := range o.replies {
		if r.GetError() != nil {
			return nil, route.Status(r.GetError())
		}
	}
	if o.overflow {
		return nil, status.Errorf(codes.ResourceExhausted, "the replies to the message passed %d bytes, the most one call returns", limit)
	}
	return o.replies, nil
}

// messageDeadline is the deadline a message's timeout_ms sets from now, or
// the zero time.
func messageDeadline(m *palmv1.PalmMessage, now time.Time) time.Time {
	ms := m.GetTimeoutMs()
	if ms == 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(min(ms, uint64(math.MaxInt64/int64(time.Millisecond)))) * time.Millisecond)
}

func contextStatus(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	return status.Error(codes.Unavailable, err.Error())
}

// evalOrigin collects the replies of one Eval.
type evalOrigin struct {
	ctx      context.Context
	limit    int // payload bytes of replies kept
	mu       sync.Mutex
	replies  []*palmv1.PalmMessage
	bytes    int
	overflow bool
	done     chan struct{}
	closed   bool
}

func (o *evalOrigin) Context() context.Context { return o.ctx }

func (o *evalOrigin) oneCall() {}

func (o *evalOrigin) Deliver(_ context.Context, e Envelope) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errors.New("the call has already ended")
	}
	if m := e.Msg; m != nil {
		if o.bytes += len(m.GetPayload()); o.bytes > o.limit && m.GetError() == nil {
			o.overflow = true
		} else {
			o.replies = append(o.replies, m)
		}
	}
	if e.Done {
		o.closed = true
		close(o.done)
	}
	return nil
}

// item is one entry of a stream's send queue.
type item struct {
	msg      *palmv1.PalmMessage
	seq      uint64
	done     bool
	accepted bool // counted in the gateway's in-flight total
}

// streamOrigin is one client stream.
type streamOrigin struct {
	ctx    context.Context
	cut    context.CancelCauseFunc // ends the stream, with the reason
	out    *outQueue
	window chan struct{}
	bytes  *budget // payload taken and not finished, and queued replies

	mu      sync.Mutex
	held    int64                  // messages taken into g.inflight and not yet completed on the wire
	charges map[uint64]charge      // payload bytes taken, by sequence, until completed
	calls   map[uint64]*callOrigin // the open calls (StreamRequest.calls), by sequence
	closed  bool
}

// callOrigin is one call on a client's stream (a message sent with
// StreamRequest.calls): its context ends when the client cancels it, or
// with the stream; its replies and completion go down the stream.
type callOrigin struct {
	ctx    context.Context
	cancel context.CancelFunc
	stream *streamOrigin
	seq    uint64
}

func (c *callOrigin) Context() context.Context { return c.ctx }

func (c *callOrigin) oneCall() {}

func (c *callOrigin) Deliver(ctx context.Context, e Envelope) error {
	err := c.stream.Deliver(ctx, e)
	if e.Done {
		c.stream.dropCall(c)
	}
	return err
}

// openCall opens the call of sequence seq on o.
func (o *streamOrigin) openCall(seq uint64) (*callOrigin, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.calls[seq] != nil {
		return nil, status.Errorf(codes.InvalidArgument, "a call was sent with sequence %d, that of a call still open on this stream; number the calls of a stream apart (the stream ends, as their answers could not be told apart)", seq)
	}
	if o.calls == nil {
		o.calls = map[uint64]*callOrigin{}
	}
	ctx, cancel := context.WithCancel(o.ctx)
	c := &callOrigin{ctx: ctx, cancel: cancel, stream: o, seq: seq}
	o.calls[seq] = c
	return c, nil
}

// dropCall forgets a call, completed or refused before it went in, and
// ends its context.
func (o *streamOrigin) dropCall(c *callOrigin) {
	o.mu.Lock()
	if o.calls[c.seq] == c {
		delete(o.calls, c.seq)
	}
	o.mu.Unlock()
	c.cancel()
}

// cancelCall ends the context of the open call of sequence seq, if any.
func (o *streamOrigin) cancelCall(seq uint64) {
	o.mu.Lock()
	c := o.calls[seq]
	o.mu.Unlock()
	if c != nil {
		c.cancel()
	}
}

// charge is the payload bytes taken under one sequence number, and how many
// messages (a client may reuse a number) they came in.
type charge struct{ bytes, n int }

func (o *streamOrigin) Context() context.Context { return o.ctx }

func (o *streamOrigin) Deliver(ctx context.Context, e Envelope) error {
	return o.out.push(ctx, o.ctx, item{msg: e.Msg, seq: e.Sequence, done: e.Done, accepted: true})
}

// uncharge gives back what the message with sequence seq was charged; the
// caller holds o.mu.
func (o *streamOrigin) uncharge(seq uint64) int {
	c, ok := o.charges[seq]
	if !ok {
		return 0
	}
	if c.n <= 1 {
		delete(o.charges, seq)
		return c.bytes
	}
	part := c.bytes / c.n
	o.charges[seq] = charge{bytes: c.bytes - part, n: c.n - 1}
	return part
}

// budget counts a stream's payload bytes against its limit: in, taken
// from the client and not finished; out, replies waiting to be sent. A
// message is taken while in and out together leave room for it (or hold
// nothing, so that a message larger than the limit still goes through
// alone); a reply waits while out alone is at the limit. A stream thus
// holds at most about twice the limit.
type budget struct {
	limit   int64
	in, out atomic.Int64
	room    chan struct{} // a token when in or out went down
}

func newBudget(limit int) *budget {
	return &budget{limit: int64(limit), room: make(chan struct{}, 1)}
}

// take adds n to in, first waiting until it fits, until ctx ends.
func (b *budget) take(ctx context.Context, n int) error {
	for {
		used := b.in.Load() + b.out.Load()
		if used == 0 || used+int64(n) <= b.limit {
			b.in.Add(int64(n))
			return nil
		}
		select {
		case <-b.room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// outFull reports whether replies waiting fill the budget.
func (b *budget) outFull() bool { return b.out.Load() >= b.limit }

func (b *budget) giveIn(n int)  { b.give(&b.in, n) }
func (b *budget) giveOut(n int) { b.give(&b.out, n) }

func (b *budget) give(c *atomic.Int64, n int) {
	if n != 0 {
		c.Add(-int64(n))
		signal(b.room)
	}
}

// outQueue is a stream's queue of replies and completions waiting to be
// sent. It grows as needed up to limit items and its budget's bytes, so
// that a client that reads slowly does not make the part delivering replies
// wait for everyone else; past either, push waits, at most slow: then the
// stream is cut. The window bounds how much a well-behaved server puts in
// it: at most window messages, each with its replies.
type outQueue struct {
	mu    sync.Mutex
	items []item
	limit int
	bytes *budget       // shared with the stream's intake
	slow  time.Duration // the longest push waits
	cut   context.CancelCauseFunc
	ready chan struct{} // a token when items were added
	space chan struct{} // a token when items were taken
}

func newOutQueue(limit int, bytes *budget, slow time.Duration, cut context.CancelCauseFunc) *outQueue {
	return &outQueue{limit: limit, bytes: bytes, slow: slow, cut: cut, ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// errSlowClient is why a stream whose client does not read is cut.
func errSlowClient(d time.Duration) error {
	return status.Errorf(codes.ResourceExhausted, "the client read none of its replies for %v while the server held a full window of them; read replies as they come (the stream was cut so that other clients are not held up)", d)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// push adds it, waiting while the queue is at its limits until ctx or octx
// ends, or for q.slow at most: then it cuts the stream.
func (q *outQueue) push(ctx, octx context.Context, it item) error {
	n := len(it.msg.GetPayload())
	var timer *time.Timer
	for {
		q.mu.Lock()
		if len(q.items) < q.limit && (n == 0 || !q.bytes.outFull()) {
			q.items = append(q.items, it)
			q.bytes.out.Add(int64(n))
			q.mu.Unlock()
			signal(q.ready)
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		q.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(q.slow)
			defer timer.Stop()
		}
		select {
		case <-q.space:
		case <-timer.C:
			err := errSlowClient(q.slow)
			q.cut(err)
			return err
		case <-octx.Done():
			return octx.Err()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// take moves up to max items into buf and returns it.
func (q *outQueue) take(buf []item, max int) []item {
	q.mu.Lock()
	n := min(len(q.items), max)
	bytes := 0
	for _, it := range q.items[:n] {
		bytes += len(it.msg.GetPayload())
	}
	buf = append(buf, q.items[:n]...)
	rest := copy(q.items, q.items[n:])
	clear(q.items[rest:])
	q.items = q.items[:rest]
	if rest == 0 && cap(q.items) > 4096 {
		q.items = nil // give back what a burst made it grow to
	}
	q.mu.Unlock()
	q.bytes.giveOut(bytes)
	signal(q.space)
	if rest > 0 {
		signal(q.ready)
	}
	return buf
}

func (q *outQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Stream implements palm.v1.GatewayService/Stream.
func (g *Gateway) Stream(stream palmv1.GatewayService_StreamServer) error {
	if err := g.wait(stream.Context()); err != nil {
		return err
	}
	ctx, cut := context.WithCancelCause(stream.Context())
	defer cut(nil)
	bytes := newBudget(g.windowBytes)
	o := &streamOrigin{
		ctx:     ctx,
		cut:     cut,
		out:     newOutQueue(outLimit*g.window, bytes, g.slowClient, cut),
		window:  make(chan struct{}, g.window),
		bytes:   bytes,
		charges: map[uint64]charge{},
	}
	recvDone := make(chan error, 1)
	go func() { recvDone <- g.receive(o, stream) }()
	defer func() {
		// Whatever this stream still holds will never reach the client.
		o.mu.Lock()
		o.closed = true
		n := o.held
		o.held = 0
		o.mu.Unlock()
		g.release(n)
	}()

	resp := &palmv1.StreamResponse{}
	var batch []item
	eof, draining := false, false
	for {
		if (eof || draining) && len(o.window) == 0 && o.out.len() == 0 {
			if eof {
				return nil
			}
			return errDraining
		}
		idle := g.gate.Idle()
		if draining {
			idle = nil
		}
		select {
		case <-o.out.ready:
		case err := <-recvDone:
			if err != nil {
				return err
			}
			eof, recvDone = true, nil
			continue
		case <-idle:
			draining = true // finish sending what is on its way, then end
			continue
		case <-ctx.Done():
			return streamEnd(ctx)
		}
		for {
			batch = o.out.take(batch[:0], pack.MaxMessages)
			if len(batch) == 0 {
				break
			}
			released, accepted, err := g.sendBatch(stream, resp, batch)
			if err != nil {
				clear(batch)
				return err
			}
			for range released {
				<-o.window
			}
			freed := 0
			o.mu.Lock()
			o.held -= accepted
			for _, it := range batch {
				if it.done && it.accepted {
					freed += o.uncharge(it.seq)
				}
			}
			o.mu.Unlock()
			clear(batch)
			o.bytes.giveIn(freed)
			g.release(accepted)
		}
	}
}

// streamEnd is the status a stream ends with when its context is done: the
// reason it was cut, or the context's own.
func streamEnd(ctx context.Context) error {
	if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
		return cause
	}
	return status.FromContextError(ctx.Err()).Err()
}

// outLimit times the window is the most items a stream's queue holds.
const outLimit = 64

// sendBatch packs the items into responses of at most pack.MaxBytes of
// payload and sends them. It returns how many completions it sent, and how
// many of those were counted in the gateway's in-flight total.
func (g *Gateway) sendBatch(stream palmv1.GatewayService_StreamServer, resp *palmv1.StreamResponse, items []item) (released, accepted int64, err error) {
	resp.Messages = resp.Messages[:0]
	resp.Completed = resp.Completed[:0]
	bytes := 0
	flush := func() error {
		if len(resp.Messages)+len(resp.Completed) == 0 {
			return nil
		}
		err := stream.Send(resp)
		clear(resp.Messages)
		resp.Messages = resp.Messages[:0]
		resp.Completed = resp.Completed[:0]
		bytes = 0
		return err
	}
	for _, it := range items {
		if it.msg != nil {
			if bytes > 0 && bytes+len(it.msg.GetPayload()) > pack.MaxBytes {
				if err := flush(); err != nil {
					return released, accepted, err
				}
			}
			resp.Messages = append(resp.Messages, it.msg)
			bytes += len(it.msg.GetPayload())
		}
		if it.done {
			resp.Completed = append(resp.Completed, it.seq)
			released++
			if it.accepted {
				accepted++
			}
		}
	}
	return released, accepted, flush()
}

// receive reads the client's messages until the client half-closes (nil)
// or the stream fails. It takes a window slot per message before routing it
// and answers refused messages itself.
func (g *Gateway) receive(o *streamOrigin, stream palmv1.GatewayService_StreamServer) error {
	ctx := o.ctx
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		for _, seq := range req.GetCancel() {
			o.cancelCall(seq)
		}
		calls := req.GetCalls()
		for _, m := range req.GetMessages() {
			select {
			case o.window <- struct{}{}:
			case <-ctx.Done():
				return streamEnd(ctx)
			}
			var origin Origin = o
			step, err := g.check.Admit(m)
			if err == nil && calls {
				c, cerr := o.openCall(m.GetSequence())
				if cerr != nil {
					// Its answers could not be told from the open
					// call's: the client is broken, not the message.
					return cerr
				}
				origin = c
				if err = g.hold(ctx, o, m); err != nil {
					o.dropCall(c)
				}
			} else if err == nil {
				err = g.hold(ctx, o, m)
			}
			if err != nil {
				reply := &palmv1.PalmMessage{
					Pipeline: m.GetPipeline(), Client: m.GetClient(), Stage: m.GetStage(),
					Function: m.GetFunction(), Sequence: m.GetSequence(),
					Error: route.ErrorOf(err, step),
				}
				if err := o.out.push(ctx, ctx, item{msg: reply, seq: m.GetSequence(), done: true}); err != nil {
					return status.FromContextError(err).Err()
				}
				continue
			}
			e := Envelope{Msg: m, Origin: origin, Sequence: m.GetSequence(), Step: step}
			if m.GetTimeoutMs() > 0 {
				e.Deadline = messageDeadline(m, time.Now())
			}
			if err := g.link.Send(ctx, e); err != nil {
				return contextStatus(ctx, err)
			}
		}
	}
}

// hold counts a message of o into the gateway's in-flight total and its
// payload into the stream's bytes, waiting for room in them.
func (g *Gateway) hold(ctx context.Context, o *streamOrigin, m *palmv1.PalmMessage) error {
	n := len(m.GetPayload())
	if err := o.bytes.take(ctx, n); err != nil {
		return streamEnd(ctx)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	err := error(nil)
	if o.closed {
		err = status.Error(codes.Canceled, "the stream has ended")
	} else {
		err = g.take()
	}
	if err != nil {
		o.bytes.giveIn(n)
		return err
	}
	o.held++
	c := o.charges[m.GetSequence()]
	o.charges[m.GetSequence()] = charge{bytes: c.bytes + n, n: c.n + 1}
	return nil
}
