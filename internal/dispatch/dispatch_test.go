package dispatch

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// t0 is the time of the tests that do not care about time.
var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// newCore is New for tests written before workers had to be there: tasks
// may wait an hour for a worker.
func newCore(capacity, attempts int) *Core {
	return New(Config{Capacity: capacity, MaxAttempts: attempts, WaitForWorkers: time.Hour})
}

// leave is Leave returning the failed tasks.
func leave(c *Core, w WorkerID) []*Task {
	var ts []*Task
	for _, f := range c.leave(w, t0) {
		ts = append(ts, f.Task)
	}
	return ts
}

func task(id TaskID, fn string, origin any) *Task {
	return &Task{ID: id, Function: fn, Origin: origin}
}

// drain hands out everything it can and returns who got what.
func drain(c *Core) map[WorkerID][]TaskID {
	got := map[WorkerID][]TaskID{}
	for {
		w, t, ok := c.next(t0)
		if !ok {
			return got
		}
		got[w] = append(got[w], t.ID)
	}
}

func TestRoundRobinWithinCredit(t *testing.T) {
	c := newCore(100, 0)
	c.join(1, nil)
	c.join(2, nil)
	c.grant(1, 3)
	c.grant(2, 3)
	for i := range 10 {
		if err := c.submitOne(task(TaskID(i+1), "f", nil), t0); err != nil {
			t.Fatal(err)
		}
	}
	got := drain(c)
	if len(got[1]) != 3 || len(got[2]) != 3 {
		t.Fatalf("credit 3 each: %v", got)
	}
	// Alternation: 1,3,5 to one worker, 2,4,6 to the other.
	if got[1][0]+1 != got[2][0] || got[1][1]+1 != got[2][1] {
		t.Fatalf("not round-robin: %v", got)
	}
	if c.Queued() != 4 || c.InFlight() != 6 {
		t.Fatalf("queued %d in flight %d", c.Queued(), c.InFlight())
	}
	// A slow worker (1) finishes nothing; the fast one (2) takes the rest.
	for _, id := range got[2] {
		if _, ok := c.done(2, id); !ok {
			t.Fatal("done refused")
		}
		c.grant(2, 1)
	}
	more := drain(c)
	if len(more[1]) != 0 || len(more[2]) != 3 {
		t.Fatalf("the slow worker got more than its credit: %v", more)
	}
}

func TestFairShare(t *testing.T) {
	c := newCore(10000, 0)
	c.join(1, nil)
	c.join(2, nil)
	c.grant(1, 8)
	c.grant(2, 8)
	count := map[WorkerID]int{}
	next := TaskID(1)
	for done := 0; done < 2000; {
		for c.Room() > 0 && next <= 2000 {
			c.submitOne(task(next, "f", nil), t0)
			next++
		}
		w, tk, ok := c.next(t0)
		if !ok {
			t.Fatal("stuck")
		}
		count[w]++
		c.done(w, tk.ID)
		c.grant(w, 1)
		done++
	}
	if count[1] < 800 || count[2] < 800 {
		t.Fatalf("uneven: %v", count)
	}
}

func TestFunctionsAndJoinMidway(t *testing.T) {
	c := newCore(100, 0)
	c.join(1, []string{"a"})
	c.grant(1, 10)
	c.submitOne(task(1, "b", nil), t0)
	c.submitOne(task(2, "a", nil), t0)
	got := drain(c)
	if len(got[1]) != 1 || got[1][0] != 2 {
		t.Fatalf("worker for a only: %v", got)
	}
	// A worker that serves b joins and takes the waiting task at once.
	c.join(2, nil)
	c.grant(2, 1)
	if w, tk, ok := c.next(t0); !ok || w != 2 || tk.ID != 1 {
		t.Fatalf("joiner: %v %v %v", w, tk, ok)
	}
	if err := c.join(2, nil); err == nil {
		t.Fatal("joined twice")
	}
}

func TestBoundedQueue(t *testing.T) {
	c := newCore(2, 0)
	c.submitOne(task(1, "f", nil), t0)
	c.submitOne(task(2, "f", nil), t0)
	if err := c.submitOne(task(3, "f", nil), t0); !errors.Is(err, ErrFull) {
		t.Fatalf("third task in a queue of 2: %v", err)
	}
	if _, _, ok := c.next(t0); ok {
		t.Fatal("a task was handed out with no worker")
	}
}

