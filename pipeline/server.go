package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/gopalm/palm/compose"
	"github.com/gopalm/palm/internal/assemble"
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
// name is empty or holds a dot or a space, or when an option's value is
// invalid.
func NewServer(name string, opts ...ServerOption) (*Server, error) {
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
	gw := parts.NewGateway(parts.GatewayConfig{Known: s.known, Window: s.settings.window, WindowBytes: s.settings.windowBytes})
	var web parts.Part
	if addr := s.settings.httpAddress; addr != "" {
		h, err := parts.NewHTTPGateway(parts.HTTPGatewayConfig{Address: addr, Known: s.known})
		if err != nil {
			lis.Close()
			return err
		}
		web = h
	}
	return s.serve(ctx, lis, compose.Pull, gw, web)
}

func (c *core) listenAndServe(ctx context.Context, addr string, serve func(context.Context, net.Listener) error) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pipeline: %s %s: %w", c.kind, c.name, err)
	}
	return serve(ctx, lis)
}

// serve composes the component, in → Functions → Pub with a Cache, and
// serves it on lis until ctx ends.
func (c *core) serve(ctx context.Context, lis net.Listener, inName string, in, web parts.Part) error {
	if !c.served.CompareAndSwap(false, true) {
		lis.Close()
		return errors.New("pipeline: Serve called twice")
	}
	kind := strings.ToLower(c.kind)
	comp, err := assemble.Component(assemble.Spec{
		Name: c.name, Kind: kind, Config: c.cfg, Store: c.settings.store, Queue: c.settings.queue,
		In: in, InName: inName, HTTP: web,
		Work:     &parts.Functions{Lookup: c.lookup, Names: c.names, Concurrency: c.settings.concurrency},
		WorkName: compose.Functions,
		Pub:      &parts.Replies{Handle: c.settings.handle, Pipelined: c.settings.pipelined},
		// Listed for grpcurl, but not reported serving: workers go to
		// masters.
		Extra: map[string]parts.Part{"NoWorkers": noWorkers{name: c.name, kind: kind}},
	})
	if err != nil {
		lis.Close()
		return err
	}
	return comp.Serve(ctx, lis)
}
