package master

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/compose"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/assemble"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/internal/names"
	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/parts"
)

// Master takes messages from clients and hands them to its workers as
// tasks; the workers' results go back to the client that sent each message.
// Create it with New and call Serve (or ListenAndServe) once. Its methods
// are safe for concurrent use.
//
// A master's functions are whatever its workers serve: a message for a
// function no connected worker serves is answered NOT_FOUND at once, naming
// the functions the workers serve (WaitForWorkers makes it wait a bounded
// time for such a worker instead). Every message ends with its results or
// an error: a message still waiting when its client's deadline passes is
// answered DEADLINE_EXCEEDED, the waiting messages of a client that went
// away are dropped at once, and a task a worker holds past TaskTimeout goes
// to another worker.
type Master struct {
	name     string
	kind     string // master or hub
	cfg      *config.Config
	settings settings
	logger   hclog.Logger
	store    kv.Store
	served   atomic.Bool
	disp     atomic.Pointer[parts.Dispatcher]
}

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
	windowBytes int
	taskTimeout time.Duration
	waitWorkers time.Duration

	backoffMin, backoffMax time.Duration
	only                   []string // options only a Master or only a Hub takes
}

// Scatter sets the hook that turns each message a client sends into the
// messages handed to workers, zero or more (the original's scatter).
// Default: the message itself. A panic in the hook fails that message.
func Scatter(f func(msg *palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage]) palm.Option {
	return config.Role("master.Scatter", func(s *settings) { s.scatter = f })
}

// Gather sets the hook that turns each result a worker returns into the
// messages sent on, zero or more (the original's gather). It is called for
// one result at a time, in the order results arrive, so it may keep state
// without locking. Default: the result itself. Use palm.ChangePayload to
// change a message's payload.
func Gather(f func(result *palmv1.PalmMessage) iter.Seq[*palmv1.PalmMessage]) palm.Option {
	return config.Role("master.Gather", func(s *settings) { s.gather = f })
}

// HandleStream sets the master's handle_stream hook: the topic each message
// is sent under, and the message itself, possibly changed; a nil message
// sends nothing. Default: the client's id, back to the client (with
// Pipelined: the master's name, one stage on). Error replies always go back
// to the client.
func HandleStream(f func(msg *palmv1.PalmMessage) (topic string, next *palmv1.PalmMessage)) palm.Option {
	return config.Role("master.HandleStream", func(s *settings) { s.handle = f })
}

// Pipelined makes the master send its results on to the next step of the
// pipeline, published on its PublisherService under its own name with the
// stage moved one on, instead of back to the client (the original's
// pipelined=True).
func Pipelined() palm.Option {
	return config.Role("master.Pipelined", func(s *settings) { s.pipelined = true })
}

// PresetCache stores values in the master's cache before it serves, for
// workers and clients to read (the original's preset_cache).
func PresetCache(values map[string][]byte) palm.Option {
	return config.Role("master.PresetCache", func(s *settings) {
		if s.preset == nil {
			s.preset = map[string][]byte{}
		}
		for k, v := range values {
			s.preset[k] = v
		}
	})
}

// WithStore sets the store behind the master's cache. Default: a new
// in-memory store of the master's own, kv.NewMemory(), within its default
// quotas (64 MiB and 100,000 keys; a Set past them fails with
// ResourceExhausted). For other quotas, give the master its own:
// WithStore(kv.NewMemory(kv.MaxBytes(n), kv.MaxKeys(k))).
func WithStore(store kv.Store) palm.Option {
	return config.Role("master.WithStore", func(s *settings) { s.store = store })
}

// QueueSize sets how many tasks wait for a worker before the master stops
// taking messages from clients (they then wait, within their windows).
// Default: 4096.
func QueueSize(n int) palm.Option {
	return config.Role("master.QueueSize", func(s *settings) { s.queue = n })
}

// MaxAttempts sets how many times a task is handed to a worker before it
// fails with Aborted at the client, when each worker that took it went away
// before finishing it. Default: 3.
func MaxAttempts(n int) palm.Option {
	return config.Role("master.MaxAttempts", func(s *settings) { s.maxAttempts = n })
}

// TaskTimeout sets how long a worker may hold a task before the master
// gives it to another worker; that counts as a failed attempt, and after
// MaxAttempts the client gets DEADLINE_EXCEEDED for the message. The worker
// is told the time with the task (palm's workers cancel the function's
// context when it runs out). A negative d means no limit. Default: 5
// minutes.
func TaskTimeout(d time.Duration) palm.Option {
	return config.Role("master.TaskTimeout", func(s *settings) { s.taskTimeout = d })
}

// WaitForWorkers makes a message for a function no connected worker serves
// wait up to d for a worker that serves it (with a warning in the log),
// instead of being answered NOT_FOUND at once; so does a task whose last
// worker left. Default: 0, answer at once.
func WaitForWorkers(d time.Duration) palm.Option {
	return config.Role("master.WaitForWorkers", func(s *settings) { s.waitWorkers = d })
}

// Window sets how many unfinished messages the master takes from one client
// stream before it stops reading from it. Default: 1024.
// Master only.
func Window(n int) palm.Option {
	return config.Role("master.Window", func(s *settings) { s.window = n; s.only = append(s.only, "master.Window") })
}

// WindowBytes sets how many payload bytes the master holds for one client
// stream, in messages taken and not finished (with their results), before
// it stops reading from it; results waiting to be sent are bounded by as
// many bytes again, and a client that reads none of them for 10 s is cut
// with RESOURCE_EXHAUSTED. Default: 32 MiB. Master only.
func WindowBytes(n int) palm.Option {
	return config.Role("master.WindowBytes", func(s *settings) { s.windowBytes = n; s.only = append(s.only, "master.WindowBytes") })
}