func TestRedeliveryAndAttempts(t *testing.T) {
	c := newCore(100, 3)
	c.join(1, nil)
	c.grant(1, 2)
	c.submitOne(task(1, "f", nil), t0)
	c.submitOne(task(2, "f", nil), t0)
	c.submitOne(task(3, "f", nil), t0)
	drain(c) // 1 and 2 to worker 1
	if failed := leave(c, 1); len(failed) != 0 {
		t.Fatalf("failed after one attempt: %v", failed)
	}
	if c.Queued() != 3 || c.InFlight() != 0 {
		t.Fatalf("queued %d in flight %d", c.Queued(), c.InFlight())
	}
	// The requeued tasks come first, oldest first.
	c.join(2, nil)
	c.grant(2, 1)
	if _, tk, _ := c.next(t0); tk.ID != 1 || tk.Attempts != 2 {
		t.Fatalf("first after redelivery: %+v", tk)
	}
	// The worker that left sends a late result: ignored.
	if _, ok := c.done(1, 1); ok || c.holds(1, 1) != nil {
		t.Fatal("late duplicate accepted")
	}
	// Task 1 kills every worker that takes it.
	leave(c, 2)
	c.join(3, nil)
	c.grant(3, 1)
	if _, tk, _ := c.next(t0); tk.ID != 1 || tk.Attempts != 3 {
		t.Fatalf("third attempt: %+v", tk)
	}
	failed := leave(c, 3)
	if len(failed) != 1 || failed[0].ID != 1 {
		t.Fatalf("after 3 attempts: %v", failed)
	}
	if c.Queued() != 2 || c.Workers() != 0 {
		t.Fatalf("queued %d workers %d", c.Queued(), c.Workers())
	}
}

func TestCancelOrigin(t *testing.T) {
	c := newCore(100, 0)
	a, b := new(int), new(int)
	c.submitOne(task(1, "f", a), t0)
	c.submitOne(task(2, "f", b), t0)
	c.submitOne(task(3, "f", a), t0)
	dropped := c.cancel(a)
	if len(dropped) != 2 || c.Queued() != 1 {
		t.Fatalf("dropped %v, %d left", dropped, c.Queued())
	}
	c.join(1, nil)
	c.grant(1, 5)
	if _, tk, _ := c.next(t0); tk.ID != 2 {
		t.Fatalf("left task: %v", tk)
	}
}

func TestAbsurdCredit(t *testing.T) {
	c := newCore(10, 0)
	c.join(1, nil)
	c.grant(1, 1<<30)
	c.grant(1, 1<<30)
	if c.Credit(1) != MaxCredit {
		t.Fatalf("credit %d", c.Credit(1))
	}
	if c.grant(9, 1) || c.Credit(9) != -1 {
		t.Fatal("credit for an unknown worker")
	}
	c.grant(1, -5)
	if c.Credit(1) != MaxCredit {
		t.Fatal("negative grant changed credit")
	}
}

func TestLeaveKeepsRoundRobinIndexValid(t *testing.T) {
	c := newCore(100, 0)
	for id := WorkerID(1); id <= 3; id++ {
		c.join(id, nil)
		c.grant(id, 100)
	}
	for i := range 5 {
		c.submitOne(task(TaskID(i+1), "f", nil), t0)
	}
	c.next(t0)
	c.next(t0) // next is now worker 3
	leave(c, 3)
	leave(c, 1)
	if w, _, ok := c.next(t0); !ok || w != 2 {
		t.Fatalf("after leaves: %v %v", w, ok)
	}
}

