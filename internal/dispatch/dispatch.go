// Package dispatch is the deterministic core of a master: which worker gets
// which task, what each worker holds, what to hand out again when a worker
// goes away or takes too long, when to give up on a task, which result goes
// to which origin and when a scattered message is complete. It has no
// goroutines, no clock of its own (each event carries its time) and no
// gRPC.
//
// The caller steps it the way a state machine is stepped: Step takes one
// Event (a worker joins, reports results, dones and credit, leaves; a
// message arrives; an origin goes away; time passes; a drain stops the
// handing out), Ready hands out what can go now and returns the batch of
// outputs the steps since the last Advance gathered (tasks to send to
// which worker, results to route and failures to answer in order,
// messages complete, origins to watch, roster changes, when to tick
// next), and Advance forgets that batch once the caller has carried it
// out. The caller does the I/O and nothing else: it never asks the core a
// question in the middle of an event. It is not safe for concurrent use:
// the master serializes calls.
//
// Invariants and policies:
//   - Tasks wait in one queue per function, oldest first, so a backlog of one
//     function never hides the tasks of another from the workers that serve
//     it. A worker with credit takes the oldest task among the functions it
//     serves; workers are picked round-robin among those with credit, so
//     equal workers share a stream evenly and a slow worker never holds more
//     than its credit.
//   - The number of waiting tasks is bounded: the caller submits a message
//     only while Room is above zero, and the master stops taking messages
//     until there is room; the tasks of one message are never refused
//     half-way.
//   - A task for a function no connected worker serves is refused at once
//     (Unserved), or, with Config.WaitForWorkers, waits that long for
//     such a worker and then fails with NoWorker. When the last worker of a
//     function leaves, the function's tasks (those waiting, those it held,
//     and new ones) wait Config.ReplaceWait for a replacement, or
//     WaitForWorkers if that is longer, then fail with NoWorker.
//   - A waiting task whose Deadline passes leaves its queue (Expired); the
//     tasks of an origin that went away leave at once (Gone). No worker
//     spends time on either.
//   - A task held longer than Config.TaskTimeout, or whose worker leaves,
//     goes back to the front of its function's queue for another worker,
//     unless it has already been handed out MaxAttempts times: then it fails
//     (TimedOut, Abandoned). A timed-out task's worker keeps the credit it
//     spent on it until it reports the task done, as it still works on it.
//   - A task handed out before is suspect (it may be what killed a worker),
//     and a worker holds at most one suspect task at a time: a task that
//     kills every worker that takes it then dies alone, and the tasks that
//     happened to share a worker with it once are not failed with it.
//   - A finish or a result from a worker that does not hold the task (a late
//     duplicate after redelivery or a timeout) is ignored (Ignored).
//   - A message completes exactly once, with the output of its last task
//     to end: a Route or Fail marked Done, or a Complete. A task whose
//     results pass Config.MaxResultBytes fails (TooLarge) at once. A
//     worker's result that comes with its done, for the last task of its
//     message, is one Route marked Done.
//   - When an origin goes (Gone), its waiting tasks are dropped before a
//     worker sees them; its held tasks finish as ever. The message of a
//     single origin still completes; those of any other origin are
//     forgotten once nothing of them is held.
package dispatch

import (
	"cmp"
	"container/heap"
	"errors"
	"fmt"
	"slices"
	"time"
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
	// that Gone can drop its waiting tasks; Submit sets it from the message. It must be comparable (a
	// pointer, typically); nil for none.
	Origin any
	// Deadline is when the task is no longer worth starting; the zero time
	// for none. A waiting task past it is expired.
	Deadline time.Time
	// Attempts counts the times the task was handed to a worker.
	Attempts int
	// Value is the caller's: the core never looks at it.
	Value any
	// Message is the message the task is part of; Submit sets it, with
	// Origin and Deadline taken from it.
	Message *Message
	// Rejected marks a task the caller could not make sense of (no step
	// to take): Submit fails it at once (Rejected), counting it in its
	// message.
	Rejected bool

	retry        bool     // in q.retry rather than q.fresh
	results      int32    // payload bytes of the results routed, at most MaxInt32
	q            *fnQueue // the queue it waits in; nil when not waiting
	prev, next   *Task    // queue links
	oprev, onext *Task    // links among the waiting tasks of its origin
	holder       *worker  // the worker holding it; nil when not held
	due          time.Time
	idx          [2]int // positions in the deadline heaps; -1 when absent
}

