package parts

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/route"
)

// Functions is an outbound part that calls user functions: for each
// envelope it receives, it calls the handler named by the message's current
// step and sends the reply (or the failure) on along its route, marked Done.
//
// A handler that returns an error or panics is logged (a panic with its
// stack) and answered with an error reply; the part keeps going. A message
// whose origin has gone away is skipped without calling the handler.
type Functions struct {
	// Lookup finds the handler for a function name; required.
	Lookup func(function string) (palm.Handler, bool)
	// Concurrency is how many calls run at once; 0 means 1, which keeps
	// replies in the order messages arrived.
	Concurrency int
	// Names lists the functions Lookup finds, for InfoService; nil lists
	// none.
	Names func() []string
	// Middleware wraps every handler Lookup finds, the first outermost;
	// the component's own middleware (palm.WithMiddleware) goes around it.
	Middleware []palm.Middleware
	// Logger logs failures; nil is quiet.
	Logger hclog.Logger

	server string // the component's name, for Names
}

// Run calls functions until ctx ends.
func (f *Functions) Run(ctx context.Context, link *Link) error {
	n := f.Concurrency
	if n <= 0 {
		n = 1
	}
	logger := orQuiet(f.Logger)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				e, ok := next(ctx, link)
				if !ok {
					return
				}
				if err := link.Send(ctx, f.call(e, logger)); err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return nil
}

func (f *Functions) call(e Envelope, logger hclog.Logger) Envelope {
	out := Envelope{Origin: e.Origin, Sequence: e.Sequence, Done: true}
	var cctx context.Context = context.Background()
	if e.Origin != nil {
		cctx = e.Origin.Context()
		if cctx.Err() != nil {
			return out
		}
	}
	step, err := e.Step, error(nil)
	if step.Function == "" {
		step, err = route.Current(e.Msg)
	}
	var payload []byte
	if err == nil {
		h, ok := f.Lookup(step.Function)
		if !ok {
			err = status.Errorf(codes.NotFound, "server %q has no function %q", step.Server, step.Function)
		} else {
			payload, err = invoke(cctx, palm.Chain(h, f.Middleware...), e.Msg, step, logger)
		}
	}
	out.Step = step
	if err != nil {
		out.Msg = palm.ChangePayload(e.Msg, nil)
		out.Msg.Error = route.ErrorOf(err, step)
		return out
	}
	if payload != nil {
		out.Msg = palm.ChangePayload(e.Msg, payload)
	}
	return out
}

// invoke calls h, turning a panic into an error and logging failures.
func invoke(ctx context.Context, h palm.Handler, m *palmv1.PalmMessage, step Step, logger hclog.Logger) (payload []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			logger.Error("user function panicked", "function", step.String(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "function panicked: %v", r)
		}
	}()
	payload, err = h.Handle(ctx, m)
	if err != nil {
		logger.Error("user function gave an error", "function", step.String(), "error", fmt.Sprintf("%+v", err))
	}
	return payload, err
}

// Step is a parsed `server.function` step: the step a message asks of a
// component (Envelope.Step).
type Step = palm.Step
