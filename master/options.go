package master

import (
	"iter"
	"time"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/parts"
)

// Option is an option a Master takes: palm's shared options (palm.Option),
// this package's CommonOptions, Window and WindowBytes.
type Option interface{ config.ForMaster }

// HubOption is an option a Hub takes: palm's shared options (palm.Option),
// this package's CommonOptions and Backoff.
type HubOption interface{ config.ForHub }

// CommonOption is an option both a Master and a Hub take.
type CommonOption interface {
	Option
	HubOption
}

// The options of this package, by the roles that take them.
type (
	common struct {
		config.Master
		config.Hub
		config.Setting[settings]
	}
	masterOnly struct {
		config.Master
		config.Setting[settings]
	}
	hubOnly struct {
		config.Hub
		config.Setting[settings]
	}
)

// settings are the options of this package, a Master's and a Hub's.
type settings struct {
	scatter     func(*palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage]
	gather      func(*palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage]
	handle      parts.StreamHandler
	pipelined   bool
	store       kv.Store
	preset      map[string][]byte
	queue       int
	maxAttempts int
	window      int
	httpAddress string
	windowBytes int
	taskTimeout time.Duration
	waitWorkers time.Duration

	backoffMin, backoffMax time.Duration
}

// Scatter sets the hook that turns each message a client sends into the
// messages handed to workers, zero or more (the original's scatter).
// Default: the message itself. A panic in the hook fails that message.
func Scatter(f func(msg *palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage]) CommonOption {
	return common{Setting: func(s *settings) { s.scatter = f }}
}

// Gather sets the hook that turns each result a worker returns into the
// messages sent on, zero or more (the original's gather). It is called for
// one result at a time, in the order results arrive, so it may keep state
// without locking. Default: the result itself. Use palm.ChangePayload to
// change a message's payload.
func Gather(f func(result *palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage]) CommonOption {
	return common{Setting: func(s *settings) { s.gather = f }}
}

// HandleStream sets the master's handle_stream hook: the topic each message
// is sent under, and the message itself, possibly changed; a nil message
// sends nothing. Default: the client's id, back to the client (with
// Pipelined: the master's name, one stage on). Error replies always go back
// to the client.
func HandleStream(f func(msg *palmv1.PalmMessage) (topic string, next *palmv1.PalmMessage)) CommonOption {
	return common{Setting: func(s *settings) { s.handle = f }}
}

// Pipelined makes the master send its results on to the next step of the
// pipeline, published on its PublisherService under its own name with the
// stage moved one on, instead of back to the client (the original's
// pipelined=True).
func Pipelined() CommonOption {
	return common{Setting: func(s *settings) { s.pipelined = true }}
}

// PresetCache stores values in the master's cache before it serves, for
// workers and clients to read (the original's preset_cache).
func PresetCache(values map[string][]byte) CommonOption {
	return common{Setting: func(s *settings) {
		if s.preset == nil {
			s.preset = map[string][]byte{}
		}
		for k, v := range values {
			s.preset[k] = v
		}
	}}
}

// WithStore sets the store behind the master's cache. Default: a new
// in-memory store of the master's own, kv.NewMemory(), within its default
// quotas (64 MiB and 100,000 keys; a Set past them fails with
// ResourceExhausted). For other quotas, give the master its own:
// WithStore(kv.NewMemory(kv.MaxBytes(n), kv.MaxKeys(k))).
func WithStore(store kv.Store) CommonOption {
	return common{Setting: func(s *settings) { s.store = store }}
}

// QueueSize sets how many tasks wait for a worker before the master stops
// taking messages from clients (they then wait, within their windows).
// Default: 4096.
func QueueSize(n int) CommonOption {
	return common{Setting: func(s *settings) { s.queue = n }}
}

// MaxAttempts sets how many times a task is handed to a worker before it
// fails with Aborted at the client, when each worker that took it went away
// before finishing it. Default: 3.
func MaxAttempts(n int) CommonOption {
	return common{Setting: func(s *settings) { s.maxAttempts = n }}
}

// TaskTimeout sets how long a worker may hold a task before the master
// gives it to another worker; that counts as a failed attempt, and after
// MaxAttempts the client gets DEADLINE_EXCEEDED for the message. The worker
// is told the time with the task (palm's workers cancel the function's
// context when it runs out). A negative d means no limit. Default: 5
// minutes.
func TaskTimeout(d time.Duration) CommonOption {
	return common{Setting: func(s *settings) { s.taskTimeout = d }}
}

// WaitForWorkers makes a message for a function no connected worker serves
// wait up to d for a worker that serves it (with a warning in the log),
// instead of being answered NOT_FOUND at once; so does a task whose last
// worker left. Default: 0, answer at once.
func WaitForWorkers(d time.Duration) CommonOption {
	return common{Setting: func(s *settings) { s.waitWorkers = d }}
}

// Window sets how many unfinished messages the master takes from one client
// stream before it stops reading from it. Default: 1024. Master only (a Hub
// takes no messages from clients).
func Window(n int) Option {
	return masterOnly{Setting: func(s *settings) { s.window = n }}
}

// WindowBytes sets how many payload bytes the master holds for one client
// stream, in messages taken and not finished (with their results), before
// it stops reading from it; results waiting to be sent are bounded by as
// many bytes again, and a client that reads none of them for 10 s is cut
// with RESOURCE_EXHAUSTED. Default: 32 MiB. Master only.
func WindowBytes(n int) Option {
	return masterOnly{Setting: func(s *settings) { s.windowBytes = n }}
}

// HTTP makes the master an HTTP service too: it serves its HTTP gateway
// (parts.HTTPGateway) on address beside its gRPC services, where GET or
// POST /{function} sends the body as a message and answers with the reply.
// Master only.
func HTTP(address string) Option {
	return masterOnly{Setting: func(s *settings) { s.httpAddress = address }}
}

// Backoff bounds the delay before a Hub subscribes again to an upstream
// whose subscription broke: it starts at min and doubles up to max while
// the upstream cannot be reached. Default: 50 ms to 2 s. Hub only.
func Backoff(min, max time.Duration) HubOption {
	return hubOnly{Setting: func(s *settings) { s.backoffMin, s.backoffMax = min, max }}
}
