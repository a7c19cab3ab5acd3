// Package compose builds a palm component from parts, as the original's
// ServerTemplate does: a router, named parts registered as inbound,
// outbound or bypass, each inbound and outbound part routed to an outbound
// part by name, and the listener every palm component has — health,
// reflection, InfoService, authentication, metrics, and a bounded stop.
//
// palm's own components are compositions of the parts in package parts;
// a component of your own may use them and parts you write (a Part, with
// any of parts.Preparer, parts.Service, parts.Drainer, parts.Describer).
// The master of the manual's examples, on one listener:
//
//	c, err := compose.New("server")
//	c.Inbound("Pull", parts.NewGateway(parts.GatewayConfig{}), "WorkerPush")
//	c.Outbound("WorkerPush", parts.NewDispatcher(parts.DispatcherConfig{}), "Pub")
//	c.Outbound("Pub", &parts.Replies{}, "")
//	c.Bypass("Cache", &parts.Cache{})
//	err = c.ListenAndServe(ctx, "127.0.0.1:5555")
//
// In the original, the master's workers connect to two parts, WorkerPush
// and WorkerPull; in palm a worker's tasks and results travel on one
// stream, so the Dispatcher is both: its route (Pub above) is where the
// original's WorkerPull sent the results.
package compose

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/internal/metrics"
	"github.com/gopalm/palm/internal/names"
	"github.com/gopalm/palm/internal/server"
	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/parts"
)

// Component is a server composed from parts. Register its parts, then call
// Serve (or ListenAndServe) once. A registration error (an empty or taken
// name, a nil part) and a route naming no outbound part are reported by
// Serve, before it serves anything.
type Component struct {
	name     string
	cfg      *config.Config
	settings settings
	logger   hclog.Logger
	topics   *parts.Topics
	preset   map[string][]byte

	nodes  []node
	errs   []error
	served atomic.Bool
	srv    atomic.Pointer[server.Server]
}

type node struct {
	name, kind, route string
	part              parts.Part
}

// Kinds of parts, as InfoService shows them.
const (
	kindInbound  = "inbound"
	kindOutbound = "outbound"
	kindBypass   = "bypass"
)

// New returns a component named name, with no parts. It does no I/O. It
// fails when the name is not a valid component name or an option is
// invalid.
func New(name string, opts ...Option) (*Component, error) {
	var st settings
	cfg, err := config.Apply(opts, &st)
	if err != nil {
		return nil, err
	}
	return newComponent(name, cfg, st)
}

func newComponent(name string, cfg *config.Config, st settings) (*Component, error) {
	if err := names.Component("component", name); err != nil {
		return nil, fmt.Errorf("compose: invalid component name %q: %w", name, err)
	}
	if st.kind == "" {
		st.kind = "component"
	}
	if st.store == nil {
		st.store = kv.NewMemory()
	}
	c := &Component{name: name, cfg: cfg, settings: st, logger: cfg.NamedLogger(name)}
	c.topics = parts.NewTopicsWith(parts.TopicsConfig{
		Queue:                 st.queue,
		SlowSubscriberTimeout: cfg.SlowSubscriberTimeout,
		InTransit:             cfg.InTransit(),
		Name:                  name,
		OnStall: func(stalled bool) {
			if srv := c.srv.Load(); srv != nil {
				srv.PublisherStalled(stalled)
			}
		},
		Logger: c.logger,
	})
	return c, nil
}

// Name is the component's name.
func (c *Component) Name() string { return c.name }

// Logger is the component's named logger.
func (c *Component) Logger() hclog.Logger { return c.logger }

// Cache is the component's key-value store: the one a parts.Cache with no
// store of its own serves, and PresetCache fills.
func (c *Component) Cache() kv.Store { return c.settings.store }

// Topics is the component's publisher, served as its PublisherService:
// where a parts.Replies with no publisher of its own publishes.
func (c *Component) Topics() *parts.Topics { return c.topics }

// Inbound registers p as an inbound part named name, sending what it takes
// in to the outbound part named route.
func (c *Component) Inbound(name string, p parts.Part, route string) {
	c.add(node{name: name, kind: kindInbound, route: route, part: p})
}