// Reason says why a task failed.
type Reason int

// The reasons a task fails.
const (
	// Expired: its Deadline passed while it waited.
	Expired Reason = iota + 1
	// NoWorker: no connected worker serves its function (and none came
	// within Config.WaitForWorkers).
	NoWorker
	// TimedOut: MaxAttempts workers each held it past Config.TaskTimeout.
	TimedOut
	// Abandoned: it was handed to MaxAttempts workers and the last one went
	// away (or timed out) before finishing it.
	Abandoned
	// Unserved: no connected worker serves its function and the core does
	// not wait for one (refused at once).
	Unserved
	// Rejected: the caller marked it Rejected (a message with no step).
	Rejected
	// TooLarge: its results passed Config.MaxResultBytes; the worker's
	// further results and its done for it are ignored.
	TooLarge
	// Failed: its worker reported it done with an error.
	Failed
)

func (r Reason) String() string {
	switch r {
	case Expired:
		return "expired"
	case NoWorker:
		return "no worker"
	case TimedOut:
		return "timed out"
	case Abandoned:
		return "abandoned"
	case Unserved:
		return "unserved"
	case Rejected:
		return "rejected"
	case TooLarge:
		return "too large"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// Failure is a task the core gave up on, and why.
type Failure struct {
	Task   *Task
	Reason Reason
}

// Errors of submitOne and push.
var (
	// ErrFull: the queues hold Config.Capacity waiting tasks.
	ErrFull = errors.New("dispatch: the queue of waiting tasks is full")
	// ErrNoWorker: no connected worker serves the task's function, and the
	// core does not wait for one.
	ErrNoWorker = errors.New("dispatch: no connected worker serves the function")
	// ErrExpired: the task's deadline has already passed.
	ErrExpired = errors.New("dispatch: the task's deadline has passed")
)

// Config sets the core's bounds.
type Config struct {
	// Capacity is how many tasks may wait; less than 1 means 1.
	Capacity int
	// MaxAttempts is how many times a task is handed out before it fails;
	// 0 means DefaultMaxAttempts.
	MaxAttempts int
	// TaskTimeout bounds how long a worker may hold a task before it goes
	// to another; 0 for no bound.
	TaskTimeout time.Duration
	// WaitForWorkers is how long a task for a function no connected worker
	// serves waits for one; 0 refuses it at once.
	WaitForWorkers time.Duration
	// ReplaceWait is how long the tasks of a function whose last worker
	// left wait for a replacement (a restarting worker); 0 for not at all.
	ReplaceWait time.Duration
	// MaxResultBytes bounds the result payload bytes of one task; past it
	// the task fails (TooLarge). 0 for no bound.
	MaxResultBytes int
}

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

// list is an intrusive doubly linked list of tasks.
type list struct{ head, tail *Task }

func (l *list) pushBack(t *Task) {
	t.prev, t.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = t
	} else {
		l.head = t
	}
	l.tail = t
}

// insertByID keeps l in ID order (requeued tasks go back where they were).
func (l *list) insertByID(t *Task) {
	at := l.head
	for at != nil && at.ID < t.ID {
		at = at.next
	}
	if at == nil {
		l.pushBack(t)
		return
	}
	t.next, t.prev = at, at.prev
	if at.prev != nil {
		at.prev.next = t
	} else {
		l.head = t
	}
	at.prev = t
}

func (l *list) remove(t *Task) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		l.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		l.tail = t.prev
	}
	t.prev, t.next = nil, nil
}

// fnQueue is the waiting tasks of one function, and who serves it.
type fnQueue struct {
	fn      string
	retry   list // handed out before, in ID order; they go first
	fresh   list // never handed out, oldest first
	n       int
	servers int // connected workers that name the function
}

// originTasks links the waiting tasks of one origin, and whether the
// caller watches the origin's end (kept while watched, even with no task).
type originTasks struct {
	head    *Task
	single  bool // the origin stands for one message alone
	watched bool
}

