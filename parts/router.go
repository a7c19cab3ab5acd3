package parts

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// DefaultQueue is the inbox size of an outbound part registered with a
// queue size of 0.
const DefaultQueue = 1024

// Envelope is what travels through a router: a message and the Origin that
// its replies and its completion go back to.
type Envelope struct {
	// Msg is the message. It may be nil on an envelope that only reports
	// completion (Done) of a message that produced nothing.
	Msg *palmv1.PalmMessage
	// Origin is where the message entered this server; nil when it came from
	// somewhere that expects nothing back.
	Origin Origin
	// Sequence is the client's number of the message this envelope derives
	// from, as it entered the server.
	Sequence uint64
	// Step is the step the message asks of this server, when the part that
	// let it in has already parsed it; the zero Step when not.
	Step Step
	// Done marks the last envelope derived from an entering message: once it
	// is delivered the message is finished in this server.
	Done bool
	// Deadline is when the message stops being worth working on (the
	// client's deadline, as the part that let it in learnt it); the zero
	// time for none.
	Deadline time.Time
}

// Origin is the place a message entered a server, to which replies and
// completion are delivered (a client's stream, a waiting Eval call).
type Origin interface {
	// Context is the context of the call the message came with; it ends when
	// the caller goes away. Parts pass it to user functions and skip work
	// whose origin has ended.
	Context() context.Context
	// Deliver hands a reply (e.Msg, when not nil) and, when e.Done is set,
	// the completion of e.Sequence back to the caller. It may wait for room
	// in a bounded queue, until ctx or the origin's context ends, and
	// reports an error when the envelope could not be delivered.
	Deliver(ctx context.Context, e Envelope) error
}

// Part is a component of a server. Run is called once by Router.Run and
// must return when ctx ends.
type Part interface {
	Run(ctx context.Context, link *Link) error
}

// PartFunc adapts a function to a Part.
type PartFunc func(ctx context.Context, link *Link) error

// Run calls f.
func (f PartFunc) Run(ctx context.Context, link *Link) error { return f(ctx, link) }

type kind int

const (
	inbound kind = iota
	outbound
	bypass
)

func (k kind) String() string {
	return [...]string{"inbound", "outbound", "bypass"}[k]
}

type node struct {
	name  string
	kind  kind
	part  Part
	route string
	inbox chan Envelope
	link  *Link
}

// Router connects parts by name. Register every part, then call Run once.
// Registration is not safe for concurrent use; Run and the links it hands to
// parts are.
type Router struct {
	meter   *meter
	logger  hclog.Logger
	nodes   map[string]*node
	order   []*node
	started bool
}

// NewRouter returns an empty router that logs through logger (nil: quiet).
func NewRouter(logger hclog.Logger) *Router {
	logger = orQuiet(logger)
	return &Router{logger: logger, nodes: map[string]*node{}, meter: newMeter()}
}

// Steps calls f with the messages counted through the router, by step:
// in as its inbound parts send them, out and failed as Replies sends them
// on.
func (r *Router) Steps(f func(step string, in, out, failed uint64)) { r.meter.Steps(f) }

// ErrUnknownPart is returned when a route or a SendTo names no registered part.
var ErrUnknownPart = errors.New("parts: no such part")

func (r *Router) add(name string, k kind, p Part, route string, queue int) error {
	switch {
	case r.started:
		return fmt.Errorf("parts: cannot register %q: the router is running", name)
	case name == "":
		return errors.New("parts: a part needs a name")
	case p == nil:
		return fmt.Errorf("parts: part %q is nil", name)
	case r.nodes[name] != nil:
		return fmt.Errorf("parts: a part named %q is already registered", name)
	case queue < 0:
		return fmt.Errorf("parts: part %q: negative queue size %d", name, queue)
	}
	n := &node{name: name, kind: k, part: p, route: route}
	if k == outbound {
		if queue == 0 {
			queue = DefaultQueue
		}
		n.inbox = make(chan Envelope, queue)
	}
	r.nodes[name] = n
	r.order = append(r.order, n)
	return nil
}

