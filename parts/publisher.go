package parts

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/caller"
	"github.com/gopalm/palm/internal/names"
	"github.com/gopalm/palm/internal/pack"
)

// DefaultSubscriberQueue is the number of messages waiting for one
// subscriber before the publisher waits for it.
const DefaultSubscriberQueue = 1024

// MaxTopics is the most topics one subscription may name.
const MaxTopics = 1024

// maxCountedTopics bounds the topics whose publications are counted one by
// one; past it, new topics are not counted (client ids used as topics would
// otherwise grow the map without end over a long life).
const maxCountedTopics = 4096

// DefaultSlowSubscriberTimeout is how long a subscriber may leave a
// publication waiting for room in its full queue without reading before it
// is cut, unless TopicsConfig says otherwise.
const DefaultSlowSubscriberTimeout = 10 * time.Second

// DefaultInTransit is the bytes of publications a publisher counts as
// possibly still in the transport to a subscriber when its subscription
// breaks (see Topics): palm's default flow-control window of a stream
// (palm.WithWindowSize), the most a subscriber that stopped reading lets
// through.
const DefaultInTransit = 1 << 20

// transitOverhead is what a publication is counted beyond its payload in
// the record of what may be in the transport: about what its routing
// fields take on the wire.
const transitOverhead = 64

// tellBound bounds the time a subscription's end spends reporting its lost
// messages to their origins.
const tellBound = 5 * time.Second

// Topics is the palm.v1.PublisherService of a component, and the Publisher
// its Replies part sends messages to.
//
// A subscriber names exact topics. It receives every message published
// under them from the moment its first response (the confirmation) is sent:
// the subscription is in place before the confirmation goes out, so a
// client may subscribe, wait for the confirmation, and then send without
// missing a reply. Each subscriber has a bounded queue; when it is full,
// Publish waits for that subscriber (backpressure on the component) rather
// than dropping messages, until the subscriber goes away or is cut: a
// subscriber that has taken nothing from its full queue for the slow
// subscriber timeout is ended with ResourceExhausted, and the publisher
// goes on for the others. A message published under a topic nobody
// subscribes to is dropped, and counted (Dropped).
//
// Loss is told: a message published with PublishTold whose topic has no
// subscriber, that was still queued for a subscriber that left or was cut,
// or that was among the last sent to it when its subscription broke (and
// so may still have been in the transport: about InTransit bytes of them
// per subscriber, the flow-control window of its stream), is
// reported through its Loss function, with DataLoss naming the topic and
// what happened — unless another subscriber of the topic took it.
//
// On a component that authenticates its callers, a caller allowed
// UseSubscribe but not UseStream is a client: it may subscribe only to
// client ids, not to the component's own name; a client id belongs to the
// first caller that subscribes with it (another caller is refused with
// PermissionDenied) until ClaimIdle after its last subscription ended; and
// it receives only the publications whose message names that client.
//
// The publisher counts what it publishes under each topic, and the
// confirmation carries the counts of the topics subscribed to, with the
// publisher's Instance (new at each start): a subscriber that comes back
// after a break learns how many messages it missed.
//
// One goroutine per subscriber sends, packing up to 256 publications per
// response; the call's own goroutine sends the confirmation before it
// starts, then waits for the sender to end, or for the cut of a slow
// subscriber (ending the call is what frees a sender blocked by a peer
// that does not read).
type Topics struct {
	palmv1.UnimplementedPublisherServiceServer

	queue     int
	inTransit int // bytes of the record of what may be in the transport, per subscriber
	slow      time.Duration
	own       string
	onStall   func(stalled bool)
	logger    hclog.Logger

	instance  string
	closing   chan struct{}
	closeOnce sync.Once

	mu      sync.RWMutex
	byTopic map[string]map[*subscriber]struct{}
	counts  map[string]*topicCount
	members map[*subscriber]struct{} // every open subscription
	dropped atomic.Uint64
	slowCut atomic.Uint64

	stallMu sync.Mutex
	stalled int // publications waiting for a subscriber late past half the bound

	claims claims
}