// Core is the dispatch state of one master.
type Core struct {
	cfg Config

	queues    map[string]*fnQueue    // functions with waiting tasks or named servers
	active    map[string]*fnQueue    // functions with waiting tasks
	unserved  map[*fnQueue]time.Time // waiting for a worker until
	recent    map[string]time.Time   // functions whose last worker left: wait for another until
	recentAll time.Time              // likewise for any function, after a worker of every function left
	origins   map[any]*originTasks
	waiting   int
	wildcard  int // connected workers that serve every function

	deadlines taskHeap // waiting tasks with a Deadline
	timeouts  taskHeap // held tasks, by when TaskTimeout passes

	ring  []*worker
	rr    int // ring index to try first
	byID  map[WorkerID]*worker
	nheld int

	requeued uint64
	lastID   TaskID          // the last ID Submit gave a task
	stopped  bool            // Stop: hand out no more tasks
	warned   map[string]bool // functions reported Waiting since a worker last joined
	rd       Ready           // the outputs of the steps since the last Advance
}

// New returns an empty core with cfg's bounds.
func New(cfg Config) *Core {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Capacity <= 0 {
		cfg.Capacity = 1
	}
	return &Core{
		cfg:       cfg,
		queues:    map[string]*fnQueue{},
		active:    map[string]*fnQueue{},
		unserved:  map[*fnQueue]time.Time{},
		recent:    map[string]time.Time{},
		origins:   map[any]*originTasks{},
		warned:    map[string]bool{},
		byID:      map[WorkerID]*worker{},
		deadlines: taskHeap{which: 0},
		timeouts:  taskHeap{which: 1},
	}
}

// queue returns the queue of fn, making it when missing.
func (c *Core) queue(fn string) *fnQueue {
	q := c.queues[fn]
	if q == nil {
		q = &fnQueue{fn: fn}
		c.queues[fn] = q
	}
	return q
}

func (c *Core) served(q *fnQueue) bool { return c.wildcard > 0 || q.servers > 0 }

// tidy forgets a queue nobody needs any more.
func (c *Core) tidy(q *fnQueue) {
	if q.n == 0 {
		delete(c.active, q.fn)
		delete(c.unserved, q)
		if q.servers == 0 {
			delete(c.queues, q.fn)
		}
	}
}

// join adds a worker that serves functions (every function when empty),
// with no credit yet. Joining twice with one id is an error. Tasks waiting
// for a worker of those functions stop waiting for one.
func (c *Core) join(id WorkerID, functions []string) error {
	if c.byID[id] != nil {
		return fmt.Errorf("dispatch: worker %d joined twice", id)
	}
	w := &worker{id: id, held: map[TaskID]*Task{}}
	if len(functions) == 0 {
		c.wildcard++
		clear(c.unserved)
		clear(c.recent)
		c.recentAll = time.Time{}
	} else {
		w.functions = make(map[string]bool, len(functions))
		for _, f := range functions {
			if w.functions[f] {
				continue
			}
			w.functions[f] = true
			q := c.queue(f)
			q.servers++
			delete(c.unserved, q)
			delete(c.recent, f)
		}
	}
	c.byID[id] = w
	c.ring = append(c.ring, w)
	return nil
}

// grant adds n to a worker's credit, capped so that credit plus held tasks
// stay within MaxCredit. It reports false for an unknown worker.
func (c *Core) grant(id WorkerID, n int) bool {
	w := c.byID[id]
	if w == nil {
		return false
	}
	if n > 0 {
		w.credit = max(0, min(w.credit+n, MaxCredit-len(w.held)))
	}
	return true
}

// submitOne queues a task at now. It fails with ErrFull when the queues are at
// capacity, ErrExpired when the task's deadline has passed, and ErrNoWorker
// when no connected worker serves its function and the core does not wait.
func (c *Core) submitOne(t *Task, now time.Time) error {
	if c.waiting >= c.cfg.Capacity {
		return ErrFull
	}
	return c.push(t, now)
}

// push is submitOne without the capacity check: for the further tasks of a
// message whose first task was accepted (a scatter), which are never
// refused half-way for room.
func (c *Core) push(t *Task, now time.Time) error {
	if !t.Deadline.IsZero() && !now.Before(t.Deadline) {
		return ErrExpired
	}
	q := c.queue(t.Function)
	if !c.served(q) && !c.await(q, now, c.cfg.WaitForWorkers) {
		c.tidy(q)
		return ErrNoWorker
	}
	t.idx = [2]int{-1, -1}
	q.fresh.pushBack(t)
	c.enqueued(q, t)
	return nil
}

// enqueued counts t, just linked into q, as waiting.
func (c *Core) enqueued(q *fnQueue, t *Task) {
	t.q = q
	q.n++
	c.waiting++
	c.active[q.fn] = q
	if t.Origin != nil {
		o := c.origins[t.Origin]
		if o == nil {
			o = &originTasks{single: t.Message != nil && t.Message.Single}
			c.origins[t.Origin] = o
		}
		t.oprev, t.onext = nil, o.head
		if o.head != nil {
			o.head.oprev = t
		}
		o.head = t
	}
	if !t.Deadline.IsZero() {
		heap.Push(&c.deadlines, t)
	}
}