// Outbound registers p as an outbound part named name, taking messages
// from the router and sending what it produces to the outbound part named
// route ("" when it sends nothing on).
func (c *Component) Outbound(name string, p parts.Part, route string) {
	c.add(node{name: name, kind: kindOutbound, route: route, part: p})
}

// Bypass registers p as a part named name that runs beside the router
// without exchanging messages with it, such as a parts.Cache.
func (c *Component) Bypass(name string, p parts.Part) {
	c.add(node{name: name, kind: kindBypass, part: p})
}

func (c *Component) add(n node) {
	switch {
	case c.served.Load():
		c.errs = append(c.errs, fmt.Errorf("compose: cannot register part %q: the component is serving", n.name))
	case n.name == "":
		c.errs = append(c.errs, errors.New("compose: a part needs a name"))
	case n.part == nil:
		c.errs = append(c.errs, fmt.Errorf("compose: part %q is nil", n.name))
	case slices.ContainsFunc(c.nodes, func(o node) bool { return o.name == n.name }):
		c.errs = append(c.errs, fmt.Errorf("compose: a part named %q is already registered", n.name))
	default:
		c.nodes = append(c.nodes, n)
	}
}

// PresetCache stores values in the component's cache before it serves, for
// workers and clients to read (the original's preset_cache).
func (c *Component) PresetCache(values map[string][]byte) {
	if c.preset == nil {
		c.preset = map[string][]byte{}
	}
	for k, v := range values {
		if err := kv.ValidKey(k); err != nil {
			c.errs = append(c.errs, fmt.Errorf("compose: PresetCache: %w", err))
			continue
		}
		c.preset[k] = v
	}
}

// ListenAndServe listens on the TCP address addr and calls Serve.
func (c *Component) ListenAndServe(ctx context.Context, addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("compose: %s %s: %w", c.settings.kind, c.name, err)
	}
	return c.Serve(ctx, lis)
}

// Serve prepares the parts, checks their routes, and serves their services
// on lis until ctx ends; then it stops: health reports NOT_SERVING, the
// parts drain (inbound parts first, which may take four fifths of the stop
// timeout, then outbound, then bypass, then the publisher), the listener
// stops within the stop timeout (palm.WithStopTimeout, default 10 s), and
// lis is closed. It returns nil after a stop caused by ctx. Serve may be
// called once.
func (c *Component) Serve(ctx context.Context, lis net.Listener) error {
	if !c.served.CompareAndSwap(false, true) {
		lis.Close()
		return errors.New("compose: Serve called twice")
	}
	srv, r, err := c.assemble(ctx)
	if err != nil {
		lis.Close()
		return err
	}
	return srv.ServeWith(ctx, lis, r, c.drain)
}

