package parts

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/backoff"
	"github.com/gopalm/palm/internal/drain"
	"github.com/gopalm/palm/internal/route"
)

// Upstream is a component a stage takes its messages from: the address of
// its PublisherService and the topic to subscribe to there (the original's
// sub_address and previous).
type Upstream struct {
	Address string
	Topic   string
}

func (u Upstream) String() string { return u.Topic + "@" + u.Address }

// Detached is implemented by Origins that take completions only. A message
// that came from one has nobody waiting for its replies: Replies publishes
// them by topic, errors included, and delivers only the completion.
type Detached interface {
	Origin
	Detached()
}

// Default bounds of the delay before a Subscriber subscribes again.
const (
	DefaultBackoffMin = 50 * time.Millisecond
	DefaultBackoffMax = 2 * time.Second
)

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	// Name is the subscribing component's name, sent to the publishers.
	Name string
	// Upstreams are the components to subscribe to, at least one.
	Upstreams []Upstream
	// Dial are the options for the connections to the upstreams.
	Dial []grpc.DialOption
	// Known reports whether this component serves a function; a message
	// whose current step names another component, or a function Known
	// refuses, is refused. nil accepts every function.
	Known func(function string) bool
	// MaxPayload is the largest payload accepted, in bytes; 0 for no limit.
	MaxPayload int
	// Refused names the outbound part that takes messages that are refused
	// or that carry an error from an earlier step: they skip this
	// component's functions and go on towards the client. Required.
	Refused string
	// BackoffMin and BackoffMax bound the delay before subscribing again
	// after a subscription broke; 0 means the defaults.
	BackoffMin, BackoffMax time.Duration
	// Logger; nil is quiet.
	Logger hclog.Logger
}

// Subscriber is the inbound part of a stage that takes its messages from
// the PublisherService of the components before it instead of from
// clients: a Pipeline, a Sink, a Hub.
//
// It keeps one subscription per upstream, and subscribes again by itself
// when one breaks (the upstream restarted, the network failed), after a
// backoff. Every publication is sent into the router before the next one
// is read, so a stage that cannot keep up slows its upstreams (their
// subscriber queues fill and they wait) instead of losing messages.
//
// What an upstream published under the topic while the subscription was
// broken never reaches the stage. The upstream counts what it publishes
// under each topic; on subscribing again the Subscriber compares the count
// with the one of its last subscription and what it received since, logs
// the difference as a warning and adds it to Missed. When the upstream
// itself restarted, what its new run published before the subscription is
// counted; what the old run published after the break is not known.
type Subscriber struct {
	cfg    SubscriberConfig
	check  route.Check
	logger hclog.Logger

	origin  *detached
	stop    context.CancelFunc // ends the subscriptions (Drain)
	stopped context.Context

	missed    atomic.Uint64
	connected atomic.Int64
}

// NewSubscriber returns a Subscriber; register it as an inbound part.
func NewSubscriber(cfg SubscriberConfig) (*Subscriber, error) {
	if len(cfg.Upstreams) == 0 {
		return nil, errors.New("parts: a subscriber needs at least one upstream")
	}
	for _, u := range cfg.Upstreams {
		if u.Address == "" {
			return nil, fmt.Errorf("parts: upstream %q has no address", u.Topic)
		}
		if err := checkTopics([]string{u.Topic}); err != nil {
			return nil, fmt.Errorf("parts: upstream at %s: %s", u.Address, status.Convert(err).Message())
		}
	}
	if cfg.Refused == "" {
		return nil, errors.New("parts: a subscriber needs a part for refused messages")
	}
	cfg.BackoffMin, cfg.BackoffMax = backoffBounds(cfg.BackoffMin, cfg.BackoffMax)
	ctx, cancel := context.WithCancel(context.Background())
	return &Subscriber{
		cfg:     cfg,
		check:   route.Check{Server: cfg.Name, MaxPayload: cfg.MaxPayload, Known: cfg.Known},
		logger:  orQuiet(cfg.Logger),
		origin:  &detached{gate: drain.New()},
		stop:    cancel,
		stopped: ctx,
	}, nil
}

// Missed is the number of messages the upstreams published under the
// subscribed topics while a subscription was broken, as they reported on
// subscribing again.
func (s *Subscriber) Missed() uint64 { return s.missed.Load() }

// Connected is the number of subscriptions in place now.
func (s *Subscriber) Connected() int { return int(s.connected.Load()) }

// Run subscribes to every upstream and sends what they publish into the
// router until ctx ends or Drain is called.
func (s *Subscriber) Run(ctx context.Context, link *Link) error {
	s.origin.ctx = ctx
	recvCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.stopped, cancel)()
	var wg sync.WaitGroup
	conns := make([]*grpc.ClientConn, 0, len(s.cfg.Upstreams))
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, u := range s.cfg.Upstreams {
		conn, err := grpc.NewClient(u.Address, s.cfg.Dial...)
		if err != nil {
			return fmt.Errorf("upstream %s: %w", u, err)
		}
		conns = append(conns, conn)
		wg.Go(func() { s.follow(recvCtx, link, u, palmv1.NewPublisherServiceClient(conn)) })
	}
	wg.Wait()
	<-ctx.Done()
	return nil
}

// Drain ends the subscriptions and waits until every message received is
// finished, or ctx ends. The upstreams count what they still had queued for
// this stage as dropped.
func (s *Subscriber) Drain(ctx context.Context) error {
	s.stop()
	return s.origin.gate.Drain(ctx)
}