// unqueue takes a waiting task out of every structure that holds it.
func (c *Core) unqueue(t *Task) {
	q := t.q
	if t.retry {
		q.retry.remove(t)
	} else {
		q.fresh.remove(t)
	}
	t.q, t.retry = nil, false
	q.n--
	c.waiting--
	if t.Origin != nil {
		if t.oprev != nil {
			t.oprev.onext = t.onext
		} else if o := c.origins[t.Origin]; o != nil {
			o.head = t.onext
			if o.head == nil && !o.watched {
				delete(c.origins, t.Origin)
			}
		}
		if t.onext != nil {
			t.onext.oprev = t.oprev
		}
		t.oprev, t.onext = nil, nil
	}
	if t.idx[0] >= 0 {
		heap.Remove(&c.deadlines, t.idx[0])
	}
	c.tidy(q)
}

// requeue puts a task handed out before back at the front of its queue, in
// ID order among the others handed out before. It reports false when no
// connected worker serves the function and the core does not wait.
func (c *Core) requeue(t *Task, now time.Time) bool {
	q := c.queue(t.Function)
	if !c.served(q) && !c.await(q, now, c.replaceWait()) {
		c.tidy(q)
		return false
	}
	t.retry = true
	q.retry.insertByID(t)
	c.enqueued(q, t)
	c.requeued++
	return true
}

// replaceWait is how long the tasks of a function that lost its last
// worker wait for another.
func (c *Core) replaceWait() time.Duration { return max(c.cfg.ReplaceWait, c.cfg.WaitForWorkers) }

// await makes q, a queue of a function nobody serves, wait for a worker:
// until the wait already set for it, or the end of the replacement wait of
// a function whose worker just left, or wait from now. It reports false when
// q is not to wait at all.
func (c *Core) await(q *fnQueue, now time.Time, wait time.Duration) bool {
	if _, ok := c.unserved[q]; ok {
		return true
	}
	until := c.recent[q.fn]
	if c.recentAll.After(until) {
		until = c.recentAll
	}
	if !until.After(now) {
		if wait <= 0 {
			return false
		}
		until = now.Add(wait)
	}
	c.unserved[q] = until
	return true
}

// Room is how many more tasks may wait now: a message may be submitted
// while it is above zero.
func (c *Core) Room() int { return max(0, c.cfg.Capacity-c.waiting) }

// next hands out one task at now: the oldest waiting task among the
// functions the next worker with credit serves, in round-robin order of the
// workers. It reports false when no task can be handed out now.
func (c *Core) next(now time.Time) (WorkerID, *Task, bool) {
	if c.waiting == 0 {
		return 0, nil, false
	}
	for k := range c.ring {
		i := (c.rr + k) % len(c.ring)
		w := c.ring[i]
		if w.credit == 0 {
			continue
		}
		t := c.oldestFor(w)
		if t == nil {
			continue
		}
		c.unqueue(t)
		w.credit--
		w.held[t.ID] = t
		t.holder = w
		if t.Attempts > 0 {
			w.suspects++
		}
		c.nheld++
		t.Attempts++
		if c.cfg.TaskTimeout > 0 {
			t.due = now.Add(c.cfg.TaskTimeout)
			heap.Push(&c.timeouts, t)
		}
		c.rr = (i + 1) % len(c.ring)
		return w.id, t, true
	}
	return 0, nil, false
}

// oldestFor picks the task w should take: a task handed out before first
// (unless w already holds a suspect), then the oldest. It looks at the
// fewer of w's functions and the functions with waiting tasks.
func (c *Core) oldestFor(w *worker) *Task {
	var retry, fresh *Task
	consider := func(q *fnQueue) {
		if t := q.retry.head; t != nil && w.suspects == 0 && (retry == nil || t.ID < retry.ID) {
			retry = t
		}
		if t := q.fresh.head; t != nil && (fresh == nil || t.ID < fresh.ID) {
			fresh = t
		}
	}
	if w.functions == nil || len(w.functions) > len(c.active) {
		for _, q := range c.active {
			if w.serves(q.fn) {
				consider(q)
			}
		}
	} else {
		for f := range w.functions {
			if q := c.active[f]; q != nil {
				consider(q)
			}
		}
	}
	if retry != nil {
		return retry
	}
	return fresh
}

