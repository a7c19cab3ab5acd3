package parts

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/route"
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

// Topics is the palm.v1.PublisherService of a component, and the Publisher
// its Replies part sends messages to.
//
// A subscriber names exact topics. It receives every message published
// under them from the moment its first response (the confirmation) is sent:
// the subscription is in place before the confirmation goes out, so a
// client may subscribe, wait for the confirmation, and then send without
// missing a reply. Each subscriber has a bounded queue; when it is full,
// Publish waits for that subscriber (backpressure on the component) rather
// than dropping messages, until the subscriber goes away. A message published
// under a topic nobody subscribes to is dropped, and counted (Dropped).
//
// The publisher counts what it publishes under each topic, and the
// confirmation carries the counts of the topics subscribed to, with the
// publisher's Instance (new at each start): a subscriber that comes back
// after a break learns how many messages it missed.
//
// One goroutine per subscriber sends, packing up to 256 publications per
// response.
type Topics struct {
	palmv1.UnimplementedPublisherServiceServer

	queue  int
	logger hclog.Logger

	instance  string
	closing   chan struct{}
	closeOnce sync.Once

	mu      sync.RWMutex
	byTopic map[string]map[*subscriber]struct{}
	counts  map[string]*topicCount
	members map[*subscriber]struct{} // every open subscription
	dropped atomic.Uint64
}

// topicCount is what a publisher knows of one topic.
type topicCount struct {
	published atomic.Uint64
	warned    atomic.Bool // a loss under it was logged
}

type subscriber struct {
	name    string
	ctx     context.Context
	ch      chan *palmv1.Publication
	pending sync.WaitGroup // Publish calls that may still send to ch
}

// NewTopics returns a publisher whose subscribers each have a queue of
// queue messages (0: DefaultSubscriberQueue).
func NewTopics(queue int, logger hclog.Logger) *Topics {
	if queue <= 0 {
		queue = DefaultSubscriberQueue
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Topics{
		queue:    queue,
		logger:   logger,
		instance: rand.Text(),
		closing:  make(chan struct{}),
		byTopic:  map[string]map[*subscriber]struct{}{},
		counts:   map[string]*topicCount{},
		members:  map[*subscriber]struct{}{},
	}
}

// Dropped is the number of messages published that reached no subscriber:
// nobody subscribed to their topic, or the subscriber left before they were
// sent to it.
func (p *Topics) Dropped() uint64 { return p.dropped.Load() }

// Subscribers is the number of subscriptions open now.
func (p *Topics) Subscribers() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.members)
}

// Queued is the number of messages waiting in the subscribers' queues.
func (p *Topics) Queued() int {
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

// Instance identifies this publisher; see SubscribeResponse.instance.
func (p *Topics) Instance() string { return p.instance }

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
// queue until ctx ends or the subscriber goes away.
func (p *Topics) Publish(ctx context.Context, topic string, m *palmv1.PalmMessage) error {
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
		s.pending.Add(1)
		subs = append(subs, s)
	}
	p.mu.RUnlock()
	if len(subs) == 0 {
		p.lost(topic, c)
		return nil
	}
	pub := &palmv1.Publication{Topic: topic, Message: m}
	for i, s := range subs {
		select {
		case s.ch <- pub:
		case <-s.ctx.Done():
			p.lost(topic, c)
		case <-ctx.Done():
			for _, s := range subs[i:] {
				s.pending.Done()
			}
			return ctx.Err()
		}
		s.pending.Done()
	}
	return nil
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
		if t == "" || len(t) > route.MaxIDLen || !utf8.ValidString(t) {
			return status.Errorf(codes.InvalidArgument, "topic %q: a topic is non-empty UTF-8 of at most %d bytes", truncate(t, 64), route.MaxIDLen)
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
	s := &subscriber{name: req.GetSubscriber(), ctx: stream.Context(), ch: make(chan *palmv1.Publication, p.queue)}
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
	defer func() {
		p.mu.Lock()
		for _, t := range req.GetTopics() {
			delete(p.byTopic[t], s)
			if len(p.byTopic[t]) == 0 {
				delete(p.byTopic, t)
			}
		}
		delete(p.members, s)
		p.mu.Unlock()
		// No Publish finds it now; once those under way are done, what is
		// still queued for it will never be sent.
		s.pending.Wait()
		for len(s.ch) > 0 {
			t := (<-s.ch).GetTopic()
			p.lost(t, p.count(t))
		}
	}()
	p.logger.Debug("subscribed", "subscriber", s.name, "topics", req.GetTopics())
	if err := stream.Send(confirm); err != nil {
		return err
	}
	resp := &palmv1.SubscribeResponse{}
	closing := p.closing
	for {
		select {
		case <-s.ctx.Done():
			return status.FromContextError(s.ctx.Err()).Err()
		case <-closing:
			if len(s.ch) == 0 {
				return errClosing
			}
			closing = nil // send what is queued, then end
			continue
		case pub := <-s.ch:
			resp.Publications = append(resp.Publications[:0], pub)
			for len(resp.Publications) < maxBatch {
				select {
				case pub := <-s.ch:
					resp.Publications = append(resp.Publications, pub)
					continue
				default:
				}
				break
			}
			err := stream.Send(resp)
			clear(resp.Publications)
			if err != nil {
				return err
			}
			if closing == nil && len(s.ch) == 0 {
				return errClosing
			}
		}
	}
}
