package dispatch

import (
	"math"
	"time"
)

// Message is one message the caller hands in, scattered into the tasks of
// one Submit. The core counts its tasks down as they end (a result with
// the last done, a failure, a drop) and completes the message with the
// output of the last one.
type Message struct {
	// Origin is where the message came from (a client's stream, a call),
	// so that Gone can drop its waiting tasks; it must be comparable (a
	// pointer, typically); nil for none.
	Origin any
	// Deadline is when the message is no longer worth starting; the zero
	// time for none.
	Deadline time.Time
	// Sequence is the caller's number for the message: the core never
	// looks at it.
	Sequence uint64
	// Single marks an origin that stands for this message alone (one
	// call): when it goes, the message is still completed (Complete, once
	// its held tasks end), and once the message is complete the origin
	// is no longer watched. The tasks of an origin that is not single
	// are dropped silently when it goes.
	Single bool

	remaining int32 // tasks not yet ended
}

// EventKind says what an Event is.
type EventKind int

// The events the core steps.
const (
	// Join: Worker connected, serving Functions (every function when
	// empty), with no credit yet.
	Join EventKind = iota + 1
	// Leave: Worker went away.
	Leave
	// Submit: Message arrived, scattered into Tasks (none: it completes
	// at once). The caller submits only while Room is above zero; the
	// tasks of one message are never refused half-way for room.
	Submit
	// Report: Worker sent Results, then Dones, then Credit more.
	Report
	// Gone: the call of Origin ended.
	Gone
	// Unsent: the task Task, assigned to Worker, was not sent because its
	// origin had ended: the worker gets its credit back and the origin is
	// gone.
	Unsent
	// Tick: time passed up to At.
	Tick
	// Stop: hand out no more tasks (a drain).
	Stop
)

// Event is one input of Step. At is when it happened; the other fields
// are those its Kind names.
type Event struct {
	Kind      EventKind
	At        time.Time
	Worker    WorkerID
	Functions []string
	Message   *Message
	Tasks     []*Task
	Results   []Result
	Dones     []Finish
	Credit    int
	Origin    any
	Task      TaskID
}

// Result is one result a worker reports for a task.
type Result struct {
	Task  TaskID
	Bytes int // its payload size, counted against Config.MaxResultBytes
	Value any // the caller's: handed back in the Route output
}

// Finish is a worker's report that a task is done.
type Finish struct {
	Task   TaskID
	Failed bool // done with an error
	Value  any  // the caller's: handed back in the Fail output
}

// OutputKind says what an Output asks of the caller.
type OutputKind int

// The outputs that reach a message's origin, in the order to carry out.
const (
	// Route: send the result Value of Task on, completing its message when
	// Done.
	Route OutputKind = iota + 1
	// Fail: answer Task with an error for Reason (Value is the Finish's for
	// Failed), completing its message when Done.
	Fail
	// Complete: Message is complete, with no reply to carry it.
	Complete
	// Dropped: Task left because its origin went; nothing to send.
	Dropped
)

// Output is one decision about a message, in order within a Ready.
type Output struct {
	Kind    OutputKind
	Task    *Task // nil for Complete
	Message *Message
	Reason  Reason // Fail
	Value   any    // Route: the Result's; Fail: the Finish's (Failed), the WorkerID (TooLarge)
	Done    bool   // Route, Fail: the output completes its message
}

// Assignment is a task to send to a worker.
type Assignment struct {
	Worker WorkerID
	Task   *Task
}

// Ignored is a result or a done from a worker for a task it does not hold
// (a late duplicate): nothing to do but perhaps log it.
type Ignored struct {
	Worker WorkerID
	Task   TaskID
	Done   bool // a done, not a result
}

// Departure is a worker that left, and how many tasks failed with it.
type Departure struct {
	Worker WorkerID
	Failed int
}

// Ready is what the steps since the last Advance ask of the caller. It is
// the core's: valid until Advance.
type Ready struct {
	// Outputs are the messages' outputs, in the order to carry out.
	Outputs []Output
	// Assigned are the tasks to send, in the order handed out.
	Assigned []Assignment
	// Watch and Unwatch are the origins whose end to start and stop
	// watching (each end watched is reported as a Gone event).
	Watch, Unwatch []any
	// Joined and Left are the roster's changes.
	Joined []WorkerID
	Left   []Departure
	// Waiting are the functions whose tasks began waiting for a worker
	// (each reported once until a worker joins).
	Waiting []string
	// Ignored are the reports for tasks their workers did not hold.
	Ignored []Ignored
	// TimedOut counts the tasks that went to other workers because their
	// workers held them past Config.TaskTimeout.
	TimedOut int
	// Deadline is when to Tick next; the zero time for never.
	Deadline time.Time
}