// holds returns the task if the worker holds it, else nil: results for a
// task it does not hold are to be ignored.
func (c *Core) holds(id WorkerID, task TaskID) *Task {
	if w := c.byID[id]; w != nil {
		return w.held[task]
	}
	return nil
}

// release takes a held task from its worker.
func (c *Core) release(t *Task) {
	w := t.holder
	delete(w.held, t.ID)
	if t.Attempts > 1 {
		w.suspects--
	}
	t.holder = nil
	c.nheld--
	if t.idx[1] >= 0 {
		heap.Remove(&c.timeouts, t.idx[1])
	}
}

// done marks the task finished by the worker and returns it. It reports
// false when the worker does not hold the task (a late duplicate).
func (c *Core) done(id WorkerID, task TaskID) (*Task, bool) {
	t := c.holds(id, task)
	if t == nil {
		return nil, false
	}
	c.release(t)
	return t, true
}

// leave removes a worker at now. The tasks it held go back to the front of
// their queues, except those already handed out MaxAttempts times
// (Abandoned). A function nobody serves any more gets no worker: its
// waiting and returned tasks fail with NoWorker, or wait for one for
// Config.WaitForWorkers. Returned tasks may push the queues past their
// capacity: they were accepted once and are never dropped for room.
func (c *Core) leave(id WorkerID, now time.Time) []Failure {
	w := c.byID[id]
	if w == nil {
		return nil
	}
	delete(c.byID, id)
	for i, r := range c.ring {
		if r == w {
			c.ring = append(c.ring[:i], c.ring[i+1:]...)
			if c.rr > i {
				c.rr--
			}
			break
		}
	}
	if len(c.ring) == 0 || c.rr >= len(c.ring) {
		c.rr = 0
	}
	var failed []Failure
	held := make([]*Task, 0, len(w.held))
	for _, t := range w.held {
		held = append(held, t)
	}
	slices.SortFunc(held, byID)
	for _, t := range held {
		c.release(t)
	}
	// Who serves what, now that w is gone.
	var orphaned []*fnQueue
	until := now.Add(c.replaceWait())
	if w.functions == nil {
		c.wildcard--
		if c.wildcard == 0 {
			c.recentAll = until
			for _, q := range c.active {
				if q.servers == 0 {
					orphaned = append(orphaned, q)
				}
			}
		}
	} else {
		for f := range w.functions {
			q := c.queues[f]
			q.servers--
			if q.servers == 0 && c.wildcard == 0 {
				c.recent[f] = until
				if q.n > 0 {
					orphaned = append(orphaned, q)
				}
			}
			c.tidy(q)
		}
	}
	for _, q := range orphaned {
		failed = append(failed, c.orphan(q, now)...)
	}
	for _, t := range held {
		switch {
		case t.Attempts >= c.cfg.MaxAttempts:
			failed = append(failed, Failure{t, Abandoned})
		case !c.requeue(t, now):
			failed = append(failed, Failure{t, NoWorker})
		}
	}
	slices.SortFunc(failed, byTask)
	return failed
}

// orphan handles a queue whose last worker left: its tasks wait for a
// replacement, or fail when the core waits for none.
func (c *Core) orphan(q *fnQueue, now time.Time) []Failure {
	if c.await(q, now, c.replaceWait()) {
		return nil
	}
	return c.failQueue(q, NoWorker)
}

// failQueue takes every waiting task out of q, failing each for why.
func (c *Core) failQueue(q *fnQueue, why Reason) []Failure {
	var failed []Failure
	for _, l := range []*list{&q.retry, &q.fresh} {
		for l.head != nil {
			t := l.head
			c.unqueue(t)
			failed = append(failed, Failure{t, why})
		}
	}
	return failed
}

// cancel drops the waiting tasks of an origin and returns them. Tasks of
// the origin that workers hold are left to finish; their results are for
// the caller to drop.
func (c *Core) cancel(origin any) []*Task {
	o := c.origins[origin]
	if o == nil {
		return nil
	}
	var dropped []*Task
	for o.head != nil {
		t := o.head
		c.unqueue(t) // moves o.head on, and forgets o with the last
		dropped = append(dropped, t)
	}
	slices.SortFunc(dropped, byID)
	return dropped
}