// Backoff bounds the delay before a Hub subscribes again to an upstream
// whose subscription broke: it starts at min and doubles up to max while
// the upstream cannot be reached. Default: 50 ms to 2 s. Hub only.
func Backoff(min, max time.Duration) palm.Option {
	return config.Role("master.Backoff", func(s *settings) {
		s.backoffMin, s.backoffMax = min, max
		s.only = append(s.only, "master.Backoff")
	})
}

// New returns a Master named name. It does no I/O. It fails when the name is
// empty or holds a dot or a space, or when an option is invalid or meant for
// another kind of component.
func New(name string, opts ...palm.Option) (*Master, error) {
	return newMaster("Master", name, opts)
}

func newMaster(kind, name string, opts []palm.Option) (*Master, error) {
	if err := names.Component(strings.ToLower(kind), name); err != nil {
		return nil, fmt.Errorf("master: invalid name %q: %w", name, err)
	}
	cfg := config.New(opts)
	var st settings
	if err := config.ApplyRole(cfg, "master."+kind, &st); err != nil {
		return nil, err
	}
	for _, o := range st.only {
		if (o == "master.Window" || o == "master.WindowBytes") != (kind == "Master") {
			return nil, fmt.Errorf("option %s does not apply to master.%s", o, kind)
		}
	}
	switch {
	case st.queue < 0:
		return nil, fmt.Errorf("master: QueueSize(%d): must be at least 1", st.queue)
	case st.maxAttempts < 0:
		return nil, fmt.Errorf("master: MaxAttempts(%d): must be at least 1", st.maxAttempts)
	case st.window < 0:
		return nil, fmt.Errorf("master: Window(%d): must be at least 1", st.window)
	case st.windowBytes < 0:
		return nil, fmt.Errorf("master: WindowBytes(%d): must be at least 1", st.windowBytes)
	case st.waitWorkers < 0:
		return nil, fmt.Errorf("master: WaitForWorkers(%v): must not be negative", st.waitWorkers)
	case st.backoffMin < 0 || st.backoffMax < st.backoffMin:
		return nil, fmt.Errorf("master: Backoff(%v, %v): need 0 < min <= max", st.backoffMin, st.backoffMax)
	}
	for k := range st.preset {
		if err := kv.ValidKey(k); err != nil {
			return nil, fmt.Errorf("master: PresetCache: %w", err)
		}
	}
	m := &Master{name: name, kind: strings.ToLower(kind), cfg: cfg, settings: st, logger: cfg.NamedLogger(name), store: st.store}
	if m.store == nil {
		m.store = kv.NewMemory()
	}
	return m, nil
}

// Name is the master's name.
func (m *Master) Name() string { return m.name }

// Logger is the master's named logger (the original's self.logger).
func (m *Master) Logger() hclog.Logger { return m.logger }

// Cache is the master's key-value store, shared by its clients and workers.
func (m *Master) Cache() kv.Store { return m.store }

// Queued is the number of tasks waiting for a worker now.
func (m *Master) Queued() int {
	if d := m.disp.Load(); d != nil {
		return d.Queued()
	}
	return 0
}

// Workers is the number of workers connected now.
func (m *Master) Workers() int {
	if d := m.disp.Load(); d != nil {
		return d.Workers()
	}
	return 0
}

// ListenAndServe listens on the TCP address addr and calls Serve.
func (m *Master) ListenAndServe(ctx context.Context, addr string) error {
	return m.listenAndServe(ctx, addr, m.Serve)
}

// listenAndServe listens on addr and calls serve, a Master's or a Hub's.
func (m *Master) listenAndServe(ctx context.Context, addr string, serve func(context.Context, net.Listener) error) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("master: %s %s: %w", m.kind, m.name, err)
	}
	return serve(ctx, lis)
}

// Serve serves clients and workers on lis until ctx ends, then stops: it
// reports NOT_SERVING, refuses new messages, lets the workers finish the
// messages it holds and sends their replies, tells the workers to leave,
// all within the stop timeout (palm.WithStopTimeout, default 10 s), and
// closes lis. It returns nil after a stop caused by ctx. Serve may be
// called once.
func (m *Master) Serve(ctx context.Context, lis net.Listener) error {
	gw := parts.NewGateway(parts.GatewayConfig{Window: m.settings.window, WindowBytes: m.settings.windowBytes})
	return m.serve(ctx, lis, compose.Pull, gw)
}

// serve composes the master, in → WorkerPush [→ Gather] → Pub with a
// Cache, and serves it on lis until ctx ends.
func (m *Master) serve(ctx context.Context, lis net.Listener, inName string, in parts.Part) error {
	if !m.served.CompareAndSwap(false, true) {
		lis.Close()
		return errors.New("master: Serve called twice")
	}
	disp := parts.NewDispatcher(parts.DispatcherConfig{
		Scatter:        m.settings.scatter,
		Queue:          m.settings.queue,
		MaxAttempts:    m.settings.maxAttempts,
		TaskTimeout:    m.settings.taskTimeout,
		WaitForWorkers: m.settings.waitWorkers,
	})
	m.disp.Store(disp)
	spec := assemble.Spec{
		Name: m.name, Kind: m.kind, Config: m.cfg, Store: m.store, Preset: m.settings.preset,
		In: in, InName: inName,
		Work: disp, WorkName: compose.WorkerPush,
		Pub: &parts.Replies{Handle: m.settings.handle, Pipelined: m.settings.pipelined},
	}
	if m.settings.gather != nil {
		spec.Gather = &parts.Gather{Fn: m.settings.gather}
	}
	c, err := assemble.Component(spec)
	if err != nil {
		lis.Close()
		return err
	}
	return c.Serve(ctx, lis)
}
