package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/internal/names"
	"github.com/gopalm/palm/internal/registry"
	"github.com/gopalm/palm/kv"
)

// core is what a Server, a Pipeline and a Sink share: a name, functions
// registered by name, a logger and a cache.
type core struct {
	kind     string
	name     string
	cfg      *config.Config
	settings settings
	logger   hclog.Logger

	handlers *registry.Registry[palm.Handler]
	served   atomic.Bool
}

func newCore[O config.Option](kind, name string, opts []O) (*core, error) {
	if err := checkName(strings.ToLower(kind), name); err != nil {
		return nil, err
	}
	cfg, st, err := newSettings(opts)
	if err != nil {
		return nil, err
	}
	c := &core{kind: kind, name: name, cfg: cfg, settings: st, logger: cfg.NamedLogger(name), handlers: registry.New[palm.Handler]("pipeline")}
	return c, nil
}

func checkName(what, name string) error {
	if err := names.Component(what, name); err != nil {
		return fmt.Errorf("pipeline: invalid %s name %q: %w", what, name, err)
	}
	return nil
}

// Name is the component's name.
func (c *core) Name() string { return c.name }

// Logger is the component's named logger, for use in functions (the
// original's self.logger).
func (c *core) Logger() hclog.Logger { return c.logger }

// Cache is the component's key-value store, the one its CacheService
// serves.
func (c *core) Cache() kv.Store { return c.settings.store }

// Handle registers h as the function named function. It panics if the name
// is empty or holds a dot or a space, if h is nil, or if the name is taken,
// as net/http's ServeMux does for such programming errors. Functions may be
// registered at any time, also while serving.
func (c *core) Handle(function string, h palm.Handler) { c.handlers.Add(function, h) }

// HandleFunc registers f as the function named function; see Handle.
func (c *core) HandleFunc(function string, f func(ctx context.Context, payload []byte) ([]byte, error)) {
	c.Handle(function, palm.HandlerFunc(f))
}

func (c *core) lookup(function string) (palm.Handler, bool) { return c.handlers.Lookup(function) }

// names lists the functions registered, sorted.
func (c *core) names() []string { return c.handlers.Names() }

func (c *core) known(function string) bool {
	_, ok := c.lookup(function)
	return ok
}
