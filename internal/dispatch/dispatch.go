// Package dispatch is the deterministic core of a master: which worker gets
// which task, what each worker holds, what to hand out again when a worker
// goes away, and when to give up on a task. It has no goroutines, no clock
// and no gRPC; the master's stream goroutines feed it events (a worker
// joins, grants credit, finishes a task, leaves; a task arrives; a client
// goes away) and carry out what it returns. It is not safe for concurrent
// use: the master serializes calls.
//
// Policies:
//   - Workers are picked round-robin among those with credit that serve the
//     task's function, so equal workers share a stream evenly and a slow
//     worker never holds more than its credit.
//   - The queue of waiting tasks is bounded; Submit refuses a task when it
//     is full, and the master stops taking messages until there is room.
//   - A task whose worker leaves goes back to the front of the queue, unless
//     it has already been handed out MaxAttempts times: then it fails.
//   - A task handed out before is suspect (it may be what killed a worker),
//     and a worker holds at most one suspect task at a time: a task that
//     kills every worker that takes it then dies alone, and the tasks that
//     happened to share a worker with it once are not failed with it.
//   - A finish or a result from a worker that does not hold the task (a late
//     duplicate after redelivery) is ignored.
package dispatch

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// TaskID identifies a task within one master.
type TaskID uint64

// WorkerID identifies a worker's session within one master.
type WorkerID uint64

// DefaultMaxAttempts is how many times a task is handed out before it fails.
const DefaultMaxAttempts = 3

// MaxCredit caps the credit one worker may hold, however much it grants.
const MaxCredit = 4096

// Task is one message waiting for, or held by, a worker.
type Task struct {
	ID TaskID
	// Function is the function name (without the server) a worker must
	// serve to take the task.
	Function string
	// Origin identifies where the task came from (a client's stream), so
	// that Cancel can drop its queued tasks. Compared with ==.
	Origin any
	// Attempts counts the times the task was handed to a worker.
	Attempts int
	// Value is the caller's: the core never looks at it.
	Value any
}

// ErrFull is returned by Submit when the queue is at capacity.
var ErrFull = errors.New("dispatch: the queue of waiting tasks is full")

type worker struct {
	id        WorkerID
	functions map[string]bool // nil: every function
	credit    int
	held      map[TaskID]*Task
	suspects  int // held tasks that were handed out before
}

func (w *worker) serves(function string) bool {
	return w.functions == nil || w.functions[function]
}

// Core is the dispatch state of one master.
type Core struct {
	maxAttempts int
	capacity    int

	queue []*Task // waiting, oldest first
	ring  []*worker
	next  int // ring index to try first
	byID  map[WorkerID]*worker
	held  int
}

// New returns an empty core that keeps at most capacity tasks waiting and
// hands a task out at most maxAttempts times (0: DefaultMaxAttempts).
func New(capacity, maxAttempts int) *Core {
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	if capacity <= 0 {
		capacity = 1
	}
	return &Core{maxAttempts: maxAttempts, capacity: capacity, byID: map[WorkerID]*worker{}}
}

// Join adds a worker that serves functions (every function when empty),
// with no credit yet. Joining twice with one id is an error.
func (c *Core) Join(id WorkerID, functions []string) error {
	if c.byID[id] != nil {
		return fmt.Errorf("dispatch: worker %d joined twice", id)
	}
	w := &worker{id: id, held: map[TaskID]*Task{}}
	if len(functions) > 0 {
		w.functions = make(map[string]bool, len(functions))
		for _, f := range functions {
			w.functions[f] = true
		}
	}
	c.byID[id] = w
	c.ring = append(c.ring, w)
	return nil
}

// Grant adds n to a worker's credit, capped so that credit plus held tasks
// stay within MaxCredit. It reports false for an unknown worker.
func (c *Core) Grant(id WorkerID, n int) bool {
	w := c.byID[id]
	if w == nil {
		return false
	}
	if n > 0 {
		w.credit = min(w.credit+n, MaxCredit-len(w.held))
	}
	return true
}

// Submit queues a task. It fails with ErrFull when the queue is at capacity.
func (c *Core) Submit(t *Task) error {
	if len(c.queue) >= c.capacity {
		return ErrFull
	}
	c.queue = append(c.queue, t)
	return nil
}

// Push queues a task even when the queue is at capacity: for the further
// tasks of a message whose first task Submit accepted (a scatter), which
// are never refused half-way.
func (c *Core) Push(t *Task) { c.queue = append(c.queue, t) }