// TopicsConfig configures a Topics.
type TopicsConfig struct {
	// Queue is the number of messages waiting for one subscriber before
	// the publisher waits for it; 0 means DefaultSubscriberQueue.
	Queue int
	// SlowSubscriberTimeout is how long a subscriber may leave a
	// publication waiting for room in its full queue without taking
	// anything from it before it is cut; 0 means
	// DefaultSlowSubscriberTimeout.
	SlowSubscriberTimeout time.Duration
	// Name is the component's name, the topic of its published stream,
	// which a client (UseSubscribe without UseStream) may not subscribe to.
	Name string
	// InTransit is the bytes of publications sent to a subscriber that may
	// still be in the transport, and are told lost (with a Loss) when its
	// subscription breaks: the flow-control window of the subscriber's
	// stream, which bounds what gRPC sends it and it has not read. 0 means
	// DefaultInTransit.
	InTransit int
	// OnStall, when set, is called with true when a publication starts
	// waiting for a subscriber that has not read for half the slow
	// subscriber timeout, and with false when no publication does any more
	// (components make health report PublisherService NOT_SERVING
	// meanwhile). Calls are serialized.
	OnStall func(stalled bool)
	// Logger; nil is quiet.
	Logger hclog.Logger
}

// Loss is told that a message published with PublishTold reached no
// subscriber; err is a DataLoss status naming the topic and what happened.
// It may be called from Publish itself, or later from the goroutine of a
// subscription that ended, with ctx bounding how long it may wait.
type Loss func(ctx context.Context, err error)

// queued is one publication waiting for a subscriber.
type queued struct {
	pub  *palmv1.Publication
	fate *fate // nil when nobody is to be told of its loss
}

// fate follows a publication with a Loss through the subscribers that took
// it: each that loses it drops it, and the last drop tells the Loss. One
// that sent it and ended in order never drops it, so a message another
// subscriber received is not reported lost.
type fate struct {
	holders atomic.Int32
	lost    Loss
}

// drop records that one holder lost the publication, and tells its Loss
// with err when that was the last.
func (f *fate) drop(ctx context.Context, err error) {
	if f != nil && f.holders.Add(-1) == 0 {
		f.lost(ctx, err)
	}
}

// topicCount is what a publisher knows of one topic.
type topicCount struct {
	published atomic.Uint64
	warned    atomic.Bool // a loss under it was logged
}

type subscriber struct {
	name    string
	topics  []string
	ctx     context.Context
	ch      chan queued
	pending sync.WaitGroup // Publish calls that may still send to ch
	client  bool           // only publications whose message's client is the topic
	read    atomic.Int64   // when the sender last took from ch (UnixNano)

	ended   chan struct{} // closed when the subscription ends, or is cut
	endOnce sync.Once
	endErr  error         // why, written before ended is closed
	cut     chan struct{} // closed after ended when it was cut for not reading

	transit transit // sent, and maybe still in the transport (sender only)
}

// end ends s with err, once; it reports whether this call did.
func (s *subscriber) end(err error) bool {
	did := false
	s.endOnce.Do(func() {
		s.endErr = err
		close(s.ended)
		did = true
	})
	return did
}

func (s *subscriber) touch() { s.read.Store(time.Now().UnixNano()) }

func (s *subscriber) idle() time.Duration {
	return time.Duration(time.Now().UnixNano() - s.read.Load())
}

// NewTopics returns a publisher whose subscribers each have a queue of
// queue messages (0: DefaultSubscriberQueue), with the default slow
// subscriber timeout.
func NewTopics(queue int, logger hclog.Logger) *Topics {
	return NewTopicsWith(TopicsConfig{Queue: queue, Logger: logger})
}