// follow keeps a subscription to u until ctx ends.
func (s *Subscriber) follow(ctx context.Context, link *Link, u Upstream, pub palmv1.PublisherServiceClient) {
	l := s.logger.With("upstream", u.Address, "topic", u.Topic)
	var last tally
	b := backoff.New(s.cfg.BackoffMin, s.cfg.BackoffMax)
	for ctx.Err() == nil {
		confirmed, err := s.subscribe(ctx, link, u, pub, l, &last)
		if ctx.Err() != nil {
			return
		}
		if confirmed {
			b.Reset()
		}
		wait := b.Fail()
		level := hclog.Debug
		if b.Failures() == 1 {
			level = hclog.Warn
		}
		l.Log(level, "subscription broke; subscribing again", "error", err, "retry_in", wait)
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}

// tally is what a Subscriber knows of its last subscription to an
// upstream: the upstream's run, what it had published under the topic
// before the subscription (-1: not counted), and what came since.
type tally struct {
	instance  string
	published int64
	received  uint64
}

// account compares a new confirmation with the last subscription, counts
// and logs what was missed in between, and starts a new tally.
func (s *Subscriber) account(first *palmv1.SubscribeResponse, topic string, last *tally, l hclog.Logger) {
	published := int64(-1)
	if n, ok := first.GetPublished()[topic]; ok {
		published = int64(n)
	}
	switch {
	case last.instance == "":
		l.Info("subscribed")
	case published < 0:
		l.Warn("subscribed again; the upstream does not count this topic, so what was missed while away is unknown")
	case first.GetInstance() != last.instance:
		// What the old run sent after the break died with it, uncounted.
		s.missed.Add(uint64(published))
		if published > 0 {
			l.Warn("subscribed again to a restarted upstream; messages it published under the topic before this subscription are lost", "missed", published)
		} else {
			l.Info("subscribed again to a restarted upstream; nothing missed")
		}
	case last.published >= 0:
		missed := published - last.published - int64(last.received)
		if missed > 0 {
			s.missed.Add(uint64(missed))
			l.Warn("subscribed again; messages published under the topic while the subscription was broken are lost", "missed", missed)
		} else {
			l.Info("subscribed again; nothing missed")
		}
	default:
		l.Info("subscribed again")
	}
	*last = tally{instance: first.GetInstance(), published: published}
}

// subscribe runs one subscription to u; it reports whether the upstream
// confirmed it, and why it ended.
func (s *Subscriber) subscribe(ctx context.Context, link *Link, u Upstream, pub palmv1.PublisherServiceClient, l hclog.Logger, last *tally) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := pub.Subscribe(ctx, &palmv1.SubscribeRequest{Topics: []string{u.Topic}, Subscriber: s.cfg.Name}, grpc.WaitForReady(true))
	if err != nil {
		return false, err
	}
	first, err := stream.Recv()
	if err != nil {
		return false, err
	}
	if !first.GetSubscribed() {
		return false, status.Error(codes.Internal, "the upstream sent messages before confirming the subscription")
	}
	s.account(first, u.Topic, last, l)
	s.connected.Add(1)
	defer s.connected.Add(-1)
	for {
		resp, err := stream.Recv()
		if err != nil {
			return true, err
		}
		for _, p := range resp.GetPublications() {
			last.received++
			if err := s.admit(ctx, link, p.GetMessage()); err != nil {
				return true, err
			}
		}
	}
}

// admit sends m into the router, or, when it fails the check or carries an
// error, to the part for refused messages.
func (s *Subscriber) admit(ctx context.Context, link *Link, m *palmv1.PalmMessage) error {
	if m == nil {
		return nil
	}
	o := s.origin
	o.gate.Hold(1) // what the upstream sent is finished, even while draining
	e := Envelope{Msg: m, Origin: o, Sequence: m.GetSequence(), Done: true}
	if m.GetError() != nil {
		return o.send(ctx, link, s.cfg.Refused, e)
	}
	step, err := s.check.Admit(m)
	if err != nil {
		s.logger.Debug("message refused", "function", m.GetFunction(), "stage", m.GetStage(), "error", err)
		e.Msg = &palmv1.PalmMessage{
			Pipeline: m.GetPipeline(), Client: m.GetClient(), Stage: m.GetStage(),
			Function: m.GetFunction(), Cache: m.GetCache(), Sequence: m.GetSequence(),
			Error: route.ErrorOf(err, step),
		}
		return o.send(ctx, link, s.cfg.Refused, e)
	}
	e.Step, e.Done = step, false
	return o.send(ctx, link, "", e)
}

// detached is the Origin of every message a Subscriber receives: it counts
// them until they are finished.
type detached struct {
	ctx  context.Context
	gate *drain.Gate
}

func (o *detached) Context() context.Context { return o.ctx }

func (o *detached) Detached() {}

func (o *detached) Deliver(_ context.Context, e Envelope) error {
	if e.Done {
		o.release()
	}
	return nil
}

func (o *detached) release() { o.gate.Leave(1) }

// send sends e to the part named to ("" for the link's route), releasing
// it when it cannot be sent.
func (o *detached) send(ctx context.Context, link *Link, to string, e Envelope) error {
	var err error
	if to == "" {
		err = link.Send(ctx, e)
	} else {
		err = link.SendTo(ctx, to, e)
	}
	if err != nil {
		o.release()
	}
	return err
}
