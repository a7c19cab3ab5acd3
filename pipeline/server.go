package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/internal/server"
	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/parts"
)

// Server is the standalone server: it calls the function a message names
// and sends the result back to the client that sent it. A function that
// returns nothing sends nothing back.
//
// Register functions with Handle or HandleFunc, then call Serve (or
// ListenAndServe) once. Functions may be registered at any time, also while
// serving. A Server's methods are safe for concurrent use.
type Server struct {
	name     string
	cfg      *config.Config
	settings serverSettings
	logger   hclog.Logger
	store    kv.Store

	mu       sync.Mutex // serializes Handle
	handlers atomic.Pointer[map[string]palm.Handler]
	served   atomic.Bool
}

type serverSettings struct {
	pipelined   bool
	queue       int
	concurrency int
	window      int
	store       kv.Store
	handle      parts.StreamHandler
}

// Concurrency sets how many function calls a Server runs at once. Default:
// 1, which keeps each client's replies in the order it sent its messages;
// with more, replies may come back in another order.
func Concurrency(n int) palm.Option {
	return config.Role("pipeline.Concurrency", func(s *serverSettings) { s.concurrency = n })
}

// Window sets how many unfinished messages a Server takes from one client
// stream before it stops reading from it. Default: 1024.
func Window(n int) palm.Option {
	return config.Role("pipeline.Window", func(s *serverSettings) { s.window = n })
}

// Pipelined makes the server send each result on to the next step of a
// pipeline instead of back to the client: it publishes the result under the
// server's own name with the stage moved one on (the original's
// pipelined=True), for the next component to subscribe to. Error replies
// still go back to the client.
func Pipelined() palm.Option {
	return config.Role("pipeline.Pipelined", func(s *serverSettings) { s.pipelined = true })
}

// SubscriberQueue sets how many published messages wait for one subscriber
// before the server waits for it (backpressure: a slow subscriber slows the
// server; nothing is dropped). Default: 1024.
func SubscriberQueue(n int) palm.Option {
	return config.Role("pipeline.SubscriberQueue", func(s *serverSettings) { s.queue = n })
}

// WithStore sets the key-value store behind the server's cache. Default: a
// new in-memory store of the server's own (kv.NewMemory).
func WithStore(store kv.Store) palm.Option {
	return config.Role("pipeline.WithStore", func(s *serverSettings) { s.store = store })
}

// HandleStream sets the server's handle_stream hook: it picks the topic each
// result is sent under and may change the message. Default: the client's id,
// which sends the result back to the client. Returning a nil message sends
// nothing. Error replies always go back to the client.
func HandleStream(f func(msg *palmv1.PalmMessage) (topic string, next *palmv1.PalmMessage)) palm.Option {
	return config.Role("pipeline.HandleStream", func(s *serverSettings) { s.handle = f })
}

// NewServer returns a Server named name. It does no I/O. It fails when the
// name is empty or holds a dot or a space, or when an option is invalid or
// meant for another kind of component.
func NewServer(name string, opts ...palm.Option) (*Server, error) {
	if err := checkName("server", name); err != nil {
		return nil, err
	}
	cfg := config.New(opts)
	var st serverSettings
	if err := config.ApplyRole(cfg, "pipeline.Server", &st); err != nil {
		return nil, err
	}
	switch {
	case st.concurrency < 0:
		return nil, fmt.Errorf("pipeline: Concurrency(%d): must be at least 1", st.concurrency)
	case st.window < 0:
		return nil, fmt.Errorf("pipeline: Window(%d): must be at least 1", st.window)
	case st.queue < 0:
		return nil, fmt.Errorf("pipeline: SubscriberQueue(%d): must be at least 1", st.queue)
	}
	s := &Server{name: name, cfg: cfg, settings: st, logger: cfg.NamedLogger(name), store: st.store}
	if s.store == nil {
		s.store = kv.NewMemory()
	}
	s.handlers.Store(&map[string]palm.Handler{})
	return s, nil
}

func checkName(what, name string) error {
	if name == "" || strings.ContainsAny(name, ". \t\n") {
		return fmt.Errorf("pipeline: invalid %s name %q: it must be non-empty, with no dots or spaces", what, name)
	}
	return nil
}

// Name is the server's name.
func (s *Server) Name() string { return s.name }

// Logger is the server's named logger, for use in functions (the original's
// self.logger).
func (s *Server) Logger() hclog.Logger { return s.logger }

// Cache is the server's key-value store, the one its CacheService serves.
func (s *Server) Cache() kv.Store { return s.store }

// Handle registers h as the function named function. It panics if the name
// is empty or holds a dot or a space, if h is nil, or if the name is taken,
// as net/http's ServeMux does for such programming errors.
func (s *Server) Handle(function string, h palm.Handler) {
	if err := checkName("function", function); err != nil {
		panic(err)
	}
	if h == nil {
		panic(fmt.Sprintf("pipeline: nil handler for function %q", function))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.handlers.Load()
	if _, ok := old[function]; ok {
		panic(fmt.Sprintf("pipeline: function %q registered twice", function))
	}
	m := make(map[string]palm.Handler, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[function] = h
	s.handlers.Store(&m)
}

// HandleFunc registers f as the function named function; see Handle.
func (s *Server) HandleFunc(function string, f func(ctx context.Context, payload []byte) ([]byte, error)) {
	s.Handle(function, palm.HandlerFunc(f))
}

func (s *Server) lookup(function string) (palm.Handler, bool) {
	h, ok := (*s.handlers.Load())[function]
	return h, ok
}

// ListenAndServe listens on the TCP address addr and calls Serve.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pipeline: server %s: %w", s.name, err)
	}
	return s.Serve(ctx, lis)
}

// Serve serves the server's services on lis until ctx ends, then stops:
// it reports NOT_SERVING, refuses new messages, finishes those it holds and
// sends their replies, all within the stop timeout (palm.WithStopTimeout,
// default 10 s), and closes lis. It returns nil after a stop caused by ctx,
// or the error that made serving fail. Serve may be called once.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	if !s.served.CompareAndSwap(false, true) {
		lis.Close()
		return errors.New("pipeline: Serve called twice")
	}
	gw := parts.NewGateway(parts.GatewayConfig{
		Server:     s.name,
		Known:      func(fn string) bool { _, ok := s.lookup(fn); return ok },
		MaxPayload: s.cfg.MaxMessageSize,
		Window:     s.settings.window,
		Logger:     s.logger,
	})
	topics := parts.NewTopics(s.settings.queue, s.logger)
	handle := s.settings.handle
	if handle == nil && s.settings.pipelined {
		handle = parts.NextStage(s.name)
	}
	r := parts.NewRouter(s.logger)
	for _, err := range []error{
		r.Inbound("gateway", gw, "functions"),
		r.Outbound("functions", &parts.Functions{Lookup: s.lookup, Concurrency: s.settings.concurrency, Logger: s.logger}, "replies", 0),
		r.Outbound("replies", &parts.Replies{Handle: handle, Publisher: topics, Logger: s.logger}, "", 0),
	} {
		if err != nil {
			return err
		}
	}
	srv := server.New(s.cfg, s.logger)
	srv.Register(&palmv1.GatewayService_ServiceDesc, gw)
	srv.Register(&palmv1.PublisherService_ServiceDesc, topics)
	srv.RegisterCache(s.store)
	// Listed for grpcurl, but not reported serving: workers go to masters.
	palmv1.RegisterDispatchServiceServer(srv.GRPC, noWorkers{name: s.name})

	return srv.ServeWith(ctx, lis, r, gw.Drain)
}
