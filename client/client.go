package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/internal/names"
	"github.com/gopalm/palm/internal/reach"
	"github.com/gopalm/palm/internal/route"
	"github.com/gopalm/palm/kv"
)

// DefaultWindow is the number of unfinished messages a Job keeps in flight
// unless told otherwise by Window. It matches the window a palm server takes
// per stream.
const DefaultWindow = 1024

// ErrNoReply is returned by Eval when the server answered the message
// without a reply: the function returned nothing, or the server passed the
// message on to another component (a pipelined server) and the replies went
// there.
var ErrNoReply = errors.New("client: the function sent no reply")

// Option is an option a Client takes: palm's shared options (palm.Option)
// and this package's options. The options of one Job are JobOptions.
type Option interface{ config.ForClient }

// option is an option of this package.
type option struct {
	config.Client
	config.Setting[settings]
}

// settings are the options that only a Client takes.
type settings struct {
	session    string
	hasSession bool
	window     int
	subAddress string
	wait       time.Duration
	hasWait    bool
}

// Session makes the Client keep its cache keys apart under a session name,
// like the original client's session: every key given to Get, Set, Delete
// and Keys is stored on the server as name + "." + key, and Keys returns the
// keys with that prefix removed. The name must be non-empty and contain
// neither dots nor spaces, so that one session's keys never include
// another's. Default: no session; keys are used as given.
//
// Session only changes cache keys: messages of Eval and Job are not tagged.
func Session(name string) Option {
	return option{Setting: func(s *settings) { s.session, s.hasSession = name, true }}
}

// Window sets the most messages a Job keeps in flight: sent, and not yet
// reported completed by the server. When the window is full, the Job stops
// sending until the server completes some. It also bounds the Evals open
// at once on the Client's stream of Evals (see Eval). n must be at least
// 1. Default: DefaultWindow (1024).
func Window(n int) Option {
	return option{Setting: func(s *settings) { s.window = n }}
}

// SubAddress makes the Client take its replies from the component at
// address instead of from the server it sends to (the original client's
// sub_address): the last stage of a pipeline that does not end where it
// started, a Pipeline, a Sink or a Hub that sends its results to the
// client. Eval and Job make sure that the Client's subscription there, to
// its id, is in place before they send, so no reply is missed; errors of
// the first step still come back from the server. The subscription uses
// the Client's dial options.
//
// All the Evals and Jobs of a Client share one subscription there, opened
// by the first call that needs it and closed when no call has used it for
// 30 seconds, or by Close; each call takes the replies of its own messages.
// When the subscription breaks, the calls waiting on it end with an error
// naming the SubAddress, Unavailable unless the component gave another
// code (a reply published meanwhile could be lost), and the next call
// subscribes again. A Job whose loop stops taking results while many
// replies are on their way ends with ResourceExhausted (see Job), so that
// the Client's other calls go on.
func SubAddress(address string) Option {
	return option{Setting: func(s *settings) { s.subAddress = address }}
}

// Steps joins `server.function` steps into the function of a pipeline, for
// Eval and Job: Steps("my_server.foo", "my_pipeline.foo") is
// "my_server.foo my_pipeline.foo".
func Steps(steps ...string) string { return strings.Join(steps, " ") }

// Client talks to one palm server (a Server, a Master, the first stage of a
// pipeline): it sends messages to the server's functions with Eval and Job,
// and uses the server's cache with Get, Set, Delete and Keys.
//
// Each Client has a random unique id, sent as the `client` field of its
// messages. A Client holds one gRPC connection, set up on first use and
// re-established by gRPC when it breaks.
//
// A call made before the connection has ever been ready fails at once
// when nothing answers at the address, with an Unavailable error that
// says why and how to fix it (nothing listens there; the server speaks
// TLS and the Client does not, or the reverse; a client certificate is
// missing or refused): a newcomer is told rather than kept waiting. With
// WaitForServer the order in which client and server start does not
// matter, as in the original: the first calls wait for the server, for a
// bounded time. Once the connection has been ready, a call made while
// the server is unreachable (it restarts, the network is cut) waits for
// it until the call's context ends (then DeadlineExceeded or Canceled),
// so give calls a deadline when the server may be away for good.
//
// A Client is safe for concurrent use by multiple goroutines; every Job runs
// on a stream of its own, and with SubAddress every call shares the
// Client's one subscription.
type Client struct {
	server string
	id     string
	prefix string // session name + ".", or empty
	window int
	max    int // largest payload or value, in bytes

	conn    *grpc.ClientConn
	subConn *grpc.ClientConn // the SubAddress connection; nil without one
	sub     palmv1.PublisherServiceClient
	subAddr string
	subs    *replies // the shared subscription; nil without a SubAddress
	gateway palmv1.GatewayServiceClient
	cache   kv.Store // the server's cache, under the session's prefix
	log     hclog.Logger

	calls *calls             // the stream shared by Evals without a SubAddress
	stop  context.CancelFunc // ends the Client's lifetime: Close
}

