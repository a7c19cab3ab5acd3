package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/metrics"
	"github.com/gopalm/palm/internal/server"
	"github.com/gopalm/palm/parts"
)

// Server is the standalone server: it calls the function a message names
// and sends the result back to the client that sent it (or, Pipelined, on
// to the next step of a pipeline). A function that returns nothing sends
// nothing on.
//
// Register functions with Handle or HandleFunc, then call Serve (or
// ListenAndServe) once. A Server's methods are safe for concurrent use.
type Server struct {
	*core
}

// NewServer returns a Server named name. It does no I/O. It fails when the
// name is empty or holds a dot or a space, or when an option is invalid or
// meant for another kind of component.
func NewServer(name string, opts ...palm.Option) (*Server, error) {
	c, err := newCore("Server", name, opts)
	if err != nil {
		return nil, err
	}
	return &Server{c}, nil
}

// ListenAndServe listens on the TCP address addr and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	return s.listenAndServe(ctx, addr, s.Serve)
}

// Serve serves the server's services on lis until ctx ends, then stops:
// it reports NOT_SERVING, refuses new messages, finishes those it holds and
// sends their replies, all within the stop timeout (palm.WithStopTimeout,
// default 10 s), and closes lis. It returns nil after a stop caused by ctx,
// or the error that made serving fail. Serve may be called once.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	gw := parts.NewGateway(parts.GatewayConfig{
		Server:      s.name,
		Known:       s.known,
		MaxPayload:  s.cfg.MaxMessageSize,
		Window:      s.settings.window,
		WindowBytes: s.settings.windowBytes,
		Logger:      s.logger,
	})
	return s.serve(ctx, lis, gw, gw.Drain, func(srv *server.Server) {
		srv.Register(&palmv1.GatewayService_ServiceDesc, gw)
	})
}

func (c *core) listenAndServe(ctx context.Context, addr string, serve func(context.Context, net.Listener) error) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pipeline: %s %s: %w", c.kind, c.name, err)
	}
	return serve(ctx, lis)
}

// serve runs the component: in → functions → replies, with the services
// register adds, until ctx ends; drain stops the intake at the end.
func (c *core) serve(ctx context.Context, lis net.Listener, in parts.Part, drain func(context.Context) error, register func(*server.Server)) error {
	if !c.served.CompareAndSwap(false, true) {
		lis.Close()
		return errors.New("pipeline: Serve called twice")
	}
	var srv *server.Server // made below, before anything is published
	topics := parts.NewTopicsWith(parts.TopicsConfig{
		Queue:                 c.settings.queue,
		SlowSubscriberTimeout: c.cfg.SlowSubscriberTimeout,
		InTransit:             c.cfg.InTransit(),
		Name:                  c.name,
		OnStall:               func(stalled bool) { srv.PublisherStalled(stalled) },
		Logger:                c.logger,
	})
	handle := c.settings.handle
	if handle == nil && c.settings.pipelined {
		handle = parts.NextStage(c.name)
	}
	r := parts.NewRouter(c.logger)
	if err := errors.Join(
		r.Inbound(parts.InboundName(in), in, "functions"),
		r.Outbound("functions", &parts.Functions{Lookup: c.lookup, Concurrency: c.settings.concurrency, Logger: c.logger}, "replies", 0),
		r.Outbound("replies", &parts.Replies{Handle: handle, Publisher: topics, Logger: c.logger}, "", 0),
	); err != nil {
		lis.Close()
		return err
	}
	srv = server.New(c.cfg, c.logger)
	srv.Observe(c.name, metrics.Source{
		Kind:            strings.ToLower(c.kind),
		Meter:           r.Meter(),
		Subscribers:     topics.Subscribers,
		SubscriberQueue: topics.Queued,
		Dropped:         topics.Dropped,
		SlowCut:         topics.SlowCut,
		Missed:          c.missed,
		CacheKeys:       metrics.CacheKeys(c.settings.store),
		Functions:       c.functions,
		Upstreams:       c.upstreams,
		Pipelined:       c.settings.handle == nil && c.settings.pipelined,
	})
	register(srv)
	srv.Register(&palmv1.PublisherService_ServiceDesc, topics)
	srv.RegisterCache(c.settings.store)
	// Listed for grpcurl, but not reported serving: workers go to masters.
	palmv1.RegisterDispatchServiceServer(srv.GRPC, noWorkers{name: c.name, kind: strings.ToLower(c.kind)})
	return srv.ServeWith(ctx, lis, r, func(ctx context.Context) error {
		err := drain(ctx)
		topics.Close()
		return err
	})
}