// Inbound registers a part that sends messages into the router, to the
// outbound part named route.
func (r *Router) Inbound(name string, p Part, route string) error {
	return r.add(name, inbound, p, route, 0)
}

// Outbound registers a part that receives messages from the router through
// an inbox of queue envelopes (0: DefaultQueue) and sends what it produces
// to the part named route ("" when it sends nothing on).
func (r *Router) Outbound(name string, p Part, route string, queue int) error {
	return r.add(name, outbound, p, route, queue)
}

// Bypass registers a part that runs beside the router without exchanging
// messages with it (the cache service, for instance).
func (r *Router) Bypass(name string, p Part) error {
	return r.add(name, bypass, p, "", 0)
}

// Check reports a route that names no registered outbound part, naming
// the part and the route. Run checks the same before it starts any part.
func (r *Router) Check() error {
	for _, n := range r.order {
		if n.route == "" {
			continue
		}
		if t := r.nodes[n.route]; t == nil || t.kind != outbound {
			return fmt.Errorf("parts: %s part %q routes to %q, which is not a registered outbound part (registered: %s): %w", n.kind, n.name, n.route, r.outbounds(), ErrUnknownPart)
		}
	}
	return nil
}

// outbounds lists the outbound parts' names, for errors.
func (r *Router) outbounds() string {
	var names []string
	for _, n := range r.order {
		if n.kind == outbound {
			names = append(names, strconv.Quote(n.name))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// Run checks the routes, starts every part in its own goroutine and waits
// until ctx ends and every part has returned. It returns the first error a
// part returned other than the context's.
func (r *Router) Run(ctx context.Context) error {
	if r.started {
		return errors.New("parts: Run called twice")
	}
	if err := r.Check(); err != nil {
		return err
	}
	r.started = true
	for _, n := range r.order {
		n.link = &Link{router: r, node: n}
		if n.route != "" {
			n.link.out = r.nodes[n.route].inbox
		}
	}
	r.logger.Info("starting the router", "parts", len(r.order))
	for _, n := range r.order {
		to := n.route
		switch {
		case n.kind == bypass:
			to = "-"
		case to == "":
			to = "exterior"
		}
		r.logger.Info("starting "+n.kind.String()+" part", "part", n.name, "connects_to", to)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, n := range r.order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := n.part.Run(ctx, n.link)
			if err != nil && ctx.Err() == nil {
				r.logger.Error("part stopped", "part", n.name, "error", err)
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("part %q: %w", n.name, err)
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// Link is a part's connection to the router.
type Link struct {
	router *Router
	node   *node
	out    chan Envelope
}

// Name is the part's name.
func (l *Link) Name() string { return l.node.name }

// Route is the name of the part the part sends to; "" when none.
func (l *Link) Route() string { return l.node.route }

// Inbox is the channel the part receives from; nil for inbound and bypass
// parts.
func (l *Link) Inbox() <-chan Envelope { return l.node.inbox }

// Send sends e to the part's route, waiting for room in its inbox until ctx
// ends. It fails when the part has no route.
func (l *Link) Send(ctx context.Context, e Envelope) error {
	if l.out == nil {
		return fmt.Errorf("parts: part %q has no route", l.node.name)
	}
	if l.node.kind == inbound {
		l.router.meter.in(e.Step)
	}
	select {
	case l.out <- e:
		return nil
	default:
	}
	select {
	case l.out <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SendTo sends e to the outbound part named name, as Send does.
func (l *Link) SendTo(ctx context.Context, name string, e Envelope) error {
	t := l.router.nodes[name]
	if t == nil || t.kind != outbound {
		return fmt.Errorf("%w: %q", ErrUnknownPart, name)
	}
	select {
	case t.inbox <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