// maxWarned bounds the functions remembered as reported Waiting.
const maxWarned = 1024

// Step applies one event. Its outputs gather in the Ready that the next
// call of Ready returns.
func (c *Core) Step(ev Event) {
	switch ev.Kind {
	case Join:
		c.stepJoin(ev)
	case Leave:
		c.stepLeave(ev)
	case Submit:
		c.stepSubmit(ev)
	case Report:
		c.stepReport(ev)
	case Gone:
		c.stepGone(ev.Origin)
	case Unsent:
		c.stepUnsent(ev)
	case Tick:
		c.stepTick(ev.At)
	case Stop:
		c.stopped = true
	}
}

// Ready hands out, at now, every task that can go (unless stopped) and
// returns what the steps since the last Advance ask of the caller.
func (c *Core) Ready(now time.Time) *Ready {
	for !c.stopped {
		w, t, ok := c.next(now)
		if !ok {
			break
		}
		c.rd.Assigned = append(c.rd.Assigned, Assignment{Worker: w, Task: t})
	}
	c.rd.Deadline, _ = c.nextDeadline()
	return &c.rd
}

// Advance forgets the last Ready, once the caller has carried it out.
func (c *Core) Advance() {
	rd := &c.rd
	clear(rd.Outputs)
	clear(rd.Assigned)
	clear(rd.Watch)
	clear(rd.Unwatch)
	*rd = Ready{
		Outputs: rd.Outputs[:0], Assigned: rd.Assigned[:0],
		Watch: rd.Watch[:0], Unwatch: rd.Unwatch[:0],
		Joined: rd.Joined[:0], Left: rd.Left[:0],
		Waiting: rd.Waiting[:0], Ignored: rd.Ignored[:0],
	}
}

func (c *Core) stepJoin(ev Event) {
	if c.join(ev.Worker, ev.Functions) != nil {
		return
	}
	clear(c.warned)
	c.rd.Joined = append(c.rd.Joined, ev.Worker)
}

func (c *Core) stepLeave(ev Event) {
	if c.byID[ev.Worker] == nil {
		return
	}
	failed := c.leave(ev.Worker, ev.At)
	c.rd.Left = append(c.rd.Left, Departure{Worker: ev.Worker, Failed: len(failed)})
	c.failAll(failed)
}

func (c *Core) stepSubmit(ev Event) {
	m := ev.Message
	m.remaining = int32(len(ev.Tasks))
	if m.remaining == 0 {
		c.emit(Output{Kind: Complete, Message: m})
		c.completed(m)
		return
	}
	for _, t := range ev.Tasks {
		c.lastID++
		t.ID, t.Message, t.Origin, t.Deadline = c.lastID, m, m.Origin, m.Deadline
		if t.Rejected {
			c.fail(t, Rejected, nil)
			continue
		}
		if c.cfg.WaitForWorkers > 0 && !c.Serves(t.Function) {
			c.warnWaiting(t.Function)
		}
		switch err := c.push(t, ev.At); err {
		case nil:
			c.watch(m)
		case ErrNoWorker:
			c.fail(t, Unserved, nil)
		default: // ErrExpired
			c.fail(t, Expired, nil)
		}
	}
}

// warnWaiting reports fn Waiting, once until a worker joins.
func (c *Core) warnWaiting(fn string) {
	if c.warned[fn] || len(c.warned) >= maxWarned {
		return
	}
	c.warned[fn] = true
	c.rd.Waiting = append(c.rd.Waiting, fn)
}

// watch asks the caller to watch the end of m's origin, once; a task of
// m has just been queued, so the origin's entry exists.
func (c *Core) watch(m *Message) {
	if m.Origin == nil {
		return
	}
	if o := c.origins[m.Origin]; !o.watched {
		o.watched = true
		c.rd.Watch = append(c.rd.Watch, m.Origin)
	}
}

// unwatch stops watching origin, forgetting it when nothing of it waits.
func (c *Core) unwatch(origin any) {
	o := c.origins[origin]
	if o == nil || !o.watched {
		return
	}
	o.watched = false
	if o.head == nil {
		delete(c.origins, origin)
	}
	c.rd.Unwatch = append(c.rd.Unwatch, origin)
}