// NewTopicsWith returns a publisher configured by cfg.
func NewTopicsWith(cfg TopicsConfig) *Topics {
	if cfg.Queue <= 0 {
		cfg.Queue = DefaultSubscriberQueue
	}
	if cfg.SlowSubscriberTimeout <= 0 {
		cfg.SlowSubscriberTimeout = DefaultSlowSubscriberTimeout
	}
	cfg.Logger = orQuiet(cfg.Logger)
	if cfg.InTransit <= 0 {
		cfg.InTransit = DefaultInTransit
	}
	return &Topics{
		inTransit: cfg.InTransit,
		queue:     cfg.Queue,
		slow:      cfg.SlowSubscriberTimeout,
		own:       cfg.Name,
		onStall:   cfg.OnStall,
		logger:    cfg.Logger,
		instance:  rand.Text(),
		closing:   make(chan struct{}),
		byTopic:   map[string]map[*subscriber]struct{}{},
		counts:    map[string]*topicCount{},
		members:   map[*subscriber]struct{}{},
		claims:    claims{max: MaxClaims, idle: ClaimIdle, by: map[string]*claim{}},
	}
}

// droppedCount is the number of messages published that reached no subscriber:
// nobody subscribed to their topic, or the subscriber left before they were
// sent to it.
func (p *Topics) droppedCount() uint64 { return p.dropped.Load() }

// slowCutCount is the number of subscriptions cut for not reading.
func (p *Topics) slowCutCount() uint64 { return p.slowCut.Load() }

// Subscribers is the number of subscriptions open now.
func (p *Topics) Subscribers() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.members)
}

// queuedCount is the number of messages waiting in the subscribers' queues.
func (p *Topics) queuedCount() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n := 0
	for s := range p.members {
		n += len(s.ch)
	}
	return n
}

// Close ends every subscription once what is queued for it is sent, and
// refuses new ones with Unavailable: call it when the component stops,
// after the last Publish. Subscribers of palm subscribe again, to the
// publisher's successor at the same address.
func (p *Topics) Close() { p.closeOnce.Do(func() { close(p.closing) }) }

var errClosing = status.Error(codes.Unavailable, "the publisher is shutting down; subscribe again later")

// instanceID identifies this publisher; see SubscribeResponse.instance.
func (p *Topics) instanceID() string { return p.instance }

// lost counts a message under topic that reached nobody. The first loss
// under a topic is logged as a warning: a stage that never subscribed, or a
// client without SubAddress, shows up in the logs once.
func (p *Topics) lost(topic string, c *topicCount) {
	p.dropped.Add(1)
	if c != nil && !c.warned.Swap(true) {
		p.logger.Warn("a message was published under a topic nobody receives; it is dropped, and so will be the next ones (counted, without more warnings)", "topic", topic)
	}
}