// A task that kills every worker fails alone: the tasks that shared a
// worker with it once are isolated from it afterwards.
func TestPoisonDiesAlone(t *testing.T) {
	c := newCore(100, 3)
	for i := range 10 {
		c.submitOne(task(TaskID(i+1), "f", nil), t0)
	}
	var failed []*Task
	next := WorkerID(1)
	for c.Queued()+c.InFlight() > 0 {
		w := next
		next++
		c.join(w, nil)
		c.grant(w, 4)
		var holdsPoison bool
		for {
			_, tk, ok := c.next(t0)
			if !ok {
				break
			}
			holdsPoison = holdsPoison || tk.ID == 1
		}
		if holdsPoison {
			failed = append(failed, leave(c, w)...) // task 1 kills the worker
			continue
		}
		for _, tk := range heldBy(c, w) {
			c.done(w, tk)
		}
		leave(c, w)
	}
	if len(failed) != 1 || failed[0].ID != 1 {
		t.Fatalf("failed: %v; want task 1 alone", failed)
	}
}

func heldBy(c *Core, w WorkerID) []TaskID {
	var ids []TaskID
	for id := range c.byID[w].held {
		ids = append(ids, id)
	}
	return ids
}

// check walks every structure of the core and fails on any disagreement:
// each waiting task is in exactly one list of its function's queue, in its
// origin's list and in the deadline heap when it has a deadline; each held
// task is in its worker's set alone; the counts match.
func check(t *testing.T, c *Core) {
	t.Helper()
	waiting := map[*Task]bool{}
	for fn, q := range c.queues {
		if q.fn != fn {
			t.Fatalf("queue %q filed under %q", q.fn, fn)
		}
		n := 0
		for _, l := range []*list{&q.retry, &q.fresh} {
			var prev *Task
			for x := l.head; x != nil; x = x.next {
				if x.prev != prev || x.q != q || x.holder != nil || waiting[x] {
					t.Fatalf("task %d badly linked in %q", x.ID, fn)
				}
				if (l == &q.retry) != x.retry {
					t.Fatalf("task %d in the wrong list of %q", x.ID, fn)
				}
				if prev != nil && l == &q.retry && prev.ID > x.ID {
					t.Fatalf("retry list of %q out of order", fn)
				}
				waiting[x] = true
				prev = x
				n++
			}
			if l.tail != prev {
				t.Fatalf("tail of %q", fn)
			}
		}
		if n != q.n || (n > 0) != (c.active[fn] == q) {
			t.Fatalf("queue %q: %d tasks, counted %d, active %v", fn, n, q.n, c.active[fn] != nil)
		}
		if n == 0 && q.servers == 0 {
			t.Fatalf("queue %q kept with nothing in it", fn)
		}
	}
	if len(waiting) != c.Queued() {
		t.Fatalf("%d tasks waiting, Queued says %d", len(waiting), c.Queued())
	}
	inOrigins := 0
	for o, ot := range c.origins {
		if ot.head == nil && !ot.watched {
			t.Fatal("empty origin kept")
		}
		for x := ot.head; x != nil; x = x.onext {
			if x.Origin != o || !waiting[x] {
				t.Fatalf("task %d in the wrong origin list", x.ID)
			}
			inOrigins++
		}
	}
	withDeadline := 0
	for x := range waiting {
		if x.Origin != nil {
			inOrigins--
		}
		if !x.Deadline.IsZero() {
			withDeadline++
			if c.deadlines.tasks[x.idx[0]] != x {
				t.Fatalf("task %d lost in the deadline heap", x.ID)
			}
		}
	}
	if inOrigins != 0 || withDeadline != c.deadlines.Len() {
		t.Fatalf("origin lists off by %d; %d deadlines, heap %d", inOrigins, withDeadline, c.deadlines.Len())
	}
	held, timed := 0, 0
	for _, w := range c.byID {
		suspects := 0
		for id, x := range w.held {
			if x.ID != id || x.holder != w || waiting[x] {
				t.Fatalf("held task %d badly kept", id)
			}
			if x.Attempts > 1 {
				suspects++
			}
			if x.idx[1] >= 0 {
				timed++
			}
		}
		if suspects != w.suspects || suspects > 1 {
			t.Fatalf("worker %d: %d suspects, counted %d", w.id, suspects, w.suspects)
		}
		held += len(w.held)
	}
	if held != c.InFlight() || timed != c.timeouts.Len() {
		t.Fatalf("%d held (InFlight %d), %d timed (heap %d)", held, c.InFlight(), timed, c.timeouts.Len())
	}
}

