package compose

import (
	"github.com/gopalm/palm"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/kv"
)

// Option configures a Component: every palm option, and those below.
type Option = palm.Option

type settings struct {
	kind  string
	store kv.Store
	queue int
}

// Kind names what the component is, in InfoService and in the kind label
// of its metrics. Default: component.
func Kind(kind string) Option {
	return config.Role("compose.Kind", func(s *settings) { s.kind = kind })
}

// WithStore sets the component's cache. Default: a new in-memory store of
// its own, kv.NewMemory(), within its default quotas.
func WithStore(store kv.Store) Option {
	return config.Role("compose.WithStore", func(s *settings) { s.store = store })
}

// SubscriberQueue sets how many published messages wait for one
// subscriber before the component's publisher waits for it. Default: 1024.
func SubscriberQueue(n int) Option {
	return config.Role("compose.SubscriberQueue", func(s *settings) { s.queue = n })
}
