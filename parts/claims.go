package parts

import (
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// MaxClaims bounds the client ids a publisher keeps claimed at once.
const MaxClaims = 1 << 16

// ClaimIdle is how long a client id stays claimed by its caller after its
// last subscription ended.
const ClaimIdle = 10 * time.Minute

// claims binds client ids (topics) to the caller that first subscribed with
// them, so that another caller cannot read a client's replies. A claim is
// held while a subscription uses it and ClaimIdle after, then forgotten;
// at most max are kept, past which new ones are refused.
type claims struct {
	mu   sync.Mutex
	by   map[string]*claim
	max  int
	idle time.Duration
}

type claim struct {
	owner string
	refs  int       // subscriptions using it now
	last  time.Time // when the last one ended
}

// take claims topics for owner, all or none.
func (c *claims) take(owner string, topics []string, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	fresh := 0
	for _, t := range topics {
		cl := c.by[t]
		switch {
		case cl == nil || c.expired(cl, now):
			fresh++
		case cl.owner != owner:
			return status.Errorf(codes.PermissionDenied, "client id %q belongs to another caller: a client id is bound to the token or certificate that first subscribed with it; subscribe with a client id of your own (palm's client makes a random one)", truncate(t, 64))
		}
	}
	if len(c.by)+fresh > c.max {
		for t, cl := range c.by {
			if c.expired(cl, now) {
				delete(c.by, t)
			}
		}
		if len(c.by)+fresh > c.max {
			return status.Errorf(codes.ResourceExhausted, "this component holds %d client ids for their callers, its limit; try again once some have been idle for %v", len(c.by), c.idle)
		}
	}
	for _, t := range topics {
		cl := c.by[t]
		if cl == nil || c.expired(cl, now) {
			cl = &claim{owner: owner}
			c.by[t] = cl
		}
		cl.refs++
	}
	return nil
}

// give releases one use of each of topics.
func (c *claims) give(topics []string, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range topics {
		if cl := c.by[t]; cl != nil && cl.refs > 0 {
			cl.refs--
			cl.last = now
		}
	}
}

func (c *claims) expired(cl *claim, now time.Time) bool {
	return cl.refs == 0 && now.Sub(cl.last) >= c.idle
}