// A worker of one function takes its task at once, however many tasks of
// another function wait before it.
func TestBacklogOfOneFunctionHidesNoOther(t *testing.T) {
	c := New(Config{Capacity: 20000})
	c.join(1, []string{"slow"})
	c.join(2, []string{"fast"})
	c.grant(1, 1)
	for i := range 10000 {
		if err := c.submitOne(task(TaskID(i+1), "slow", nil), t0); err != nil {
			t.Fatal(err)
		}
	}
	if w, tk, ok := c.next(t0); !ok || w != 1 || tk.ID != 1 {
		t.Fatalf("slow worker: %v %v %v", w, tk, ok)
	}
	c.submitOne(task(10001, "fast", nil), t0)
	c.grant(2, 1)
	if w, tk, ok := c.next(t0); !ok || w != 2 || tk.ID != 10001 {
		t.Fatalf("the fast worker did not get its task past the backlog: %v %v %v", w, tk, ok)
	}
	check(t, c)
}

// Without WaitForWorkers a function nobody serves is refused at once, and
// the functions served are listed.
func TestUnservedFunctionRefusedAtOnce(t *testing.T) {
	c := New(Config{Capacity: 10})
	if err := c.submitOne(task(1, "foo", nil), t0); !errors.Is(err, ErrNoWorker) {
		t.Fatalf("no worker at all: %v", err)
	}
	c.join(1, []string{"foo", "bar"})
	if err := c.submitOne(task(2, "nobody", nil), t0); !errors.Is(err, ErrNoWorker) {
		t.Fatalf("unserved function: %v", err)
	}
	if err := c.submitOne(task(3, "foo", nil), t0); err != nil {
		t.Fatal(err)
	}
	names := c.Functions(10)
	if len(names) != 2 || names[0] != "bar" || names[1] != "foo" {
		t.Fatalf("functions: %v", names)
	}
	if !c.Serves("foo") || c.Serves("nobody") {
		t.Fatal("Serves")
	}
	c.join(2, nil)
	if !c.Serves("nobody") {
		t.Fatal("a worker of every function serves anything")
	}
	check(t, c)
}

// With WaitForWorkers a task waits that long for a worker, and no longer.
func TestWaitForWorkers(t *testing.T) {
	c := New(Config{Capacity: 10, WaitForWorkers: time.Second})
	c.submitOne(task(1, "foo", nil), t0)
	c.submitOne(task(2, "foo", nil), t0.Add(500*time.Millisecond))
	if at, ok := c.nextDeadline(); !ok || !at.Equal(t0.Add(time.Second)) {
		t.Fatalf("next deadline %v %v", at, ok)
	}
	if f := c.expire(t0.Add(999 * time.Millisecond)); len(f) != 0 {
		t.Fatalf("expired early: %v", f)
	}
	f := c.expire(t0.Add(time.Second))
	if len(f) != 2 || f[0].Task.ID != 1 || f[0].Reason != NoWorker || f[1].Reason != NoWorker {
		t.Fatalf("after the wait: %v", f)
	}
	// A worker that comes in time takes the task, and the wait is over.
	c.submitOne(task(3, "bar", nil), t0)
	c.join(1, []string{"bar"})
	if _, ok := c.nextDeadline(); ok {
		t.Fatal("still waiting on time after a worker came")
	}
	c.grant(1, 1)
	if _, tk, ok := c.next(t0); !ok || tk.ID != 3 {
		t.Fatalf("joiner: %v %v", tk, ok)
	}
	check(t, c)
}

// When the last worker of a function leaves, its waiting and held tasks
// fail with NoWorker rather than wait for ever; other functions are not
// touched.
func TestLastWorkerLeaves(t *testing.T) {
	c := New(Config{Capacity: 10})
	c.join(1, []string{"foo"})
	c.join(2, []string{"bar"})
	c.grant(1, 1)
	c.submitOne(task(1, "foo", nil), t0)
	c.submitOne(task(2, "foo", nil), t0)
	c.submitOne(task(3, "bar", nil), t0)
	c.next(t0) // 1 to worker 1
	f := c.leave(1, t0)
	if len(f) != 2 || f[0].Task.ID != 1 || f[1].Task.ID != 2 || f[0].Reason != NoWorker {
		t.Fatalf("failed: %v", f)
	}
	if c.Queued() != 1 {
		t.Fatalf("bar's task went too: %d queued", c.Queued())
	}
	check(t, c)
	// A worker of every function leaving orphans what nobody names.
	c.join(3, nil)
	c.submitOne(task(4, "baz", nil), t0)
	if f := c.leave(3, t0); len(f) != 1 || f[0].Task.ID != 4 {
		t.Fatalf("after the wildcard left: %v", f)
	}
	check(t, c)
}

