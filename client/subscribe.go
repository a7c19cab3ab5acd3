package client

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/reach"
)

// This file is the client side of palm.v1.PublisherService.Subscribe: a
// Client with a SubAddress holds at most one subscription there, to its own
// id, shared by all of its Evals and Jobs, and hands each reply to the call
// that waits for it, told apart by the reply's pipeline id (every Eval and
// every Job has one of its own; a Job then tells its messages apart by
// sequence).
//
//   - The first call that needs the subscription opens it: one goroutine,
//     the reader, calls Subscribe and is then the only caller of Recv. A
//     call registers its waiter before it looks at the subscription, and
//     sends nothing before the subscription is confirmed (the publisher
//     sends its confirmation once the subscription is in place), so no
//     reply published for it is missed.
//   - The reader never waits for a call: it appends each reply to its
//     waiter's queue and signals the waiter (a channel of one place). A
//     queue is bounded by subQueueCount replies and subQueueBytes bytes (at
//     least four times the largest message); a reply that would pass the
//     bound ends that call with ResourceExhausted, and the others go on. A
//     Job stops sending while its queue holds an eighth of the bound or a
//     Window of replies, so only a caller that stops taking results while
//     many are on their way reaches it. A reply that no call waits for (it came after
//     its call ended) is dropped, and counted.
//   - When the subscription breaks, every call waiting on it ends with the
//     reason, an Unavailable error naming the SubAddress unless the
//     component said otherwise: a reply published while no subscription
//     was in place would be lost, so no call waits for one. The next call
//     opens a new subscription.
//   - When no call has used the subscription for subIdle, it is closed;
//     an opening that no call waits for any more is abandoned at once.
//     Close ends it, and the calls waiting on it with Canceled, and waits
//     for the reader.

const (
	// subIdle is how long an unused subscription stays open.
	subIdle = 30 * time.Second
	// subQueueCount and subQueueBytes bound the replies waiting for one
	// call.
	subQueueCount = 8192
	subQueueBytes = 64 << 20
)

// replies is a Client's subscription at its SubAddress and the calls that
// wait on it.
type replies struct {
	c     *Client
	idle  time.Duration
	count int // most replies queued for one call
	bytes int // most bytes queued for one call

	mu      sync.Mutex
	waiters map[string]*waiter // by pipeline id
	cur     *attempt           // the subscription opening or open; nil when none
	timer   *time.Timer        // closes an idle subscription
	closed  bool

	wg      sync.WaitGroup // the readers
	opened  atomic.Uint64  // subscriptions opened, for tests and logs
	dropped atomic.Uint64  // replies no call waited for
}

// attempt is one subscription, from its opening to its end.
type attempt struct {
	cancel context.CancelFunc
	ready  chan struct{} // closed once confirmed or failed
	err    error         // why it failed to open; read after ready
}

func newReplies(c *Client) *replies {
	return &replies{
		c: c, idle: subIdle, count: subQueueCount, bytes: max(subQueueBytes, 4*(c.max+messageOverhead)),
		waiters: map[string]*waiter{},
	}
}

// join registers a waiter for the replies of pipeline and returns it once
// the subscription is in place, so that the caller may send. The caller
// must call leave when it no longer waits.
func (r *replies) join(ctx context.Context, pipeline string) (*waiter, error) {
	w := &waiter{r: r, signal: make(chan struct{}, 1)}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, r.closedError()
	}
	r.waiters[pipeline] = w
	w.pipeline = pipeline
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	a := r.cur
	if a == nil {
		a = r.open()
	}
	r.mu.Unlock()
	select {
	case <-a.ready:
	case <-ctx.Done():
		r.leave(w)
		return nil, r.c.subError(status.FromContextError(ctx.Err()).Err())
	}
	if a.err != nil {
		r.leave(w)
		return nil, a.err
	}
	return w, nil
}

// open starts a subscription and its reader. It is called under mu.
func (r *replies) open() *attempt {
	ctx, cancel := context.WithCancel(context.Background())
	a := &attempt{cancel: cancel, ready: make(chan struct{})}
	r.cur = a
	r.opened.Add(1)
	r.wg.Go(func() { r.read(ctx, a) })
	return a
}

// read opens the subscription of a, and then hands what it receives to the
// waiters until it ends.
func (r *replies) read(ctx context.Context, a *attempt) {
	defer a.cancel()
	stream, err := r.c.subscribe(ctx)
	if err != nil {
		r.mu.Lock()
		a.err = err
		close(a.ready)
		r.end(a, err)
		r.mu.Unlock()
		return
	}
	close(a.ready)
	r.c.log.Debug("subscribed", "address", r.c.subAddr)
	for {
		resp, err := stream.Recv()
		if err != nil {
			err = r.c.subError(err)
			r.mu.Lock()
			if r.cur == a {
				r.c.log.Debug("subscription broke", "address", r.c.subAddr, "waiting", len(r.waiters), "error", err)
			}
			r.end(a, err)
			r.mu.Unlock()
			return
		}
		r.deliver(resp)
	}
}

// end fails every waiter with err if a is the current subscription; then
// there is none. It is called under mu.
func (r *replies) end(a *attempt, err error) {
	if r.cur != a {
		return // closed for idleness, or by Close, which saw to the waiters
	}
	r.cur = nil
	for p, w := range r.waiters {
		w.fail(err)
		delete(r.waiters, p)
	}
}