// expire applies the passing of time up to now: waiting tasks past their
// Deadline fail (Expired); tasks that waited for a worker as long as they
// may fail (NoWorker); tasks held past Config.TaskTimeout
// go to another worker, or fail (TimedOut) after MaxAttempts.
func (c *Core) expire(now time.Time) []Failure {
	var failed []Failure
	for c.deadlines.Len() > 0 && !now.Before(c.deadlines.tasks[0].Deadline) {
		t := c.deadlines.tasks[0]
		c.unqueue(t)
		failed = append(failed, Failure{t, Expired})
	}
	for c.timeouts.Len() > 0 && !now.Before(c.timeouts.tasks[0].due) {
		t := c.timeouts.tasks[0]
		c.release(t)
		switch {
		case t.Attempts >= c.cfg.MaxAttempts:
			failed = append(failed, Failure{t, TimedOut})
		case !c.requeue(t, now):
			failed = append(failed, Failure{t, NoWorker})
		}
	}
	for q, until := range c.unserved {
		if !now.Before(until) {
			failed = append(failed, c.failQueue(q, NoWorker)...)
		}
	}
	for f, until := range c.recent {
		if !now.Before(until) {
			delete(c.recent, f)
		}
	}
	slices.SortFunc(failed, byTask)
	return failed
}

// nextDeadline is the earliest time at which Expire has something to do,
// and false when nothing waits on time.
func (c *Core) nextDeadline() (time.Time, bool) {
	var at time.Time
	consider := func(t time.Time) {
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	if c.deadlines.Len() > 0 {
		consider(c.deadlines.tasks[0].Deadline)
	}
	if c.timeouts.Len() > 0 {
		consider(c.timeouts.tasks[0].due)
	}
	for _, until := range c.unserved {
		consider(until)
	}
	if len(c.recent) > 0 {
		// Only to forget them: an Expire call a while later is as good.
		for _, until := range c.recent {
			consider(until)
			break
		}
	}
	return at, !at.IsZero()
}

// Serves reports whether a connected worker serves function.
func (c *Core) Serves(function string) bool {
	if c.wildcard > 0 {
		return true
	}
	q := c.queues[function]
	return q != nil && q.servers > 0
}

// Functions returns the functions that connected workers name, sorted, at
// most limit of them (a worker of every function names none).
func (c *Core) Functions(limit int) []string {
	var names []string
	for f, q := range c.queues {
		if q.servers > 0 {
			names = append(names, f)
		}
	}
	slices.Sort(names)
	if len(names) > limit {
		names = names[:limit]
	}
	return names
}

// Requeued is how many times, in all, a task went back to a queue for
// another worker because its worker left or held it too long.
func (c *Core) Requeued() uint64 { return c.requeued }

// Queued is the number of waiting tasks.
func (c *Core) Queued() int { return c.waiting }

// InFlight is the number of tasks workers hold.
func (c *Core) InFlight() int { return c.nheld }

// Workers is the number of workers that have joined and not left.
func (c *Core) Workers() int { return len(c.ring) }

// Credit is the worker's unused credit, or -1 for an unknown worker.
func (c *Core) Credit(id WorkerID) int {
	if w := c.byID[id]; w != nil {
		return w.credit
	}
	return -1
}

func byID(a, b *Task) int     { return cmp.Compare(a.ID, b.ID) }
func byTask(a, b Failure) int { return byID(a.Task, b.Task) }

// taskHeap orders tasks by Deadline (which 0) or by due (which 1), keeping
// each task's position in it in Task.idx[which].
type taskHeap struct {
	which int
	tasks []*Task
}

func (h *taskHeap) key(t *Task) time.Time {
	if h.which == 0 {
		return t.Deadline
	}
	return t.due
}

func (h *taskHeap) Len() int           { return len(h.tasks) }
func (h *taskHeap) Less(i, j int) bool { return h.key(h.tasks[i]).Before(h.key(h.tasks[j])) }
func (h *taskHeap) Swap(i, j int) {
	h.tasks[i], h.tasks[j] = h.tasks[j], h.tasks[i]
	h.tasks[i].idx[h.which] = i
	h.tasks[j].idx[h.which] = j
}
func (h *taskHeap) Push(x any) {
	t := x.(*Task)
	t.idx[h.which] = len(h.tasks)
	h.tasks = append(h.tasks, t)
}
func (h *taskHeap) Pop() any {
	n := len(h.tasks) - 1
	t := h.tasks[n]
	h.tasks[n] = nil
	h.tasks = h.tasks[:n]
	t.idx[h.which] = -1
	return t
}