// A waiting task past its deadline leaves the queue; one already past it
// is refused.
func TestDeadlines(t *testing.T) {
	c := New(Config{Capacity: 10})
	c.join(1, nil)
	a := task(1, "f", nil)
	a.Deadline = t0.Add(2 * time.Second)
	b := task(2, "f", nil)
	b.Deadline = t0.Add(time.Second)
	c.submitOne(a, t0)
	c.submitOne(b, t0)
	c.submitOne(task(3, "f", nil), t0)
	if at, _ := c.nextDeadline(); !at.Equal(b.Deadline) {
		t.Fatalf("next deadline %v", at)
	}
	f := c.expire(t0.Add(1500 * time.Millisecond))
	if len(f) != 1 || f[0].Task != b || f[0].Reason != Expired {
		t.Fatalf("expired: %v", f)
	}
	late := task(4, "f", nil)
	late.Deadline = t0
	if err := c.submitOne(late, t0); !errors.Is(err, ErrExpired) {
		t.Fatalf("late task: %v", err)
	}
	// A task handed out is past expiry: its worker has it.
	c.grant(1, 1)
	if _, tk, _ := c.next(t0); tk != a {
		t.Fatalf("next: %v", tk)
	}
	if f := c.expire(t0.Add(time.Hour)); len(f) != 0 {
		t.Fatalf("a held task expired: %v", f)
	}
	check(t, c)
}

// A task held past the task timeout goes to another worker; the late
// finish of the first is ignored, and its credit stays spent; after
// MaxAttempts the task fails.
func TestTaskTimeout(t *testing.T) {
	c := New(Config{Capacity: 10, MaxAttempts: 2, TaskTimeout: time.Minute})
	c.join(1, nil)
	c.join(2, nil)
	c.grant(1, 1)
	c.submitOne(task(1, "f", nil), t0)
	if w, _, _ := c.next(t0); w != 1 {
		t.Fatal("worker 1 first")
	}
	if at, _ := c.nextDeadline(); !at.Equal(t0.Add(time.Minute)) {
		t.Fatalf("next deadline %v", at)
	}
	if f := c.expire(t0.Add(time.Minute)); len(f) != 0 || c.Queued() != 1 || c.Requeued() != 1 {
		t.Fatalf("after the timeout: %v, %d queued", f, c.Queued())
	}
	if c.Credit(1) != 0 {
		t.Fatal("the timed-out worker got its credit back")
	}
	if _, ok := c.done(1, 1); ok {
		t.Fatal("late finish accepted")
	}
	c.grant(2, 1)
	if w, tk, _ := c.next(t0.Add(time.Minute)); w != 2 || tk.Attempts != 2 {
		t.Fatalf("second worker: %v %+v", w, tk)
	}
	f := c.expire(t0.Add(2 * time.Minute))
	if len(f) != 1 || f[0].Reason != TimedOut || c.Queued() != 0 || c.InFlight() != 0 {
		t.Fatalf("after the second timeout: %v", f)
	}
	check(t, c)
}

// The waiting tasks of an origin leave at once, however many.
func TestCancelManyTasks(t *testing.T) {
	c := New(Config{Capacity: 20000})
	c.join(1, []string{"f"})
	gone, other := new(int), new(int)
	for i := range 10000 {
		c.submitOne(task(TaskID(i+1), "f", gone), t0)
	}
	c.submitOne(task(10001, "f", other), t0)
	if n := len(c.cancel(gone)); n != 10000 || c.Queued() != 1 {
		t.Fatalf("cancelled %d, %d left", n, c.Queued())
	}
	c.grant(1, 1)
	if _, tk, _ := c.next(t0); tk.ID != 10001 {
		t.Fatalf("next: %v", tk)
	}
	check(t, c)
}

