package parts

import (
	"sync"
	"sync/atomic"
)

// maxMeterFunctions bounds the functions a meter counts one by one; past
// it, new ones count under OtherFunction, so that clients naming endless
// functions cannot grow it without end.
const maxMeterFunctions = 1000

// OtherFunction is the name a meter counts functions under once it counts
// maxMeterFunctions (1000) others.
const OtherFunction = "other"

// meter counts the messages that pass through a component, by step, for
// its metrics: In as they enter (counted by the Router as its inbound parts
// send them), Out as results go on and Failed for error replies (counted by
// Replies). A nil *meter counts nothing. Its methods are safe for
// concurrent use.
type meter struct {
	mu    sync.RWMutex
	steps map[Step]*stepCount // keyed by the step itself: counting allocates nothing
}

// otherStep is the key of the steps counted together past the bound.
var otherStep = Step{Function: OtherFunction}

type stepCount struct {
	in, out, failed atomic.Uint64
}

// newMeter returns an empty meter.
func newMeter() *meter { return &meter{steps: map[Step]*stepCount{}} }

func (m *meter) count(step Step) *stepCount {
	m.mu.RLock()
	c := m.steps[step]
	m.mu.RUnlock()
	if c != nil {
		return c
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if c = m.steps[step]; c != nil {
		return c
	}
	if len(m.steps) >= maxMeterFunctions {
		step = otherStep
		if c = m.steps[step]; c != nil {
			return c
		}
	}
	c = &stepCount{}
	m.steps[step] = c
	return c
}

// in counts a message entering for step.
func (m *meter) in(step Step) {
	if m != nil {
		m.count(step).in.Add(1)
	}
}

// out counts a result of step sent on.
func (m *meter) out(step Step) {
	if m != nil {
		m.count(step).out.Add(1)
	}
}

// failed counts an error reply of step.
func (m *meter) failed(step Step) {
	if m != nil {
		m.count(step).failed.Add(1)
	}
}

// Steps calls f with the counts of each step, in no order.
func (m *meter) Steps(f func(step string, in, out, failed uint64)) {
	if m == nil {
		return
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	for s, c := range m.steps {
		name := s.String()
		if s == otherStep {
			name = OtherFunction
		}
		f(name, c.in.Load(), c.out.Load(), c.failed.Load())
	}
}
