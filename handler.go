package palm

import (
	"errors"

	"context"
	"github.com/gopalm/palm/internal/config"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// Handler is a user function served by a palm component under a name.
//
// Handle is called with the message whose current step names the function.
// It returns the payload of the reply, or an error. A nil payload with a nil
// error (as opposed to an empty, non-nil slice) means the function returns
// nothing: no reply is sent on. An error, or a panic, is logged by the
// component with its stack and goes back to the client as an error for that
// message alone; the component keeps serving.
//
// msg must not be modified or kept after Handle returns. Handle may be
// called from several goroutines at once when the component runs more than
// one call at a time.
type Handler interface {
	Handle(ctx context.Context, msg *palmv1.PalmMessage) ([]byte, error)
}

// HandlerFunc adapts a function of the payload alone to a Handler.
type HandlerFunc func(ctx context.Context, payload []byte) ([]byte, error)

// Handle calls f with the message's payload.
func (f HandlerFunc) Handle(ctx context.Context, msg *palmv1.PalmMessage) ([]byte, error) {
	return f(ctx, msg.GetPayload())
}

// ChangePayload returns a copy of msg that carries payload instead, like the
// original's change_payload: the routing fields (pipeline, client, stage,
// function, cache, sequence) stay as they were. msg is not modified.
func ChangePayload(msg *palmv1.PalmMessage, payload []byte) *palmv1.PalmMessage {
	return &palmv1.PalmMessage{
		Pipeline: msg.GetPipeline(),
		Client:   msg.GetClient(),
		Stage:    msg.GetStage(),
		Function: msg.GetFunction(),
		Cache:    msg.GetCache(),
		Payload:  payload,
		Sequence: msg.GetSequence(),
	}
}

// Middleware wraps a Handler with behaviour of its own (logging, metrics,
// authorisation, a timeout) and returns the wrapped Handler. Components
// given middleware with WithMiddleware apply it to every function they run:
// the first given is the outermost, the first to see a call.
type Middleware func(next Handler) Handler

// Chain returns h wrapped in mw, the first outermost; h itself when mw is
// empty.
func Chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// WithMiddleware wraps every function a component runs in mw, the first
// outermost: the functions of a Server, a Pipeline, a Sink or a composed
// component, and the functions a worker serves. Middleware given in
// several WithMiddleware options applies in the order given.
func WithMiddleware(mw ...Middleware) Option {
	return func(c *config.Config) {
		for _, m := range mw {
			if m == nil {
				c.Fail(errors.New("palm: WithMiddleware: a middleware is nil"))
				return
			}
			c.Middleware = append(c.Middleware, m)
		}
	}
}

// Step is one step of a message's way, a function of a server, written
// server.function (my_server.foo). A message's function field holds its
// steps separated by spaces; its stage says which is current.
type Step struct {
	Server   string
	Function string
}

// String returns the step as server.function.
func (s Step) String() string { return s.Server + "." + s.Function }