// A long random run of every event, stepped as the master steps the core,
// keeps every structure consistent, and every Ready keeps the rules of the
// outputs: a task goes only to a worker that serves its function, within
// its credit, and never after Stop; a route is for a task its worker
// held; a message completes once, with nothing for it afterwards; an
// origin is watched once until unwatched. In the end, with a worker of
// every function and time enough, every message completes but those of a
// stream that went.
func TestRandomEventsKeepInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := New(Config{Capacity: 200, MaxAttempts: 3, TaskTimeout: 10 * time.Second, WaitForWorkers: 5 * time.Second, ReplaceWait: 2 * time.Second, MaxResultBytes: 300})
	run := &randomRun{t: t, r: r, c: c, now: t0, watched: map[any]bool{}, complete: map[*Message]bool{}, wentStreams: map[any]bool{}, tasksOf: map[*Message][]*Task{}}
	for step := range 20000 {
		run.step(step)
		if step%97 == 0 {
			check(t, c)
		}
	}
	check(t, c)
	run.settle()
	if run.failed == 0 || c.Requeued() == 0 || run.routed == 0 || run.dropped == 0 || run.ignored == 0 {
		t.Fatalf("the run exercised too little: %d failed, %d requeued, %d routed, %d dropped, %d ignored", run.failed, c.Requeued(), run.routed, run.dropped, run.ignored)
	}
}

type randomRun struct {
	t    *testing.T
	r    *rand.Rand
	c    *Core
	now  time.Time
	live []WorkerID
	next WorkerID
	last []Assignment // handed out by the last Ready

	msgs        []*Message
	watched     map[any]bool
	complete    map[*Message]bool
	wentStreams map[any]bool // stream origins that went: their messages may never complete
	calls       int
	tasksOf     map[*Message][]*Task

	failed, routed, dropped, ignored int
}

var streams = []any{"s1", "s2", "s3"}

func (x *randomRun) step(step int) {
	r := x.r
	ev := Event{At: x.now}
	switch r.IntN(9) {
	case 0:
		x.next++
		ev.Kind, ev.Worker = Join, x.next
		if r.IntN(3) > 0 {
			ev.Functions = []string{[]string{"a", "b", "c"}[r.IntN(3)]}
		}
		x.apply(ev)
		x.live = append(x.live, x.next)
		ev = Event{Kind: Report, At: x.now, Worker: x.next, Credit: 1 + r.IntN(4)}
	case 1:
		if len(x.live) == 0 {
			return
		}
		i := r.IntN(len(x.live))
		ev.Kind, ev.Worker = Leave, x.live[i]
		x.live = append(x.live[:i], x.live[i+1:]...)
	case 2, 3:
		ev = x.message()
	case 4, 5:
		if len(x.live) == 0 {
			return
		}
		ev = x.report(x.live[r.IntN(len(x.live))])
	case 6:
		x.now = x.now.Add(time.Duration(r.IntN(3000)) * time.Millisecond)
		ev.Kind, ev.At = Tick, x.now
	case 7:
		if r.IntN(10) > 0 {
			return
		}
		ev.Kind, ev.Origin = Gone, streams[r.IntN(len(streams))]
		x.wentStreams[ev.Origin] = true
	case 8:
		if len(x.last) == 0 || r.IntN(4) > 0 {
			return
		}
		a := x.last[r.IntN(len(x.last))]
		if a.Task.Origin == nil {
			return // only a task whose origin ended is unsent
		}
		ev.Kind, ev.Worker, ev.Task = Unsent, a.Worker, a.Task.ID
		if !a.Task.Message.Single {
			x.wentStreams[a.Task.Origin] = true
		}
	}
	x.apply(ev)
	if step == 19990 {
		x.apply(Event{Kind: Stop, At: x.now})
	}
}

