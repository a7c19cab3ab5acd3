package parts

import (
	"context"
	"slices"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/metrics"
	"github.com/gopalm/palm/kv"
)

// How palm's own parts take their component's settings, serve their
// services and describe themselves.

// Prepare takes the component's name, message size limit and logger where
// the gateway was built without them.
func (g *Gateway) Prepare(env Env) error {
	if g.check.Server == "" {
		g.check.Server = env.Name
	}
	if g.check.MaxPayload == 0 {
		g.check.MaxPayload = env.MaxMessageSize
	}
	g.logger = loggerOr(g.logger, env)
	return nil
}

// RegisterServices serves the gateway as the component's GatewayService.
func (g *Gateway) RegisterServices(r Registrar) {
	r.RegisterService(&palmv1.GatewayService_ServiceDesc, g)
}

// Describe notes the gateway's windows.
func (g *Gateway) Describe(d *Description) {
	d.Gauge("gateway_in_flight", "Messages taken from clients and not yet finished.", g.holding)
}

// Prepare takes the component's name, message size limit, dial options
// and logger where the subscriber was built without them.
func (s *Subscriber) Prepare(env Env) error {
	if s.cfg.Name == "" {
		s.cfg.Name = env.Name
	}
	if s.cfg.MaxPayload == 0 {
		s.cfg.MaxPayload = env.MaxMessageSize
	}
	if s.cfg.Dial == nil {
		s.cfg.Dial = env.Dial
	}
	s.check.Server, s.check.MaxPayload = s.cfg.Name, s.cfg.MaxPayload
	s.logger = loggerOr(s.logger, env)
	return nil
}

// Describe reports the upstreams and what was missed from them.
func (s *Subscriber) Describe(d *Description) {
	for _, u := range s.cfg.Upstreams {
		d.Upstreams = append(d.Upstreams, u.String())
	}
	d.Counter("subscription_missed", "Messages an upstream published while the subscription was broken.", s.Missed)
	d.Gauge("subscriptions", "Subscriptions to upstreams in place now.", s.Connected)
}

// Prepare takes the component's publisher and logger where Replies has
// none; with Pipelined and no Handle, it sends results on under the
// component's name.
func (r *Replies) Prepare(env Env) error {
	if r.Publisher == nil && env.Topics != nil {
		r.Publisher = env.Topics
	}
	if r.Pipelined && r.Handle == nil {
		r.Handle, r.nextStage = NextStage(env.Name), true
	}
	r.Logger = loggerOr(r.Logger, env)
	return nil
}

// Describe tells whether Replies sends results on down a pipeline.
func (r *Replies) Describe(d *Description) { d.Pipelined = d.Pipelined || r.nextStage }

// Prepare takes the component's logger and middleware.
func (f *Functions) Prepare(env Env) error {
	f.Logger = loggerOr(f.Logger, env)
	f.Middleware = append(slices.Clip(env.Middleware), f.Middleware...)
	f.server = env.Name
	return nil
}

// Describe lists the steps the functions serve.
func (f *Functions) Describe(d *Description) {
	if f.Names == nil {
		return
	}
	d.Functions = func() []string {
		var steps []string
		for _, n := range f.Names() {
			steps = append(steps, f.server+"."+n)
		}
		slices.Sort(steps)
		return steps
	}
}

// Prepare takes the component's logger.
func (g *Gather) Prepare(env Env) error {
	g.Logger = loggerOr(g.Logger, env)
	return nil
}

// Describe reports the publisher's subscriptions, their queues and what
// they did not get.
func (p *Topics) Describe(d *Description) {
	d.Gauge("subscribers", "Subscriptions open now.", p.Subscribers)
	d.Gauge("subscriber_queue_messages", "Messages waiting in the subscribers' queues.", p.queuedCount)
	d.Counter("published_dropped", "Messages published that reached no subscriber.", p.droppedCount)
	d.Counter("slow_subscribers_cut", "Subscriptions cut because they did not read for the slow subscriber timeout.", p.slowCutCount)
}

// RegisterServices serves the publisher as the component's
// PublisherService.
func (p *Topics) RegisterServices(r Registrar) {
	r.RegisterService(&palmv1.PublisherService_ServiceDesc, p)
}

// Cache is a bypass part that serves a store as the component's
// CacheService (the original's CacheService part): workers and clients
// read and write it; it never exchanges messages with the router.
type Cache struct {
	// Store is the store served; nil means the component's cache.
	Store kv.Store
	// MaxValueSize bounds a value; 0 means the component's message size
	// limit.
	MaxValueSize int

	svc palmv1.CacheServiceServer
}

// Prepare takes the component's store, limit and logger where c has none.
func (c *Cache) Prepare(env Env) error {
	if c.Store == nil {
		c.Store = env.Store
	}
	if c.MaxValueSize == 0 {
		c.MaxValueSize = env.MaxMessageSize
	}
	opts := []kv.ServiceOption{kv.WithLogger(loggerOr(nil, env))}
	if c.MaxValueSize > 0 {
		opts = append(opts, kv.WithMaxValueSize(c.MaxValueSize))
	}
	c.svc = kv.NewService(c.Store, opts...)
	return nil
}

// RegisterServices serves the store as the CacheService.
func (c *Cache) RegisterServices(r Registrar) {
	if c.svc == nil {
		c.svc = kv.NewService(c.Store)
	}
	r.RegisterService(&palmv1.CacheService_ServiceDesc, c.svc)
}

// Describe counts the keys, when the store can tell.
func (c *Cache) Describe(d *Description) {
	if keys := metrics.CacheKeys(c.Store); keys != nil {
		d.Gauge("cache_keys", "Keys in the component's cache.", keys)
	}
}

// Run waits for ctx to end: the service does the work.
func (c *Cache) Run(ctx context.Context, _ *Link) error {
	<-ctx.Done()
	return nil
}
