package client

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/internal/reach"
)

// FirstConnectTimeout bounds how long a call waits for a connection that
// has never been ready to be made, when WaitForServer is not given: an
// address where connection attempts go unanswered (a firewall that drops
// them) fails after it rather than at the call's deadline.
const FirstConnectTimeout = 10 * time.Second

// WaitForServer makes a Client's first calls wait up to d for the server
// to come up, rather than fail at once when nothing answers: until the
// connection has been ready once, each call waits for it, at most d and
// at most until its context ends, logging "waiting for ADDRESS…" at Info
// when the first attempt fails. d must be positive. It applies to the
// SubAddress connection too.
//
// Default: a call made while the connection has never been ready fails at
// once with Unavailable when the connection attempt fails (nothing
// listens, TLS on one side and plaintext on the other, a missing or
// refused client certificate), as an error that names the problem and
// its fix; an attempt that goes unanswered fails after
// FirstConnectTimeout. Once the connection has been ready, every call
// waits for it to come back whatever this option says (a server that
// restarts during a Job loses nothing), until the call's context ends.
func WaitForServer(d time.Duration) palm.Option {
	return config.Role("client.WaitForServer", func(s *settings) { s.wait, s.hasWait = d, true })
}

// reconnect paces gRPC's attempts to make a connection again: a server
// that comes up, or comes back, is found within MaxDelay.
var reconnect = grpc.WithConnectParams(grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
	MinConnectTimeout: 20 * time.Second,
})

// failFast makes a call fail when the connection is in transient failure
// rather than wait for it, overriding the Client's default WaitForReady.
var failFast = []grpc.CallOption{grpc.WaitForReady(false)}

// readiness watches one connection of a Client, as its interceptors:
// until the connection has been ready once, a call waits for the attempt
// to connect (or, with WaitForServer, for the server) and fails with a
// *reach.Error naming the problem; afterwards calls pass untouched, and
// wait for the connection as the Client's default WaitForReady says.
type readiness struct {
	address string
	tls     bool          // the connection dials with TLS
	wait    time.Duration // WaitForServer; 0 to fail fast
	log     hclog.Logger

	ready  atomic.Bool // the connection has been ready once
	warned atomic.Bool // "waiting for" was logged
}

// dialOptions are the interceptors of r.
func (r *readiness) dialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(r.unary),
		grpc.WithChainStreamInterceptor(r.stream),
	}
}

func (r *readiness) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoke grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	extra, err := r.before(ctx, cc)
	if err != nil {
		return err
	}
	return r.after(ctx, cc, invoke(ctx, method, req, reply, cc, append(opts, extra...)...))
}

func (r *readiness) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	extra, err := r.before(ctx, cc)
	if err != nil {
		return nil, err
	}
	s, err := streamer(ctx, desc, cc, method, append(opts, extra...)...)
	return s, r.after(ctx, cc, err)
}

// before waits, while the connection has never been ready, until it is,
// or until its attempt fails (then the call is made fail-fast, so that it
// fails with gRPC's reason), or the bound passes. Once the connection has
// been ready it returns at once.
func (r *readiness) before(ctx context.Context, cc *grpc.ClientConn) ([]grpc.CallOption, error) {
	if r.ready.Load() {
		return nil, nil
	}
	bound := FirstConnectTimeout
	if r.wait > 0 {
		bound = r.wait
	}
	wctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	for {
		cc.Connect() // leaves idle; a no-op otherwise
		s := cc.GetState()
		switch {
		case s == connectivity.Ready:
			r.ready.Store(true)
			return nil, nil
		case s == connectivity.Shutdown:
			return failFast, nil // the call fails as gRPC says: the Client is closed
		case s == connectivity.TransientFailure && r.wait == 0:
			return failFast, nil
		case s == connectivity.TransientFailure && r.warned.CompareAndSwap(false, true):
			r.log.Info("waiting for "+r.address+"…", "up_to", r.wait)
		}
		if cc.WaitForStateChange(wctx, s) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, status.FromContextError(err).Err()
		}
		if s == connectivity.TransientFailure {
			return failFast, nil // the call fails with the reason of the last attempt
		}
		return nil, &reach.Error{Address: r.address, Problem: reach.NoAnswer, Hint: r.hint(reach.NoAnswer, bound)}
	}
}

// after notes that the connection has been ready, or explains the error
// of a call on a connection that never was.
func (r *readiness) after(ctx context.Context, cc *grpc.ClientConn, err error) error {
	if err == nil {
		r.ready.Store(true)
		return nil
	}
	if r.ready.Load() {
		return err
	}
	if cc.GetState() == connectivity.Ready {
		r.ready.Store(true) // the server answered, with an error
		return err
	}
	var re *reach.Error
	if status.Code(err) != codes.Unavailable || errors.As(err, &re) {
		return err
	}
	p := reach.Diagnose(err)
	if !r.tls {
		p = reach.Probe(ctx, r.address, p)
	}
	return &reach.Error{Address: r.address, Problem: p, Hint: r.hint(p, r.wait), Cause: err}
}

// hint says how to fix p, in terms of the client's options.
func (r *readiness) hint(p reach.Problem, waited time.Duration) string {
	switch p {
	case reach.Refused:
		if r.wait > 0 {
			return "it did not come up within " + waited.String() + " (client.WaitForServer)"
		}
		return "is the server running, at that address? client.WaitForServer waits for it to come up"
	case reach.NoHost:
		return "check the address's host name"
	case reach.NoAnswer:
		return "no connection within " + waited.String() + "; is the address right, and reachable from here?"
	case reach.WantsTLS:
		return "dial it with TLS (palm.WithTLS)"
	case reach.NoTLS:
		return "dial it without palm.WithTLS"
	case reach.CertRequired:
		return "give a client certificate in palm.WithTLS (palm.TLSFiles Cert and Key)"
	case reach.ClientUntrusted:
		return "give a client certificate signed by a CA the server trusts"
	case reach.ServerUntrusted:
		return "trust the CA that signed it (palm.TLSFiles CACert), or set the name it was issued for (ServerName)"
	case reach.NotGRPC:
		return "is it a palm component?"
	}
	return ""
}