// Room is how many more tasks Submit would accept now.
func (c *Core) Room() int { return max(0, c.capacity-len(c.queue)) }

// scanLimit bounds how far past the head of the queue Next looks for a task
// some ready worker serves, so one call stays cheap.
const scanLimit = 64

// Next hands out one task: the oldest waiting task that a worker with
// credit serves, to the next such worker in round-robin order. It reports
// false when no task can be handed out now.
func (c *Core) Next() (WorkerID, *Task, bool) {
	if len(c.queue) == 0 || len(c.ring) == 0 {
		return 0, nil, false
	}
	for qi := 0; qi < len(c.queue) && qi < scanLimit; qi++ {
		t := c.queue[qi]
		for k := range c.ring {
			i := (c.next + k) % len(c.ring)
			w := c.ring[i]
			if w.credit == 0 || !w.serves(t.Function) || (t.Attempts > 0 && w.suspects > 0) {
				continue
			}
			// Take t out: shift the (at most scanLimit) tasks before it
			// one place on, so the cost does not grow with the queue.
			copy(c.queue[1:qi+1], c.queue[:qi])
			c.queue[0] = nil
			c.queue = c.queue[1:]
			w.credit--
			w.held[t.ID] = t
			if t.Attempts > 0 {
				w.suspects++
			}
			c.held++
			t.Attempts++
			c.next = (i + 1) % len(c.ring)
			return w.id, t, true
		}
	}
	return 0, nil, false
}

// Holds reports whether the worker holds the task: results for a task it
// does not hold are to be ignored.
func (c *Core) Holds(id WorkerID, task TaskID) bool {
	w := c.byID[id]
	return w != nil && w.held[task] != nil
}

// Held returns the task if the worker holds it, else nil.
func (c *Core) Held(id WorkerID, task TaskID) *Task {
	if w := c.byID[id]; w != nil {
		return w.held[task]
	}
	return nil
}

// Done marks the task finished by the worker and returns it. It reports
// false when the worker does not hold the task (a late duplicate).
func (c *Core) Done(id WorkerID, task TaskID) (*Task, bool) {
	w := c.byID[id]
	if w == nil {
		return nil, false
	}
	t := w.held[task]
	if t == nil {
		return nil, false
	}
	delete(w.held, task)
	if t.Attempts > 1 {
		w.suspects--
	}
	c.held--
	return t, true
}

// Leave removes a worker. The tasks it held go back to the front of the
// queue, oldest first, except those already handed out MaxAttempts times,
// which are returned as failed. Requeued tasks may push the queue past its
// capacity: they were accepted once and are never dropped.
func (c *Core) Leave(id WorkerID) (failed []*Task) {
	w := c.byID[id]
	if w == nil {
		return nil
	}
	delete(c.byID, id)
	for i, r := range c.ring {
		if r == w {
			c.ring = append(c.ring[:i], c.ring[i+1:]...)
			if c.next > i {
				c.next--
			}
			break
		}
	}
	if len(c.ring) == 0 || c.next >= len(c.ring) {
		c.next = 0
	}
	var back []*Task
	for _, t := range w.held {
		if t.Attempts >= c.maxAttempts {
			failed = append(failed, t)
		} else {
			back = append(back, t)
		}
	}
	c.held -= len(w.held)
	slices.SortFunc(back, byID)
	slices.SortFunc(failed, byID)
	c.queue = append(back, c.queue...)
	return failed
}

// Cancel drops the waiting tasks of an origin and returns them. Tasks of
// the origin that workers hold are left to finish; their results are for
// the caller to drop.
func (c *Core) Cancel(origin any) []*Task {
	var dropped []*Task
	kept := c.queue[:0]
	for _, t := range c.queue {
		if t.Origin == origin {
			dropped = append(dropped, t)
		} else {
			kept = append(kept, t)
		}
	}
	clear(c.queue[len(kept):])
	c.queue = kept
	return dropped
}

// Queued is the number of waiting tasks.
func (c *Core) Queued() int { return len(c.queue) }

// InFlight is the number of tasks workers hold.
func (c *Core) InFlight() int { return c.held }

// Workers is the number of workers that have joined and not left.
func (c *Core) Workers() int { return len(c.ring) }

// Credit is the worker's unused credit, or -1 for an unknown worker.
func (c *Core) Credit(id WorkerID) int {
	if w := c.byID[id]; w != nil {
		return w.credit
	}
	return -1
}

func byID(a, b *Task) int { return cmp.Compare(a.ID, b.ID) }