// completed forgets the origin of m, complete now, when it stood for m
// alone.
func (c *Core) completed(m *Message) {
	if m.Single && m.Origin != nil {
		c.unwatch(m.Origin)
	}
}

func (c *Core) emit(o Output) { c.rd.Outputs = append(c.rd.Outputs, o) }

// ended counts t, which has just ended, out of its message, and reports
// whether that completed the message.
func (c *Core) ended(t *Task) bool {
	m := t.Message
	m.remaining--
	if m.remaining != 0 {
		return false
	}
	c.completed(m)
	return true
}

// fail ends t with a failure for why.
func (c *Core) fail(t *Task, why Reason, value any) {
	done := c.ended(t)
	c.emit(Output{Kind: Fail, Task: t, Message: t.Message, Reason: why, Value: value, Done: done})
}

// finish ends t, done without error: its message completes when it was
// the last.
func (c *Core) finish(t *Task) {
	if c.ended(t) {
		c.emit(Output{Kind: Complete, Message: t.Message})
	}
}

// drop ends t, whose origin went: its message completes when it was the
// last and its origin stood for it alone.
func (c *Core) drop(t *Task) {
	c.emit(Output{Kind: Dropped, Task: t, Message: t.Message})
	if c.ended(t) && t.Message.Single {
		c.emit(Output{Kind: Complete, Message: t.Message})
	}
}

func (c *Core) failAll(failed []Failure) {
	for _, f := range failed {
		c.fail(f.Task, f.Reason, nil)
	}
}

func (c *Core) stepReport(ev Event) {
	results, dones := ev.Results, ev.Dones
	// merged counts the leading dones that went with their task's last
	// result, in one Route, for a task that was the last of its message:
	// the common case of a worker that sends a result with its done.
	merged := 0
	for i, r := range results {
		t := c.holds(ev.Worker, r.Task)
		if t == nil {
			c.rd.Ignored = append(c.rd.Ignored, Ignored{Worker: ev.Worker, Task: r.Task})
			continue
		}
		t.results = int32(min(int64(t.results)+int64(r.Bytes), math.MaxInt32))
		if c.cfg.MaxResultBytes > 0 && int(t.results) > c.cfg.MaxResultBytes {
			// The task is done for the core (its credit stays spent until
			// the worker grants more): the rest of its reports are ignored.
			c.release(t)
			c.fail(t, TooLarge, ev.Worker)
			continue
		}
		out := Output{Kind: Route, Task: t, Message: t.Message, Value: r.Value}
		if merged < len(dones) && dones[merged].Task == r.Task && !dones[merged].Failed &&
			t.Message.remaining == 1 && (i+1 == len(results) || results[i+1].Task != r.Task) {
			c.release(t)
			merged++
			out.Done = c.ended(t)
		}
		c.emit(out)
	}
	for _, d := range dones[merged:] {
		t := c.holds(ev.Worker, d.Task)
		if t == nil {
			c.rd.Ignored = append(c.rd.Ignored, Ignored{Worker: ev.Worker, Task: d.Task, Done: true})
			continue
		}
		c.release(t)
		if d.Failed {
			c.fail(t, Failed, d.Value)
		} else {
			c.finish(t)
		}
	}
	if ev.Credit > 0 {
		c.grant(ev.Worker, min(ev.Credit, MaxCredit))
	}
}

// stepGone drops the waiting tasks of an origin that went and stops
// watching it. Its tasks that workers hold go on: their results are routed
// and their dones complete their messages as ever.
func (c *Core) stepGone(origin any) {
	if c.origins[origin] == nil {
		return
	}
	dropped := c.cancel(origin)
	c.unwatch(origin)
	for _, t := range dropped {
		c.drop(t)
	}
}

func (c *Core) stepUnsent(ev Event) {
	t := c.holds(ev.Worker, ev.Task)
	if t == nil {
		return
	}
	c.release(t)
	c.grant(ev.Worker, 1)
	c.drop(t)
	c.stepGone(t.Origin)
}

func (c *Core) stepTick(now time.Time) {
	before := c.requeued
	failed := c.expire(now)
	c.rd.TimedOut += int(c.requeued - before)
	c.failAll(failed)
}

// Stopped reports whether the core stepped Stop.
func (c *Core) Stopped() bool { return c.stopped }
