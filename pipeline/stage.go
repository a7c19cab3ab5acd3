package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/gopalm/palm/compose"
	"github.com/gopalm/palm/parts"
)

// Upstream is a component a Pipeline or a Sink takes its messages from: the
// address it serves on and the topic to subscribe to there. The topic is
// the upstream's name when it publishes with its default handle_stream
// (Pipelined), or whatever topic its HandleStream hook picks.
type Upstream = parts.Upstream

// Pipeline is a step of a pipeline: it subscribes to a component before it
// (a Server, a Master, a Hub, another Pipeline), calls the function each
// message names at its current stage, and sends the result to the client
// or, Pipelined, on to the next step. A function that returns nothing
// sends nothing on.
//
// The subscription is made when Serve starts and made again by itself
// whenever it breaks, so the upstream and the Pipeline can restart
// independently; what the upstream published while the subscription was
// broken is lost, and counted (Missed). A Pipeline that cannot keep up
// slows its upstream instead of losing messages.
//
// A message that reaches the Pipeline with an error from an earlier step is
// not passed to a function: it goes on as it is, towards the client. So
// does the error of a message the Pipeline cannot take (a step for another
// component, an unknown function).
type Pipeline struct {
	*stage
}

// Sink is a step that joins several streams: it subscribes to several
// components at once (a topic at each address, paired in order, as the
// original's sub_addresses and previous) and handles their messages as a
// Pipeline does.
type Sink struct {
	*stage
}

// stage is a Pipeline or a Sink.
type stage struct {
	*core
	sub *parts.Subscriber
}

// NewPipeline returns a Pipeline named name that takes its messages from
// from. It does no I/O. Options: Concurrency, Pipelined, HandleStream,
// SubscriberQueue, WithStore, Backoff and palm's shared options.
func NewPipeline(name string, from Upstream, opts ...StageOption) (*Pipeline, error) {
	s, err := newStage("Pipeline", name, []Upstream{from}, opts)
	if err != nil {
		return nil, err
	}
	return &Pipeline{s}, nil
}

// NewSink returns a Sink named name that takes its messages from every
// upstream in from. It does no I/O. Options as for NewPipeline.
func NewSink(name string, from []Upstream, opts ...StageOption) (*Sink, error) {
	if len(from) == 0 {
		return nil, errors.New("pipeline: a sink needs at least one upstream")
	}
	s, err := newStage("Sink", name, from, opts)
	if err != nil {
		return nil, err
	}
	return &Sink{s}, nil
}

func newStage(kind, name string, from []Upstream, opts []StageOption) (*stage, error) {
	c, err := newCore(kind, name, opts)
	if err != nil {
		return nil, err
	}
	sub, err := parts.NewSubscriber(parts.SubscriberConfig{
		Name:       name,
		Upstreams:  from,
		Known:      c.known,
		Refused:    compose.Pub,
		BackoffMin: c.settings.backoffMin,
		BackoffMax: c.settings.backoffMax,
		Logger:     c.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("pipeline: %s %s: %w", kind, name, err)
	}
	return &stage{core: c, sub: sub}, nil
}

// Missed is the number of messages published upstream, under the topics
// subscribed to, while a subscription was broken: the upstreams report it
// when subscribed to again.
func (s *stage) Missed() uint64 { return s.sub.Missed() }

// Subscribed is the number of upstreams the component is subscribed to now.
func (s *stage) Subscribed() int { return s.sub.Connected() }

// ListenAndServe listens on the TCP address addr and calls Serve.
func (s *stage) ListenAndServe(ctx context.Context, addr string) error {
	return s.listenAndServe(ctx, addr, s.Serve)
}

// Serve subscribes to the upstreams and serves the component's services
// (its PublisherService, for the next step or the client, and its cache)
// on lis until ctx ends, then stops: it reports NOT_SERVING, ends its
// subscriptions, finishes the messages it holds and publishes their
// results, all within the stop timeout (palm.WithStopTimeout, default
// 10 s), and closes lis. It returns nil after a stop caused by ctx. Serve
// may be called once.
func (s *stage) Serve(ctx context.Context, lis net.Listener) error {
	return s.serve(ctx, lis, compose.Sub, s.sub, nil)
}
