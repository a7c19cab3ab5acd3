package palm

import (
	"context"

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
