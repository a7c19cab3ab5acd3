package master

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm/compose"
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

// New returns a Master named name. It does no I/O. It fails when the name is
// empty or holds a dot or a space, or when an option's value is invalid.
func New(name string, opts ...Option) (*Master, error) {
	return newMaster("Master", name, opts)
}

func newMaster[O config.Option](kind, name string, opts []O) (*Master, error) {
	if err := names.Component(strings.ToLower(kind), name); err != nil {
		return nil, fmt.Errorf("master: invalid name %q: %w", name, err)
	}
	var st settings
	cfg, err := config.Apply(opts, &st)
	if err != nil {
		return nil, err
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
	if addr := m.settings.httpAddress; addr != "" && inName == compose.Pull {
		h, err := parts.NewHTTPGateway(parts.HTTPGatewayConfig{Address: addr})
		if err != nil {
			lis.Close()
			return err
		}
		spec.HTTP = h
	}
	c, err := assemble.Component(spec)
	if err != nil {
		lis.Close()
		return err
	}
	return c.Serve(ctx, lis)
}