// assemble prepares every part, registers them with a router and their
// services with the listener, and collects what they describe.
func (c *Component) assemble(ctx context.Context) (*server.Server, *parts.Router, error) {
	if err := errors.Join(c.errs...); err != nil {
		return nil, nil, err
	}
	if len(c.nodes) == 0 {
		return nil, nil, fmt.Errorf("compose: component %q has no parts", c.name)
	}
	for k, v := range c.preset {
		if err := c.settings.store.Set(ctx, k, v); err != nil {
			return nil, nil, fmt.Errorf("compose: PresetCache: %w", err)
		}
	}
	env := parts.Env{
		Name:           c.name,
		Kind:           c.settings.kind,
		Logger:         c.logger,
		MaxMessageSize: c.cfg.MaxMessageSize,
		Store:          c.settings.store,
		Topics:         c.topics,
		Middleware:     config.Middlewares[palm.Middleware](c.cfg),
		Dial:           c.cfg.Dial(),
		TLS:            c.cfg.TLS,
		AuthorizeHTTP:  server.HTTPAuth(c.cfg),
	}
	r := parts.NewRouter(c.logger)
	for _, n := range c.nodes {
		if p, ok := n.part.(parts.Preparer); ok {
			if err := p.Prepare(env); err != nil {
				return nil, nil, fmt.Errorf("compose: part %q: %w", n.name, err)
			}
		}
		var err error
		switch n.kind {
		case kindInbound:
			err = r.Inbound(n.name, n.part, n.route)
		case kindOutbound:
			err = r.Outbound(n.name, n.part, n.route, 0)
		default:
			err = r.Bypass(n.name, n.part)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	if err := r.Check(); err != nil {
		return nil, nil, fmt.Errorf("compose: component %q: %w", c.name, err)
	}
	srv := server.New(c.cfg, c.logger)
	c.srv.Store(srv)
	src := metrics.Source{Kind: c.settings.kind, Meter: r}
	for _, n := range c.nodes {
		reg := &registrar{srv: srv}
		if s, ok := n.part.(parts.Service); ok {
			s.RegisterServices(reg)
		}
		info := metrics.Part{Name: n.name, Kind: n.kind, Route: n.route, Services: reg.names}
		if d, ok := n.part.(parts.Describer); ok {
			var desc parts.Description
			d.Describe(&desc)
			if err := merge(&src, desc); err != nil {
				return nil, nil, fmt.Errorf("compose: part %q: %w", n.name, err)
			}
			info.Notes = desc.Notes
		}
		src.Parts = append(src.Parts, info)
	}
	c.topics.RegisterServices(&registrar{srv: srv})
	var desc parts.Description
	c.topics.Describe(&desc)
	if err := merge(&src, desc); err != nil {
		return nil, nil, err
	}
	srv.Observe(c.name, src)
	return srv, r, nil
}

// merge adds what a part describes to the component's source.
func merge(src *metrics.Source, d parts.Description) error {
	for _, st := range d.Stats {
		if err := parts.CheckStat(st); err != nil {
			return err
		}
		if slices.ContainsFunc(src.Stats, func(o metrics.Stat) bool { return o.Name == st.Name }) {
			return fmt.Errorf("stat %q is reported by another part too; a stat name must be unique in a component", st.Name)
		}
		src.Stats = append(src.Stats, metrics.Stat{Name: st.Name, Help: st.Help, Counter: st.Counter, Read: st.Read})
	}
	if f := d.Functions; f != nil {
		if prev := src.Functions; prev != nil {
			src.Functions = func() []string { return append(prev(), f()...) }
		} else {
			src.Functions = f
		}
	}
	if w := d.Workers; w != nil {
		prev := src.Roster
		src.Roster = func() []metrics.Worker {
			var ws []metrics.Worker
			if prev != nil {
				ws = prev()
			}
			for _, s := range w() {
				ws = append(ws, metrics.Worker{Name: s.Name, Functions: s.Functions})
			}
			return ws
		}
	}
	src.Upstreams = append(src.Upstreams, d.Upstreams...)
	src.Pipelined = src.Pipelined || d.Pipelined
	return nil
}

// registrar registers a part's services with the listener and keeps their
// names for InfoService.
type registrar struct {
	srv   *server.Server
	names []string
}

func (r *registrar) RegisterService(desc *grpc.ServiceDesc, impl any) {
	r.srv.Register(desc, impl)
	r.names = append(r.names, desc.ServiceName)
}

func (r *registrar) Unreported(desc *grpc.ServiceDesc, impl any) {
	r.srv.Unreported(desc, impl)
	r.names = append(r.names, desc.ServiceName)
}

// drain drains the parts in order, inbound, outbound, bypass, then closes
// the publisher, within ctx. The inbound parts may take four fifths of
// what is left, so that the outbound parts (a master's workers) keep a
// fifth to finish what they hold and leave, even when a message still
// waits for a worker that never comes.
func (c *Component) drain(ctx context.Context) error {
	var errs []error
	for _, kind := range []string{kindInbound, kindOutbound, kindBypass} {
		stage := ctx
		if deadline, ok := ctx.Deadline(); ok && kind == kindInbound {
			var cancel context.CancelFunc
			stage, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(deadline)*4/5))
			defer cancel()
		}
		errs = append(errs, c.drainKind(stage, kind))
	}
	c.topics.Close()
	return errors.Join(errs...)
}

// drainKind drains the parts of one kind at once and waits for them all.
func (c *Component) drainKind(ctx context.Context, kind string) error {
	errs := make(chan error, len(c.nodes))
	n := 0
	for _, node := range c.nodes {
		if d, ok := node.part.(parts.Drainer); ok && node.kind == kind {
			n++
			go func() {
				if err := d.Drain(ctx); err != nil {
					errs <- fmt.Errorf("part %q: %w", node.name, err)
					return
				}
				errs <- nil
			}()
		}
	}
	var all []error
	for range n {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}