// New returns a Client for the palm server named server, listening at
// address (a gRPC target such as "127.0.0.1:5555" or "dns:///palm:5555").
// New does no network I/O: the connection is made on the first call.
//
// The server name must be non-empty and contain neither dots nor spaces;
// Eval and Job refuse functions whose first step names another server.
// Options: palm.WithTLS to dial with TLS (default: plaintext),
// palm.WithDialOptions (applied after palm's own), palm.WithMaxMessageSize
// (the largest payload or cache value sent, default 4 MiB; replies up to the
// same size are accepted), palm.WithLogger and palm.WithLogLevel (the
// Client logs as "client"), and the client options Session, Window,
// SubAddress and WaitForServer. New returns an error naming the problem
// for an invalid argument or option value.
func New(server, address string, opts ...Option) (*Client, error) {
	if err := names.Component("server", server); err != nil {
		return nil, fmt.Errorf("client: invalid server name %q: %w", server, err)
	}
	if address == "" {
		return nil, errors.New("client: the address is empty")
	}
	s := settings{window: DefaultWindow}
	cfg, err := config.Apply(opts, &s)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	var prefix string
	if s.hasSession {
		if err := names.Component("session", s.session); err != nil {
			return nil, fmt.Errorf("client: Session(%q): %w", s.session, err)
		}
		prefix = s.session + "."
	}
	if s.window < 1 {
		return nil, fmt.Errorf("client: Window(%d): the window must be at least 1", s.window)
	}
	if s.hasWait && s.wait <= 0 {
		return nil, fmt.Errorf("client: WaitForServer(%v): the wait must be positive", s.wait)
	}

	log := cfg.NamedLogger("client")
	// Once a connection has been ready, calls wait for it to come back
	// until their context ends, so that a server that restarts loses
	// nothing; before, the reach.Watch interceptors make them fail at once
	// with the reason, or wait for the server with WaitForServer.
	dial := func(address string) (*grpc.ClientConn, error) {
		w := &reach.Watch{Address: address, TLS: cfg.TLS, Wait: s.wait, Bound: FirstConnectTimeout, Log: log, Hint: hint(s.wait)}
		extra := append([]grpc.DialOption{grpc.WithDefaultCallOptions(grpc.WaitForReady(true)), reconnect}, w.DialOptions()...)
		return grpc.NewClient(address, cfg.Dial(extra...)...)
	}
	conn, err := dial(address)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{
		server:  server,
		id:      newID(),
		prefix:  prefix,
		window:  s.window,
		max:     cfg.MaxMessageSize,
		conn:    conn,
		gateway: palmv1.NewGatewayServiceClient(conn),
		cache:   kv.Prefix(kv.NewClient(conn), prefix),
		log:     log,
	}
	life, stop := context.WithCancel(context.Background())
	c.calls, c.stop = newCalls(c, life), stop
	if s.subAddress != "" {
		sc, err := dial(s.subAddress)
		if err != nil {
			stop()
			conn.Close()
			return nil, fmt.Errorf("client: SubAddress(%q): %w", s.subAddress, err)
		}
		c.subConn, c.sub, c.subAddr = sc, palmv1.NewPublisherServiceClient(sc), s.subAddress
		c.subs = newReplies(c)
	}
	return c, nil
}

// Close closes the Client's connections and its subscription at the
// SubAddress. Calls in progress, and Jobs still
// running, end with a Canceled status error; calls made after Close fail the
// same way. Close returns an error when the Client was already closed.
func (c *Client) Close() error {
	c.calls.close()
	c.stop()
	if c.subConn != nil {
		c.subs.close()
		c.subConn.Close()
	}
	return c.conn.Close()
}