// message is a Submit of one to three tasks, some rejected, from a stream,
// a single call or nowhere, some with a deadline.
func (x *randomRun) message() Event {
	r := x.r
	m := &Message{}
	switch r.IntN(3) {
	case 0:
		m.Origin = streams[r.IntN(len(streams))]
		if x.wentStreams[m.Origin] {
			m.Origin = nil // the master takes nothing more from a stream that went
		}
	case 1:
		x.calls++
		m.Origin, m.Single = x.calls, true
	}
	if r.IntN(2) == 0 {
		m.Deadline = x.now.Add(time.Duration(r.IntN(20)) * time.Second)
	}
	ev := Event{Kind: Submit, At: x.now, Message: m}
	for range r.IntN(4) {
		ev.Tasks = append(ev.Tasks, &Task{Function: []string{"a", "b", "c"}[r.IntN(3)], Rejected: r.IntN(20) == 0})
	}
	x.msgs = append(x.msgs, m)
	x.tasksOf[m] = ev.Tasks
	return ev
}

// report is a worker's report on some of what it holds, with now and
// then a late duplicate, a failure or a result too large.
func (x *randomRun) report(w WorkerID) Event {
	r := x.r
	ev := Event{Kind: Report, At: x.now, Worker: w}
	for id := range x.c.byID[w].held {
		if r.IntN(2) == 0 {
			continue
		}
		ev.Results = append(ev.Results, Result{Task: id, Bytes: r.IntN(200)})
		if r.IntN(4) > 0 {
			ev.Dones = append(ev.Dones, Finish{Task: id, Failed: r.IntN(10) == 0})
			ev.Credit++
		}
	}
	if r.IntN(5) == 0 {
		ev.Dones = append(ev.Dones, Finish{Task: TaskID(1 + r.IntN(int(x.c.lastID)+1))})
	}
	return ev
}

// apply steps the core with ev and checks the Ready that follows.
func (x *randomRun) apply(ev Event) {
	t, c := x.t, x.c
	t.Helper()
	held := map[TaskID]bool{}
	if w := c.byID[ev.Worker]; ev.Kind == Report && w != nil {
		for id := range w.held {
			held[id] = true
		}
	}
	c.Step(ev)
	credit := map[WorkerID]int{}
	for id, w := range c.byID {
		credit[id] = w.credit
	}
	rd := c.Ready(x.now)
	for _, o := range rd.Watch {
		if x.watched[o] {
			t.Fatalf("origin %v watched twice", o)
		}
		x.watched[o] = true
	}
	for _, o := range rd.Unwatch {
		if !x.watched[o] {
			t.Fatalf("origin %v unwatched, not watched", o)
		}
		delete(x.watched, o)
	}
	if c.Stopped() && len(rd.Assigned) > 0 {
		t.Fatalf("%d tasks handed out after Stop", len(rd.Assigned))
	}
	for _, a := range rd.Assigned {
		w := c.byID[a.Worker]
		if credit[a.Worker]--; w == nil || credit[a.Worker] < 0 || !w.serves(a.Task.Function) || a.Task.holder != w {
			t.Fatalf("task %d (%s) to worker %d beyond its credit or its functions", a.Task.ID, a.Task.Function, a.Worker)
		}
	}
	x.last = append(x.last[:0], rd.Assigned...)
	for _, o := range rd.Outputs {
		x.output(ev, o, held)
	}
	x.ignored += len(rd.Ignored)
	// The deadline may be any of the ends of the replacement waits (those
	// are only forgotten then), so only its presence is checked.
	if _, ok := c.nextDeadline(); ok != !rd.Deadline.IsZero() {
		t.Fatalf("deadline %v; the core waits on time: %v", rd.Deadline, ok)
	}
	c.Advance()
}

func (x *randomRun) output(ev Event, o Output, held map[TaskID]bool) {
	t := x.t
	t.Helper()
	m := o.Message
	if x.complete[m] {
		t.Fatalf("an output (%d) for a message already complete", o.Kind)
	}
	if m.remaining < 0 || (o.Task != nil && o.Task.Message != m) {
		t.Fatalf("message counted below zero (%d), or an output for another's task", m.remaining)
	}
	switch o.Kind {
	case Route:
		x.routed++
		if ev.Kind != Report || !held[o.Task.ID] {
			t.Fatalf("route of task %d its worker did not hold", o.Task.ID)
		}
	case Fail:
		x.failed++
	case Dropped:
		x.dropped++
		if ev.Kind != Gone && ev.Kind != Unsent {
			t.Fatalf("task %d dropped by event %d", o.Task.ID, ev.Kind)
		}
	}
	if o.Done || o.Kind == Complete {
		if m.remaining != 0 {
			t.Fatalf("message complete with %d tasks left", m.remaining)
		}
		x.complete[m] = true
	}
}

