package parts

import (
	"context"
	"fmt"
	"sync"
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
// under a topic nobody subscribes to is dropped, and counted.
//
// One goroutine per subscriber sends, packing up to 256 publications per
// response.
type Topics struct {
	palmv1.UnimplementedPublisherServiceServer

	queue  int
	logger hclog.Logger

	mu      sync.RWMutex
	byTopic map[string]map[*subscriber]struct{}
	dropped uint64
}

type subscriber struct {
	name string
	ctx  context.Context
	ch   chan *palmv1.Publication
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
	return &Topics{queue: queue, logger: logger, byTopic: map[string]map[*subscriber]struct{}{}}
}

// Dropped is the number of messages published under a topic that had no
// subscriber at the time.
func (p *Topics) Dropped() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.dropped
}

// Publish hands m to every subscriber of topic, waiting for room in each
// queue until ctx ends or the subscriber goes away.
func (p *Topics) Publish(ctx context.Context, topic string, m *palmv1.PalmMessage) error {
	p.mu.RLock()
	set := p.byTopic[topic]
	subs := make([]*subscriber, 0, len(set))
	for s := range set {
		subs = append(subs, s)
	}
	p.mu.RUnlock()
	if len(subs) == 0 {
		p.mu.Lock()
		p.dropped++
		p.mu.Unlock()
		p.logger.Debug("no subscriber for the topic; message dropped", "topic", topic)
		return nil
	}
	pub := &palmv1.Publication{Topic: topic, Message: m}
	for _, s := range subs {
		select {
		case s.ch <- pub:
		case <-s.ctx.Done():
		case <-ctx.Done():
			return ctx.Err()
		}
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
	s := &subscriber{name: req.GetSubscriber(), ctx: stream.Context(), ch: make(chan *palmv1.Publication, p.queue)}
	p.mu.Lock()
	for _, t := range req.GetTopics() {
		set := p.byTopic[t]
		if set == nil {
			set = map[*subscriber]struct{}{}
			p.byTopic[t] = set
		}
		set[s] = struct{}{}
	}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		for _, t := range req.GetTopics() {
			delete(p.byTopic[t], s)
			if len(p.byTopic[t]) == 0 {
				delete(p.byTopic, t)
			}
		}
		p.mu.Unlock()
	}()
	p.logger.Debug("subscribed", "subscriber", s.name, "topics", req.GetTopics())
	if err := stream.Send(&palmv1.SubscribeResponse{Subscribed: true}); err != nil {
		return err
	}
	resp := &palmv1.SubscribeResponse{}
	for {
		select {
		case <-s.ctx.Done():
			return status.FromContextError(s.ctx.Err()).Err()
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
		}
	}
}
