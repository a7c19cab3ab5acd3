// Package assemble is the one assembly of palm's own components from
// parts: every Server, Pipeline, Sink, Master and Hub is a composition of
// an intake, a worker part, an optional gather, Pub and a Cache.
package assemble

import (
	"github.com/gopalm/palm/compose"
	"github.com/gopalm/palm/internal/config"
	"github.com/gopalm/palm/kv"
	"github.com/gopalm/palm/parts"
)

// Spec is what a component is made of.
type Spec struct {
	Name   string
	Kind   string // server, pipeline, sink, master, hub
	Config *config.Config
	Store  kv.Store
	// Queue is the publisher's subscriber queue; 0 for the default.
	Queue int
	// Preset is stored in the cache before the component serves.
	Preset map[string][]byte

	// In takes the messages in: a parts.Gateway (named compose.Pull) or a
	// parts.Subscriber (compose.Sub).
	In     parts.Part
	InName string
	// Work does the work: a parts.Dispatcher (compose.WorkerPush) or a
	// parts.Functions (compose.Functions).
	Work     parts.Part
	WorkName string
	// HTTP, when not nil, is a second intake (compose.HTTP) into Work.
	HTTP parts.Part
	// Gather, when not nil, comes between Work and Pub.
	Gather *parts.Gather
	// Pub sends the results on.
	Pub *parts.Replies
	// Extra are bypass parts beside the cache, by name.
	Extra map[string]parts.Part
}

// Component composes s.
func Component(s Spec) (*compose.Component, error) {
	c, err := compose.New(s.Name, config.Same(s.Config), compose.Kind(s.Kind), compose.WithStore(s.Store), compose.SubscriberQueue(s.Queue))
	if err != nil {
		return nil, err
	}
	c.PresetCache(s.Preset)
	in, work := s.InName, s.WorkName
	c.Inbound(in, s.In, work)
	if s.HTTP != nil {
		c.Inbound(compose.HTTP, s.HTTP, work)
	}
	if s.Gather != nil {
		c.Outbound(work, s.Work, compose.Gather)
		c.Outbound(compose.Gather, s.Gather, compose.Pub)
	} else {
		c.Outbound(work, s.Work, compose.Pub)
	}
	c.Outbound(compose.Pub, s.Pub, "")
	c.Bypass(compose.Cache, &parts.Cache{})
	for name, p := range s.Extra {
		c.Bypass(name, p)
	}
	return c, nil
}
