package parts

import (
	"context"
	"fmt"
	"iter"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// Gather is an outbound part that passes each result through a hook that
// turns it into zero or more messages (the original's gather), in the order
// results arrive, one at a time: the hook needs no locking for its own
// state. Error replies and completions pass untouched. A panic in the hook
// is logged and the result it was given is dropped.
type Gather struct {
	// Fn is the hook; required.
	Fn func(*palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage]
	// Logger; nil is quiet.
	Logger hclog.Logger
}

// Run gathers until ctx ends.
func (g *Gather) Run(ctx context.Context, link *Link) error {
	logger := orQuiet(g.Logger)
	for {
		e, ok := next(ctx, link)
		if !ok {
			return nil
		}
		if e.Msg == nil || e.Msg.GetError() != nil {
			if err := link.Send(ctx, e); err != nil {
				return nil
			}
			continue
		}
		for _, m := range g.apply(e.Msg, logger) {
			if err := link.Send(ctx, Envelope{Msg: m, Origin: e.Origin, Sequence: e.Sequence, Step: e.Step}); err != nil {
				return nil
			}
		}
		if e.Done {
			if err := link.Send(ctx, Envelope{Origin: e.Origin, Sequence: e.Sequence, Done: true}); err != nil {
				return nil
			}
		}
	}
}

func (g *Gather) apply(m *palmv1.PalmMessage, logger hclog.Logger) (out []*palmv1.PalmMessage) {
	defer func() {
		if r := recover(); r != nil {
			logger.Error("gather panicked; the result is dropped", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			out = nil
		}
	}()
	for o := range g.Fn(m) {
		if o != nil {
			out = append(out, o)
		}
	}
	return out
}