// count returns the counter of topic, creating it when there is room.
func (p *Topics) count(topic string) *topicCount {
	p.mu.RLock()
	c := p.counts[topic]
	p.mu.RUnlock()
	if c != nil {
		return c
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c = p.counts[topic]; c == nil && len(p.counts) < maxCountedTopics {
		c = &topicCount{}
		p.counts[topic] = c
	}
	return c
}

// Publish hands m to every subscriber of topic, waiting for room in each
// queue until ctx ends, the subscriber goes away, or it is cut for not
// reading.
func (p *Topics) Publish(ctx context.Context, topic string, m *palmv1.PalmMessage) error {
	return p.PublishTold(ctx, topic, m, nil)
}

// PublishTold is Publish, telling lost (when not nil) if m reaches no
// subscriber: at once when none takes it, or later when it was queued for,
// or on its way to, a subscription that ended first.
func (p *Topics) PublishTold(ctx context.Context, topic string, m *palmv1.PalmMessage, lost Loss) error {
	// Counting and finding the subscribers under one read lock keeps both
	// in step with Subscribe, which registers and reads the count under the
	// write lock: a message is counted before a confirmation and not sent to
	// that subscriber, or counted after it and sent.
	var few [4]*subscriber
	subs := few[:0]
	p.mu.RLock()
	c := p.counts[topic]
	if c == nil && len(p.counts) < maxCountedTopics {
		// The first message under topic: make its counter, then look again.
		p.mu.RUnlock()
		p.count(topic)
		p.mu.RLock()
		c = p.counts[topic]
	}
	if c != nil {
		c.published.Add(1)
	}
	for s := range p.byTopic[topic] {
		if s.client && m.GetClient() != topic {
			continue // a client sees its own replies only
		}
		s.pending.Add(1)
		subs = append(subs, s)
	}
	p.mu.RUnlock()
	if len(subs) == 0 {
		p.lost(topic, c)
		if lost != nil {
			lost(ctx, status.Errorf(codes.DataLoss, "lost: nothing subscribes to topic %q at this component; the stage that reads it is not connected (stopped, cut, or not started)", topic))
		}
		return nil
	}
	q := queued{pub: &palmv1.Publication{Topic: topic, Message: m}}
	if lost != nil {
		q.fate = &fate{lost: lost}
		q.fate.holders.Store(int32(len(subs)))
	}
	for i, s := range subs {
		ok, err := p.put(ctx, s, q)
		if err != nil {
			for _, s := range subs[i:] {
				s.pending.Done()
			}
			return err
		}
		s.pending.Done()
		if !ok {
			p.dropped.Add(1) // the subscriber ended; its end is logged
			q.fate.drop(ctx, status.Errorf(codes.DataLoss, "lost: the subscription to topic %q at this component ended before the message could be queued for it", topic))
		}
	}
	return nil
}

// put queues q for s, waiting for room while s reads; it reports false
// when s ended first, and an error when ctx did.
func (p *Topics) put(ctx context.Context, s *subscriber, q queued) (bool, error) {
	select {
	case <-s.ended:
		return false, nil
	case s.ch <- q:
		return true, nil
	default:
	}
	half := p.slow / 2
	t := time.NewTimer(max(half-s.idle(), time.Millisecond))
	defer t.Stop()
	stalled := false
	defer func() {
		if stalled {
			p.stall(-1)
		}
	}()
	for {
		select {
		case s.ch <- q:
			return true, nil
		case <-s.ended:
			return false, nil
		case <-s.ctx.Done():
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.C:
		}
		idle := s.idle()
		if idle >= p.slow {
			p.cutSlow(s, idle)
			return false, nil
		}
		next := half - idle
		if idle >= half {
			if !stalled {
				stalled = true
				p.stall(1)
			}
			next = p.slow - idle
		}
		t.Reset(max(next, time.Millisecond))
	}
}

// stall counts a publication that starts (+1) or stops (-1) waiting for a
// late subscriber, and tells OnStall when the first starts or the last
// stops.
func (p *Topics) stall(d int) {
	p.stallMu.Lock()
	defer p.stallMu.Unlock()
	p.stalled += d
	if p.onStall != nil && (p.stalled == 0 || (d > 0 && p.stalled == 1)) {
		p.onStall(p.stalled > 0)
	}
}

// cutSlow ends the subscription s that has not read for idle.
func (p *Topics) cutSlow(s *subscriber, idle time.Duration) {
	err := status.Errorf(codes.ResourceExhausted, "slow subscriber: it did not read for %v while its queue of %d messages was full; read faster, or raise the publisher's SlowSubscriberTimeout (now %v)", idle.Round(time.Millisecond), p.queue, p.slow)
	if s.end(err) {
		close(s.cut)
		p.slowCut.Add(1)
		p.logger.Warn("cut a slow subscriber: it did not read, and the publisher goes on without it", "subscriber", s.name, "topics", s.topics, "idle", idle.Round(time.Millisecond), "timeout", p.slow)
	}
}

// checkTopics validates a subscription's topics.
func checkTopics(topics []string) error {
	switch {
	case len(topics) == 0:
		return status.Error(codes.InvalidArgument, "a subscription needs at least one topic")
	case len(topics) > MaxTopics:
		return status.Errorf(codes.InvalidArgument, "a subscription names %d topics; the limit is %d", len(topics), MaxTopics)
	}
	for _, t := range topics {
		if err := names.Topic(t); err != nil {
			return status.Errorf(codes.InvalidArgument, "topic %q: %v", truncate(t, 64), err)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s... (%d bytes)", s[:n], len(s))
}

// admit applies the isolation rules to a subscription by the caller of ctx:
// it reports whether the subscriber is a client (sees its own replies
// only), having claimed its topics for the caller; release gives the
// claims back.
func (p *Topics) admit(ctx context.Context, topics []string) (client bool, release func(), err error) {
	c, ok := caller.From(ctx)
	if !ok || c.Perm&caller.UseStream != 0 {
		return false, func() {}, nil
	}
	for _, t := range topics {
		if t == p.own {
			return false, nil, status.Errorf(codes.PermissionDenied, "topic %q is this component's published stream, which only stages read (StageRole, UseStream); a client subscribes to its own client id", t)
		}
	}
	if err := p.claims.take(c.ID, topics, time.Now()); err != nil {
		return false, nil, err
	}
	return true, func() { p.claims.give(topics, time.Now()) }, nil
}

// Subscribe implements palm.v1.PublisherService/Subscribe.
func (p *Topics) Subscribe(req *palmv1.SubscribeRequest, stream palmv1.PublisherService_SubscribeServer) error {
	if err := checkTopics(req.GetTopics()); err != nil {
		return err
	}
	select {
	case <-p.closing:
		return errClosing
	default:
	}
	client, release, err := p.admit(stream.Context(), req.GetTopics())
	if err != nil {
		return err
	}
	s := &subscriber{
		name: req.GetSubscriber(), topics: req.GetTopics(), ctx: stream.Context(),
		ch: make(chan queued, p.queue), client: client, ended: make(chan struct{}), cut: make(chan struct{}),
		transit: transit{limit: p.inTransit},
	}
	s.touch()
	confirm := &palmv1.SubscribeResponse{Subscribed: true, Instance: p.instance, Published: map[string]uint64{}}
	counts := make([]*topicCount, len(req.GetTopics()))
	for i, t := range req.GetTopics() {
		counts[i] = p.count(t)
	}
	p.mu.Lock()
	for _, t := range req.GetTopics() {
		set := p.byTopic[t]
		if set == nil {
			set = map[*subscriber]struct{}{}
			p.byTopic[t] = set
		}
		set[s] = struct{}{}
	}
	for i, t := range req.GetTopics() {
		if c := counts[i]; c != nil {
			confirm.Published[t] = c.published.Load()
		}
	}
	p.members[s] = struct{}{}
	p.mu.Unlock()
	p.logger.Debug("subscribed", "subscriber", s.name, "topics", req.GetTopics())
	if err := stream.Send(confirm); err != nil {
		p.finish(s, err, release)
		return err
	}
	sent := make(chan error, 1)
	go func() {
		err := p.send(s, stream)
		p.finish(s, err, release)
		sent <- err
	}()
	select {
	case err := <-sent:
		return err
	case <-s.cut:
		// Returning ends the call, which frees a sender blocked in Send by
		// a peer that does not read; the sender then finishes.
		return s.endErr
	}
}

// send is the only caller of Send on the subscription after the
// confirmation: it sends what is queued for s until s ends.
func (p *Topics) send(s *subscriber, stream palmv1.PublisherService_SubscribeServer) error {
	resp := &palmv1.SubscribeResponse{}
	closing := p.closing
	batch := make([]queued, 0, pack.MaxMessages)
	for {
		select {
		case <-s.ended:
			return s.endErr
		case <-s.ctx.Done():
			return status.FromContextError(s.ctx.Err()).Err()
		case <-closing:
			if len(s.ch) == 0 {
				return errClosing
			}
			closing = nil // send what is queued, then end
			continue
		case q := <-s.ch:
			s.touch()
			batch = pack.Fill(append(batch[:0], q), s.ch, pack.MaxMessages)
			resp.Publications = resp.Publications[:0]
			for _, q := range batch {
				resp.Publications = append(resp.Publications, q.pub)
				s.transit.add(q)
			}
			err := stream.Send(resp)
			clear(resp.Publications)
			clear(batch)
			if err != nil {
				return err
			}
			s.touch()
			if closing == nil && len(s.ch) == 0 {
				return errClosing
			}
		}
	}
}

// finish unregisters s, which ended with err, and tells the loss of what
// was queued for it and, unless the publisher closed it in order, of what
// may still have been in the transport.
func (p *Topics) finish(s *subscriber, err error, release func()) {
	s.end(err)
	p.mu.Lock()
	for _, t := range s.topics {
		delete(p.byTopic[t], s)
		if len(p.byTopic[t]) == 0 {
			delete(p.byTopic, t)
		}
	}
	delete(p.members, s)
	p.mu.Unlock()
	release()
	// No Publish finds it now; once those under way are done, what is
	// still queued for it will never be sent.
	s.pending.Wait()
	why := status.Convert(s.endErr).Message()
	ctx, cancel := context.WithTimeout(context.Background(), tellBound)
	defer cancel()
	for len(s.ch) > 0 {
		q := <-s.ch
		t := q.pub.GetTopic()
		p.dropped.Add(1) // counted; the end of the subscription is logged
		q.fate.drop(ctx, status.Errorf(codes.DataLoss, "lost: it was queued for subscriber %q of topic %q at this component when that subscription ended (%s)", s.name, t, why))
	}
	if s.endErr == errClosing {
		return
	}
	for _, q := range s.transit.take() {
		q.fate.drop(ctx, status.Errorf(codes.DataLoss, "may have been lost: it was on its way to subscriber %q of topic %q at this component when that subscription broke (%s)", s.name, q.topic, why))
	}
}

// transit keeps the last publications sent to a subscriber that have a
// Loss, about limit bytes of them (payload and transitOverhead each): gRPC's
// Send returns once a message is in the transport, so these may still be
// lost if the subscription breaks. A queue of their topics and Loss
// functions (not the messages), grown as needed; the sender's goroutine
// alone uses it.
type transit struct {
	limit int
	kept  []inTransit // kept[head:] is the record, oldest first
	head  int
	bytes int
}

type inTransit struct {
	topic string
	fate  *fate
	size  int
}

func (t *transit) add(q queued) {
	if q.fate == nil {
		return
	}
	b := len(q.pub.GetMessage().GetPayload()) + transitOverhead
	for t.head < len(t.kept) && t.bytes+b > t.limit {
		t.bytes -= t.kept[t.head].size
		t.kept[t.head] = inTransit{}
		t.head++
	}
	if t.head == len(t.kept) {
		t.kept, t.head = t.kept[:0], 0
	} else if t.head > len(t.kept)/2 && len(t.kept) == cap(t.kept) {
		n := copy(t.kept, t.kept[t.head:])
		clear(t.kept[n:])
		t.kept, t.head = t.kept[:n], 0
	}
	t.kept = append(t.kept, inTransit{topic: q.pub.GetTopic(), fate: q.fate, size: b})
	t.bytes += b
}

// take returns what is kept, oldest first, and forgets it.
func (t *transit) take() []inTransit {
	out := slices.Clone(t.kept[t.head:])
	t.kept, t.head, t.bytes = nil, 0, 0
	return out
}
