package reach

import (
	"context"
	"crypto/tls"
	"errors"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
)

// Watch watches one connection, as its interceptors (DialOptions): until
// the connection has been ready once, a call first waits for the attempt
// to connect, at most Bound (or, with Wait, for the server to come up, at
// most Wait), and a call that fails then fails with an *Error naming the
// problem. Once the connection has been ready, calls pass untouched: they
// wait for it, or not, as their own call options say.
//
// A Watch is for one connection; its methods are safe for concurrent use.
type Watch struct {
	// Address is the address dialled, for messages.
	Address string
	// TLS is the connection's TLS config; nil for plaintext. Probe uses
	// it to tell why a server closed the connection.
	TLS *tls.Config
	// Wait, when positive, makes calls wait for a server that is not up
	// yet, at most this long, logging "waiting for ADDRESS…" at Info
	// once; zero makes them fail as soon as an attempt fails.
	Wait time.Duration
	// Bound is how long, without Wait, a call waits for an attempt that
	// neither succeeds nor fails (unanswered).
	Bound time.Duration
	// Log receives the "waiting for" line; nil is quiet.
	Log hclog.Logger
	// Hint says what to do about a problem after waited; nil for none.
	Hint func(p Problem, waited time.Duration) string

	ready  atomic.Bool // the connection has been ready once
	warned atomic.Bool // "waiting for" was logged
}

// failFast makes a call fail when the connection is in transient failure
// rather than wait for it, whatever the connection's default.
var failFast = []grpc.CallOption{grpc.WaitForReady(false)}

// DialOptions are w's interceptors.
func (w *Watch) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(w.unary),
		grpc.WithChainStreamInterceptor(w.stream),
	}
}

func (w *Watch) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoke grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	deadline := time.Now().Add(w.bound())
	for first := true; ; first = false {
		extra, err := w.before(ctx, cc, deadline, first)
		if err != nil {
			return err
		}
		err = w.after(ctx, cc, invoke(ctx, method, req, reply, cc, append(opts, extra...)...))
		if !w.again(err, first) {
			return err
		}
	}
}

func (w *Watch) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	deadline := time.Now().Add(w.bound())
	for first := true; ; first = false {
		extra, err := w.before(ctx, cc, deadline, first)
		if err != nil {
			return nil, err
		}
		s, err := streamer(ctx, desc, cc, method, append(opts, extra...)...)
		if err = w.after(ctx, cc, err); !w.again(err, first) {
			return s, err
		}
	}
}

// bound is how long before waits at most.
func (w *Watch) bound() time.Duration {
	if w.Wait > 0 {
		return w.Wait
	}
	return w.Bound
}

// again reports whether a call's first attempt failed for a reason that
// waiting may cure (nothing listens yet, the name does not resolve yet),
// and the call should wait for the server and try again. A TLS mismatch
// is not cured by waiting: it fails at once, with or without Wait.
func (w *Watch) again(err error, first bool) bool {
	var re *Error
	return first && w.Wait > 0 && errors.As(err, &re) && (re.Problem == Refused || re.Problem == NoHost)
}

// before waits, while the connection has never been ready, until it is,
// or until its attempt fails (then the call is made fail-fast, so that it
// fails with gRPC's reason), or the deadline passes. With Wait, a call
// whose first attempt was refused comes back with first false: before
// then waits for the connection to be ready until the deadline, and
// makes the call fail-fast after it. Once the connection has been ready
// it returns at once.
func (w *Watch) before(ctx context.Context, cc *grpc.ClientConn, deadline time.Time, first bool) ([]grpc.CallOption, error) {
	if w.ready.Load() {
		return nil, nil
	}
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for {
		cc.Connect() // leaves idle; a no-op otherwise
		s := cc.GetState()
		switch {
		case s == connectivity.Ready:
			w.ready.Store(true)
			return nil, nil
		case s == connectivity.Shutdown:
			return failFast, nil // the call fails as gRPC says: the connection is closed
		case s == connectivity.TransientFailure && (first || w.Wait <= 0):
			return failFast, nil // the call fails with the attempt's reason
		case s == connectivity.TransientFailure && w.Log != nil && w.warned.CompareAndSwap(false, true):
			w.Log.Info("waiting for "+w.Address+"…", "up_to", w.Wait)
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
		return nil, &Error{Address: w.Address, Problem: NoAnswer, Hint: w.hint(NoAnswer)}
	}
}

// after notes that the connection has been ready, or explains the error
// of a call on a connection that never was.
func (w *Watch) after(ctx context.Context, cc *grpc.ClientConn, err error) error {
	if err == nil {
		w.ready.Store(true)
		return nil
	}
	if w.ready.Load() {
		return err
	}
	if cc.GetState() == connectivity.Ready {
		w.ready.Store(true) // the server answered, with an error
		return err
	}
	var re *Error
	if status.Code(err) != codes.Unavailable || errors.As(err, &re) {
		return err
	}
	p := Probe(ctx, w.Address, Diagnose(err), w.TLS)
	return &Error{Address: w.Address, Problem: p, Hint: w.hint(p), Cause: err}
}

func (w *Watch) hint(p Problem) string {
	if w.Hint == nil {
		return ""
	}
	return w.Hint(p, w.bound())
}
