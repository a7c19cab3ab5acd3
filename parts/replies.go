package parts

import (
	"context"

	"github.com/hashicorp/go-hclog"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/route"
)

// StreamHandler chooses where a message goes next: the topic it is sent
// under and the message itself (possibly changed). A nil message sends
// nothing. It is the original's handle_stream.
type StreamHandler func(m *palmv1.PalmMessage) (topic string, next *palmv1.PalmMessage)

// ToClient is the default StreamHandler of a server that ends the stream:
// the topic is the client's id, so the message goes back to the client.
func ToClient(m *palmv1.PalmMessage) (string, *palmv1.PalmMessage) { return m.GetClient(), m }

// NextStage is the default StreamHandler of a pipelined server named name:
// the topic is the server's name and the stage moves one step on.
func NextStage(name string) StreamHandler {
	return func(m *palmv1.PalmMessage) (string, *palmv1.PalmMessage) {
		m.Stage++
		return name, m
	}
}

// Publisher sends a message to the subscribers of a topic.
type Publisher interface {
	Publish(ctx context.Context, topic string, m *palmv1.PalmMessage) error
}

// TellingPublisher is a Publisher that reports a message it could not hand
// to a subscriber, as Topics does.
type TellingPublisher interface {
	Publisher
	PublishTold(ctx context.Context, topic string, m *palmv1.PalmMessage, lost Loss) error
}

// tellOrigin returns the Loss of m, published on behalf of the message seq
// of origin: an error reply for seq, delivered to origin after its
// completion if need be (a Gateway stream passes it on while the client
// keeps the stream open).
func tellOrigin(origin Origin, seq uint64, m *palmv1.PalmMessage) Loss {
	pipeline, client, function, stage := m.GetPipeline(), m.GetClient(), m.GetFunction(), m.GetStage()
	return func(ctx context.Context, err error) {
		reply := &palmv1.PalmMessage{Pipeline: pipeline, Client: client, Function: function, Stage: stage, Sequence: seq}
		step, _ := route.Current(reply)
		reply.Error = route.ErrorOf(err, step)
		_ = origin.Deliver(ctx, Envelope{Msg: reply, Origin: origin, Sequence: seq})
	}
}

// Replies is an outbound part that sends each message where its
// StreamHandler says: back to the origin it came from when the topic is the
// message's client, else to the Publisher under the topic. It then reports
// the envelope's completion to the origin.
//
// A message published for an origin that waits (a client's call, not a
// subscription) and lost on its way — nobody subscribed to its topic, or
// the subscription it was queued for ended — comes back to that origin as
// an error reply with DataLoss (see Topics).
//
// Error replies go back to the origin when a client waits there: a failure
// is the client's to see, not the next stage's. A message from a Detached
// origin (a subscription) has nobody waiting: its replies, errors included,
// go where the StreamHandler says, so that errors travel down the pipeline
// to the stage that answers the client.
type Replies struct {
	// Handle picks topic and message; nil means ToClient.
	Handle StreamHandler
	// Publisher receives messages that do not go back to their origin; nil
	// drops them with a debug log (nobody subscribed).
	Publisher Publisher
	// Pipelined, with no Handle, sends every result on to the next step
	// of a pipeline: published under the component's name with the stage
	// moved one on (NextStage), errors back to a waiting client.
	Pipelined bool
	// Logger; nil is quiet.
	Logger hclog.Logger

	nextStage bool // Handle is NextStage, chosen by Prepare
}

// Run delivers envelopes until ctx ends.
func (r *Replies) Run(ctx context.Context, link *Link) error {
	handle := r.Handle
	if handle == nil {
		handle = ToClient
	}
	logger := orQuiet(r.Logger)
	for {
		e, ok := next(ctx, link)
		if !ok {
			return nil
		}
		out := Envelope{Origin: e.Origin, Sequence: e.Sequence, Done: e.Done}
		_, detached := e.Origin.(Detached)
		direct := e.Origin != nil && !detached
		if m := e.Msg; m != nil {
			count(link.router.meter, e.Step, m)
			topic, next := ToClient(m)
			if m.Error == nil || !direct {
				topic, next = handle(m)
			}
			switch {
			case next == nil:
			case direct && topic == next.GetClient():
				out.Msg = next
			case r.Publisher != nil:
				var err error
				if tp, ok := r.Publisher.(TellingPublisher); ok && direct {
					err = tp.PublishTold(ctx, topic, next, tellOrigin(e.Origin, e.Sequence, next))
				} else {
					err = r.Publisher.Publish(ctx, topic, next)
				}
				if err != nil {
					logger.Warn("publishing failed", "topic", topic, "error", err)
				}
			default:
				logger.Debug("no subscriber for the topic; message dropped", "topic", topic)
			}
		}
		if e.Origin == nil || (out.Msg == nil && !out.Done) {
			continue
		}
		if err := e.Origin.Deliver(ctx, out); err != nil {
			logger.Debug("reply not delivered: the client has gone", "client", e.Msg.GetClient(), "sequence", e.Sequence, "error", err)
		}
	}
}

// count counts m in meter: as a failure of the step its error names, or as
// a result of step, the step that produced it (parsed from m when the part
// before did not say).
func count(mt *meter, step Step, m *palmv1.PalmMessage) {
	if e := m.GetError(); e != nil {
		if f, err := route.ParseStep(e.GetFunction()); err == nil {
			step = f
		}
		mt.failed(step)
		return
	}
	if step.Function == "" {
		var err error
		if step, err = route.Current(m); err != nil {
			return
		}
	}
	mt.out(step)
}