// settle brings a worker of every function, finishes whatever it gets and
// lets time pass until nothing is left, then checks every message
// completed but those of streams that went.
func (x *randomRun) settle() {
	t, c := x.t, x.c
	c.stopped = false
	x.next++
	w := x.next
	x.apply(Event{Kind: Join, At: x.now, Worker: w})
	x.apply(Event{Kind: Report, At: x.now, Worker: w, Credit: MaxCredit})
	for _, id := range x.live {
		x.apply(Event{Kind: Leave, At: x.now, Worker: id})
	}
	for i := 0; c.Queued()+c.InFlight() > 0; i++ {
		if i > 20000 {
			wk := c.byID[w]
			t.Fatalf("not settled: %d queued, %d in flight; credit %d, suspects %d, active %d, workers %d", c.Queued(), c.InFlight(), wk.credit, wk.suspects, len(c.active), len(c.ring))
		}
		ev := Event{Kind: Report, At: x.now, Worker: w}
		for id := range c.byID[w].held {
			ev.Dones = append(ev.Dones, Finish{Task: id})
			ev.Credit++
		}
		x.apply(ev)
		x.now = x.now.Add(5 * time.Second) // within the task timeout
		x.apply(Event{Kind: Tick, At: x.now})
	}
	check(t, c)
	for i, m := range x.msgs {
		if !x.complete[m] && !x.wentStreams[m.Origin] {
			for _, tk := range x.tasksOf[m] {
				t.Logf("task %d: fn %s attempts %d waiting %v held %v rejected %v", tk.ID, tk.Function, tk.Attempts, tk.q != nil, tk.holder != nil, tk.Rejected)
			}
			t.Fatalf("message %d (origin %v, %d tasks left) never completed", i, m.Origin, m.remaining)
		}
	}
	for o := range x.watched {
		if !x.wentStreams[o] && o != streams[0] && o != streams[1] && o != streams[2] {
			t.Fatalf("origin %v still watched after its message completed", o)
		}
	}
}

// When the last worker of a function leaves, its tasks and new ones wait
// ReplaceWait for a replacement; a function never served is still refused.
func TestReplaceWait(t *testing.T) {
	c := New(Config{Capacity: 10, ReplaceWait: 5 * time.Second})
	c.join(1, []string{"foo"})
	c.grant(1, 1)
	c.submitOne(task(1, "foo", nil), t0)
	c.next(t0)
	if f := c.leave(1, t0); len(f) != 0 || c.Queued() != 1 {
		t.Fatalf("held task failed at once: %v", f)
	}
	if err := c.submitOne(task(2, "foo", nil), t0.Add(time.Second)); err != nil {
		t.Fatalf("new task during the replacement wait: %v", err)
	}
	if err := c.submitOne(task(3, "bar", nil), t0); !errors.Is(err, ErrNoWorker) {
		t.Fatalf("never served: %v", err)
	}
	if at, _ := c.nextDeadline(); !at.Equal(t0.Add(5 * time.Second)) {
		t.Fatalf("next deadline %v", at)
	}
	// The replacement comes in time and takes the task handed out before.
	c.join(2, []string{"foo"})
	c.grant(2, 1)
	if _, tk, _ := c.next(t0.Add(2 * time.Second)); tk.ID != 1 || tk.Attempts != 2 {
		t.Fatalf("replacement got %+v", tk)
	}
	check(t, c)
	// It leaves too, and nobody comes: everything fails after the wait.
	c.leave(2, t0.Add(3*time.Second))
	if f := c.expire(t0.Add(7 * time.Second)); len(f) != 0 {
		t.Fatalf("failed before the wait: %v", f)
	}
	f := c.expire(t0.Add(8 * time.Second))
	if len(f) != 2 || f[0].Reason != NoWorker {
		t.Fatalf("after the wait: %v", f)
	}
	if err := c.submitOne(task(4, "foo", nil), t0.Add(9*time.Second)); !errors.Is(err, ErrNoWorker) {
		t.Fatalf("after the wait: %v", err)
	}
	check(t, c)
}
