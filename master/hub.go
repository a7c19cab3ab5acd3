package master

import (
	"context"
	"fmt"
	"net"

	"github.com/gopalm/palm/compose"
	"github.com/gopalm/palm/parts"
)

// Upstream is the component a Hub takes its messages from: the address it
// serves on and the topic to subscribe to there (the original's sub_address
// and previous): the upstream's name when it publishes with its default
// handle_stream (Pipelined), or whatever topic its HandleStream hook picks.
type Upstream = parts.Upstream

// Hub is a master in the middle of a pipeline: instead of taking messages
// from clients, it subscribes to a component before it (a Server, a
// Pipeline, a Master, another Hub) and hands the messages it receives to
// its workers. The results go back to the client (topic: the client's id)
// or, Pipelined, on to the next step; a client reaches them by subscribing
// to the Hub (client.SubAddress).
//
// The subscription is made when Serve starts and made again by itself
// whenever it breaks; what the upstream published while it was broken is
// lost, and counted (Missed). A Hub whose workers cannot keep up slows its
// upstream instead of losing messages. A message that arrives with an
// error from an earlier step goes on as it is, towards the client.
//
// A Hub takes the options a Master takes but Window and WindowBytes, and
// Backoff too (HubOption).
type Hub struct {
	*Master
	sub *parts.Subscriber
}

// NewHub returns a Hub named name that takes its messages from from. It
// does no I/O.
func NewHub(name string, from Upstream, opts ...HubOption) (*Hub, error) {
	m, err := newMaster("Hub", name, opts)
	if err != nil {
		return nil, err
	}
	sub, err := parts.NewSubscriber(parts.SubscriberConfig{
		Name:       name,
		Upstreams:  []Upstream{from},
		Refused:    compose.Pub,
		BackoffMin: m.settings.backoffMin,
		BackoffMax: m.settings.backoffMax,
		Logger:     m.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("master: hub %s: %w", name, err)
	}
	return &Hub{Master: m, sub: sub}, nil
}

// Missed is the number of messages the upstream published under the topic
// while the subscription was broken, as it reported when subscribed to
// again.
func (h *Hub) Missed() uint64 { return h.sub.Missed() }

// Subscribed reports whether the subscription to the upstream is in place.
func (h *Hub) Subscribed() bool { return h.sub.Connected() > 0 }

// ListenAndServe listens on the TCP address addr and calls Serve.
func (h *Hub) ListenAndServe(ctx context.Context, addr string) error {
	return h.listenAndServe(ctx, addr, h.Serve)
}

// Serve subscribes to the upstream and serves workers and the Hub's
// PublisherService and cache on lis until ctx ends, then stops: it reports
// NOT_SERVING, ends its subscription, lets the workers finish the messages
// it holds and publishes their results, tells the workers to leave, all
// within the stop timeout (palm.WithStopTimeout, default 10 s), and closes
// lis. It returns nil after a stop caused by ctx. Serve may be called once.
func (h *Hub) Serve(ctx context.Context, lis net.Listener) error {
	return h.serve(ctx, lis, compose.Sub, h.sub)
}