// deliver queues the replies of resp for their waiters.
func (r *replies) deliver(resp *palmv1.SubscribeResponse) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range resp.GetPublications() {
		m := p.GetMessage()
		w := r.waiters[m.GetPipeline()]
		if w == nil {
			n := r.dropped.Add(1)
			r.c.log.Debug("dropped a reply no call waits for", "pipeline", m.GetPipeline(), "sequence", m.GetSequence(), "dropped", n)
			continue
		}
		size := messageSize(m)
		if len(w.queue) >= r.count || w.bytes+size > r.bytes {
			w.fail(status.Errorf(codes.ResourceExhausted,
				"replies from %s (SubAddress): %d replies (%d bytes) waited for this call to take them, the most one call may hold (%d replies or %d bytes), so that a slow call does not hold up the others' replies; take the results faster, or lower client.Window so that fewer are on their way",
				r.c.subAddr, len(w.queue)+1, w.bytes+size, r.count, r.bytes))
			delete(r.waiters, w.pipeline)
			continue
		}
		w.queue = append(w.queue, m)
		w.bytes += size
		w.notify()
	}
}

// leave unregisters w. The subscription is closed once no call has used it
// for r.idle, or at once when it is still opening.
func (r *replies) leave(w *waiter) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.waiters[w.pipeline] == w {
		delete(r.waiters, w.pipeline)
	}
	if len(r.waiters) > 0 || r.cur == nil || r.closed {
		return
	}
	select {
	case <-r.cur.ready:
	default:
		r.cur.cancel() // nobody waits for it to open
		r.cur = nil
		return
	}
	if r.timer == nil {
		r.timer = time.AfterFunc(r.idle, r.closeIdle)
	}
}

// closeIdle closes the subscription if no call uses it.
func (r *replies) closeIdle() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.timer = nil
	if len(r.waiters) > 0 || r.cur == nil || r.closed {
		return
	}
	r.c.log.Debug("closing the idle subscription", "address", r.c.subAddr, "idle", r.idle)
	r.cur.cancel()
	r.cur = nil
}

// close ends the subscription and every call waiting on it, and waits for
// the reader.
func (r *replies) close() {
	r.mu.Lock()
	r.closed = true
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	if a := r.cur; a != nil {
		r.cur = nil
		a.cancel()
	}
	for p, w := range r.waiters {
		w.fail(r.closedError())
		delete(r.waiters, p)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *replies) closedError() error {
	return status.Errorf(codes.Canceled, "replies from %s (SubAddress): the Client is closed", r.c.subAddr)
}

// waiter is one call's share of the subscription: the replies of its
// pipeline, queued until the call takes them. Its fields other than
// pipeline and signal are guarded by r.mu.
type waiter struct {
	r        *replies
	pipeline string
	signal   chan struct{} // one place: replies or an error are waiting

	queue []*palmv1.PalmMessage
	bytes int
	err   error // ends the call once the queue is taken
}

// notify wakes the call. It is called under r.mu.
func (w *waiter) notify() {
	select {
	case w.signal <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// fail ends the call with err after what is queued. It is called under
// r.mu.
func (w *waiter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
	w.notify()
}

// take returns the queued replies and, when the call is to end, why.
func (w *waiter) take() ([]*palmv1.PalmMessage, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	q := w.queue
	w.queue, w.bytes = nil, 0
	return q, w.err
}

// held reports whether the call holds replies enough that it should not
// send more until it takes them: an eighth of the queue's bound, or window
// replies.
func (w *waiter) held(window int) bool {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return len(w.queue) >= min(window, w.r.count/8) || w.bytes >= w.r.bytes/8
}

// first returns the first reply, waiting for it until ctx ends.
func (w *waiter) first(ctx context.Context) (*palmv1.PalmMessage, error) {
	for {
		select {
		case <-w.signal:
		case <-ctx.Done():
			return nil, w.r.c.subError(status.FromContextError(ctx.Err()).Err())
		}
		q, err := w.take()
		if len(q) > 0 {
			return q[0], nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// messageSize estimates the bytes a reply holds in memory.
func messageSize(m *palmv1.PalmMessage) int {
	return len(m.GetPayload()) + len(m.GetFunction()) + len(m.GetCache()) +
		len(m.GetPipeline()) + len(m.GetClient()) + len(m.GetError().GetMessage()) + messageOverhead
}

// subscribe opens a subscription to the Client's id at the SubAddress and
// waits for its confirmation: once it returns, no reply published there for
// this Client is missed. It ends with ctx.
func (c *Client) subscribe(ctx context.Context) (palmv1.PublisherService_SubscribeClient, error) {
	stream, err := c.sub.Subscribe(ctx, &palmv1.SubscribeRequest{Topics: []string{c.id}, Subscriber: "client"})
	if err != nil {
		return nil, c.subError(err)
	}
	first, err := stream.Recv()
	if err != nil {
		return nil, c.subError(err)
	}
	if !first.GetSubscribed() {
		return nil, status.Errorf(codes.Internal, "the component at %s (SubAddress) sent messages before confirming the subscription", c.subAddr)
	}
	return stream, nil
}

// subError names the SubAddress in a subscription's error, keeping its
// code.
func (c *Client) subError(err error) error {
	var re *reach.Error
	if errors.As(err, &re) {
		return err // it names the address already
	}
	if err == io.EOF {
		return status.Errorf(codes.Unavailable, "replies from %s (SubAddress): the component ended the subscription", c.subAddr)
	}
	st := status.Convert(err)
	code := st.Code()
	if code == codes.OK || code == codes.Unknown {
		code = codes.Unavailable // the stream ended without a status
	}
	return status.Errorf(code, "replies from %s (SubAddress): %s", c.subAddr, st.Message())
}