// Eval sends one message to a function and returns the payload of its reply,
// like the original client's eval.
//
// function is one `server.function` step, or several separated by single
// spaces for a pipeline ("first.parse second.store"); its first step must
// name the Client's server. A malformed function fails with an
// InvalidArgument status error and one naming another server with
// FailedPrecondition, both without sending anything. A payload larger than
// the message size limit (palm.WithMaxMessageSize) fails with
// ResourceExhausted naming the limit, also without sending.
//
// Errors from the server are returned as the server's gRPC status unchanged,
// so status.Code tells them apart: Unknown with the error text when the
// function returned an error or panicked, NotFound for an unknown function,
// Unavailable when the server is shutting down or unreachable (at once, and
// saying why, when the connection has never been ready; see Client),
// DeadlineExceeded when ctx's deadline passes first. When the server
// answered with no reply, Eval returns ErrNoReply. Of several replies (which
// a plain Server never produces), Eval returns the first, or the status of
// one that carries an error, naming the step that failed. With SubAddress,
// a reply published there that carries an error is returned as a
// *MessageError, whose status.Code is the reply's.
//
// Without SubAddress, the Evals of a Client share one stream to the server,
// each a call of its own on it (palm.v1.StreamRequest.calls), so that an
// Eval costs its message and its reply and no call set-up: at most Window
// of them are open at once (the others wait for a place, until their
// context ends), ctx's deadline travels with the message, and an Eval whose
// ctx ends first is cancelled on the server (a master drops its task if no
// worker has it yet). The stream opens with the first Eval, closes after
// 30 s without one, and opens again after it breaks (the Evals then open
// on it fail with its status).
//
// With SubAddress, Eval makes sure the Client's subscription there is in
// place before it sends and, when the server sends
// no reply itself (it passed the message on down a pipeline), waits for the
// first reply to this message published there, until ctx ends: give ctx a
// deadline when a step of the pipeline may send nothing on.
func (c *Client) Eval(ctx context.Context, function string, payload []byte) ([]byte, error) {
	_, err := c.checkFunction(function)
	if err != nil {
		return nil, err
	}
	if len(payload) > c.max {
		return nil, c.payloadTooLarge(len(payload))
	}
	pipeline := newID()
	var w *waiter
	if c.subs != nil {
		if w, err = c.subs.join(ctx, pipeline); err != nil {
			return nil, err
		}
		defer c.subs.leave(w)
	}
	m := &palmv1.PalmMessage{
		Pipeline: pipeline,
		Client:   c.id,
		Stage:    0,
		Function: function,
		Payload:  payload,
		Sequence: 1,
	}
	if w == nil {
		reply, err := c.calls.eval(ctx, m)
		switch {
		case err != nil:
			return nil, err
		case reply == nil:
			return nil, ErrNoReply
		}
		return reply.GetPayload(), nil
	}
	resp, err := c.gateway.Eval(ctx, &palmv1.EvalRequest{Message: m})
	if err != nil {
		return nil, err
	}
	replies := resp.GetMessages()
	if len(replies) == 0 && w != nil {
		m, err := w.first(ctx)
		if err != nil {
			return nil, err
		}
		replies = append(replies, m)
	}
	if len(replies) == 0 {
		return nil, ErrNoReply
	}
	if e := replies[0].GetError(); e != nil {
		return nil, replyError(1, function, e)
	}
	return replies[0].GetPayload(), nil
}

type MessageError struct {
	// Sequence is the message's number in its Job: the position, from 1, of
	// its payload in the payloads sequence.
	Sequence uint64
	// Function is the `server.function` step that failed.
	Function string
	// Err is the failure as a gRPC status error.
	Err error
}

// Error describes the failure: the message's number, the step and the
// server's explanation.
func (e *MessageError) Error() string {
	st := status.Convert(e.Err)
	if e.Function == "" {
		return fmt.Sprintf("message %d failed: %s (code %s)", e.Sequence, st.Message(), st.Code())
	}
	return fmt.Sprintf("message %d failed in %s: %s (code %s)", e.Sequence, e.Function, st.Message(), st.Code())
}

// Unwrap returns Err.
func (e *MessageError) Unwrap() error { return e.Err }

// replyError builds the MessageError for a reply whose error field is set.
// function is the message's function field: when the reply does not say
// which step failed, the MessageError names the only step of a one-step
// function, and no step of a pipeline's (a guess would name a step that
// did not fail).
func replyError(seq uint64, function string, e *palmv1.Error) *MessageError {
	if f := e.GetFunction(); f != "" {
		function = f
	} else if strings.Contains(function, " ") {
		function = ""
	}
	return &MessageError{Sequence: seq, Function: function, Err: status.Error(route.Code(e), e.GetMessage())}
}

// checkFunction validates a `function` field and returns its first step.
func (c *Client) checkFunction(function string) (string, error) {
	steps, err := route.ParseSteps(function)
	if err != nil {
		return "", err
	}
	if steps[0].Server != c.server {
		return "", status.Errorf(codes.FailedPrecondition,
			"step %q is for server %q, but this client talks to server %q", steps[0], steps[0].Server, c.server)
	}
	return steps[0].String(), nil
}

// payloadTooLarge is the error for a payload of n bytes over the limit.
func (c *Client) payloadTooLarge(n int) error {
	return status.Errorf(codes.ResourceExhausted,
		"payload is %d bytes; the limit is %d bytes (palm.WithMaxMessageSize); not sent", n, c.max)
}

// newID returns 128 random bits from crypto/rand as 32 hex digits.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails; it crashes the program instead
	return hex.EncodeToString(b[:])
}
