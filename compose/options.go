package compose

import (
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/kv"
)

// Option configures a Component: palm's shared options (palm.Option) and
// this package's options.
type Option interface{ config.ForComponent }

// option is an option of this package.
type option struct {
	config.Component
	config.Setting[settings]
}

type settings struct {
	kind  string
	store kv.Store
	queue int
}

// Kind names what the component is, in InfoService and in the kind label
// of its metrics. Default: component.
func Kind(kind string) Option {
	return option{Setting: func(s *settings) { s.kind = kind }}
}

// WithStore sets the component's cache. Default: a new in-memory store of
// its own, kv.NewMemory(), within its default quotas.
func WithStore(store kv.Store) Option {
	return option{Setting: func(s *settings) { s.store = store }}
}

// SubscriberQueue sets how many published messages wait for one
// subscriber before the component's publisher waits for it. Default: 1024.
func SubscriberQueue(n int) Option {
	return option{Setting: func(s *settings) { s.queue = n }}
}
