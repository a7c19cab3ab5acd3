// Package drain is the gate of a component that stops taking work when it
// drains: it counts the work held, refuses new work once draining begins,
// and tells when what it held is finished.
package drain

import (
	"context"
	"sync"
	"sync/atomic"
)

// Gate counts the work a component holds. Enter takes work in unless the
// gate is draining; Hold takes it in regardless (work the component took
// before it could refuse); Leave gives it back. Drain closes the gate and
// waits until nothing is held. A Gate is safe for concurrent use; make one
// with New.
type Gate struct {
	held     atomic.Int64
	draining atomic.Bool
	idleOnce sync.Once
	idle     chan struct{} // closed when draining and nothing is held
}

// New returns an open Gate that holds nothing.
func New() *Gate { return &Gate{idle: make(chan struct{})} }

// Enter counts one piece of work in and reports true, or, once the gate is
// draining, counts nothing and reports false.
func (g *Gate) Enter() bool {
	// Counted before the check, so that a Drain that sees nothing held
	// cannot miss work entering at the same time.
	g.held.Add(1)
	if g.draining.Load() {
		g.Leave(1)
		return false
	}
	return true
}

// Hold counts n pieces of work in, even while draining.
func (g *Gate) Hold(n int64) { g.held.Add(n) }

// Leave counts n pieces of work out; the last one out of a draining gate
// makes Idle ready.
func (g *Gate) Leave(n int64) {
	if n == 0 {
		return
	}
	if g.held.Add(-n) == 0 && g.draining.Load() {
		g.idleOnce.Do(func() { close(g.idle) })
	}
}

// Held is the work counted in and not yet out.
func (g *Gate) Held() int64 { return g.held.Load() }

// Draining reports whether Drain has been called.
func (g *Gate) Draining() bool { return g.draining.Load() }

// Idle is closed once the gate is draining and holds nothing.
func (g *Gate) Idle() <-chan struct{} { return g.idle }

// Drain closes the gate (Enter refuses from now on) and waits until
// nothing is held, or ctx ends: then it returns ctx's error. It may be
// called more than once.
func (g *Gate) Drain(ctx context.Context) error {
	g.draining.Store(true)
	if g.held.Load() == 0 {
		g.idleOnce.Do(func() { close(g.idle) })
	}
	select {
	case <-g.idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
