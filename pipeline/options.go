package pipeline

import (
	"fmt"
	"time"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/parts"
)

// ServerOption is an option a Server takes: palm's shared options
// (palm.Option), this package's CommonOptions, Window and WindowBytes.
type ServerOption interface{ config.ForServer }

// StageOption is an option a Pipeline and a Sink take: palm's shared options
// (palm.Option), this package's CommonOptions and Backoff.
type StageOption interface{ config.ForStage }

// CommonOption is an option a Server, a Pipeline and a Sink all take.
type CommonOption interface {
	ServerOption
	StageOption
}

// The options of this package, by the components that take them.
type (
	common struct {
		config.Server
		config.Stage
		config.Setting[settings]
	}
	serverOnly struct {
		config.Server
		config.Setting[settings]
	}
	stageOnly struct {
		config.Stage
		config.Setting[settings]
	}
)

// settings are the options of a Server, a Pipeline and a Sink.
type settings struct {
	pipelined   bool
	toClient    bool
	queue       int
	concurrency int
	window      int
	windowBytes int
	httpAddress string
	store       kv.Store
	handle      parts.StreamHandler

	backoffMin, backoffMax time.Duration
}

// Concurrency sets how many function calls a component runs at once.
// Default: 1, which keeps the results in the order the messages came; with
// more, they may go on in another order.
func Concurrency(n int) CommonOption {
	return common{Setting: func(s *settings) { s.concurrency = n }}
}

// Window sets how many unfinished messages a Server takes from one client
// stream before it stops reading from it. Default: 1024. Server only.
func Window(n int) ServerOption {
	return serverOnly{Setting: func(s *settings) { s.window = n }}
}

// HTTP makes a Server an HTTP service too: it serves its HTTP gateway
// (parts.HTTPGateway) on address beside its gRPC services, where GET or
// POST /{function} calls the function with the body as the payload and
// answers with the reply. Server only.
func HTTP(address string) ServerOption {
	return serverOnly{Setting: func(s *settings) { s.httpAddress = address }}
}

// WindowBytes sets how many payload bytes a Server holds for one client
// stream, in messages taken and not finished (with their replies), before
// it stops reading from it; replies waiting to be sent are bounded by as
// many bytes again, and a client that reads none of them for 10 s is cut
// with RESOURCE_EXHAUSTED. Default: 32 MiB. Server only.
func WindowBytes(n int) ServerOption {
	return serverOnly{Setting: func(s *settings) { s.windowBytes = n }}
}

// Pipelined makes the component send each result on to the next step of a
// pipeline instead of to the client: it publishes the result under the
// component's own name with the stage moved one on (the original's
// pipelined=True on a Server, to_client=False on a Pipeline or a Sink), for
// the next component to subscribe to. On a Server, error replies still go
// back to the client; on a Pipeline or a Sink they go on down the pipeline,
// to the stage that answers the client.
func Pipelined() CommonOption {
	return common{Setting: func(s *settings) { s.pipelined = true }}
}

// SubscriberQueue sets how many published messages wait for one subscriber
// before the component waits for it (backpressure: a slow subscriber slows
// the component and, through it, the components before it; nothing is
// dropped). Default: 1024.
func SubscriberQueue(n int) CommonOption {
	return common{Setting: func(s *settings) { s.queue = n }}
}

// WithStore sets the key-value store behind the component's cache. Default:
// a new in-memory store of its own, kv.NewMemory(), within its default
// quotas (64 MiB and 100,000 keys; a Set past them fails with
// ResourceExhausted). For other quotas, give the component its own:
// WithStore(kv.NewMemory(kv.MaxBytes(n), kv.MaxKeys(k))).
func WithStore(store kv.Store) CommonOption {
	return common{Setting: func(s *settings) { s.store = store }}
}

// HandleStream sets the component's handle_stream hook: it picks the topic
// each result is sent under and may change the message. The default sends
// the result to the client (topic: the client's id) or, with Pipelined, on
// to the next step (topic: the component's name, stage moved one on). A
// hook that sends a message on must move its stage on itself. Returning a
// nil message sends nothing. On a Pipeline or a Sink the hook also routes
// messages that carry an error from an earlier step (msg.Error is set), so
// that they can reach the client.
func HandleStream(f func(msg *palmv1.PalmMessage) (topic string, next *palmv1.PalmMessage)) CommonOption {
	return common{Setting: func(s *settings) { s.handle = f }}
}

// Backoff bounds the delay before a Pipeline or a Sink subscribes again to
// an upstream whose subscription broke: it starts at min and doubles up to
// max while the upstream cannot be reached. Default: 50 ms to 2 s.
// Pipeline and Sink only.
func Backoff(min, max time.Duration) StageOption {
	return stageOnly{Setting: func(s *settings) { s.backoffMin, s.backoffMax = min, max }}
}

// newSettings applies opts.
func newSettings[O config.Option](opts []O) (*config.Config, settings, error) {
	var st settings
	cfg, err := config.Apply(opts, &st)
	if err != nil {
		return nil, st, err
	}
	switch {
	case st.concurrency < 0:
		return nil, st, fmt.Errorf("pipeline: Concurrency(%d): must be at least 1", st.concurrency)
	case st.window < 0:
		return nil, st, fmt.Errorf("pipeline: Window(%d): must be at least 1", st.window)
	case st.windowBytes < 0:
		return nil, st, fmt.Errorf("pipeline: WindowBytes(%d): must be at least 1", st.windowBytes)
	case st.queue < 0:
		return nil, st, fmt.Errorf("pipeline: SubscriberQueue(%d): must be at least 1", st.queue)
	case st.backoffMin < 0 || st.backoffMax < st.backoffMin:
		return nil, st, fmt.Errorf("pipeline: Backoff(%v, %v): need 0 < min <= max", st.backoffMin, st.backoffMax)
	}
	if st.store == nil {
		st.store = kv.NewMemory()
	}
	return cfg, st, nil
}
