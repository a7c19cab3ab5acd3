package dispatch

import (
	"errors"
	"testing"
)

func task(id TaskID, fn string, origin any) *Task {
	return &Task{ID: id, Function: fn, Origin: origin}
}

// drain hands out everything it can and returns who got what.
func drain(c *Core) map[WorkerID][]TaskID {
	got := map[WorkerID][]TaskID{}
	for {
		w, t, ok := c.Next()
		if !ok {
			return got
		}
		got[w] = append(got[w], t.ID)
	}
}

func TestRoundRobinWithinCredit(t *testing.T) {
	c := New(100, 0)
	c.Join(1, nil)
	c.Join(2, nil)
	c.Grant(1, 3)
	c.Grant(2, 3)
	for i := range 10 {
		if err := c.Submit(task(TaskID(i+1), "f", nil)); err != nil {
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
		if _, ok := c.Done(2, id); !ok {
			t.Fatal("done refused")
		}
		c.Grant(2, 1)
	}
	more := drain(c)
	if len(more[1]) != 0 || len(more[2]) != 3 {
		t.Fatalf("the slow worker got more than its credit: %v", more)
	}
}

func TestFairShare(t *testing.T) {
	c := New(10000, 0)
	c.Join(1, nil)
	c.Join(2, nil)
	c.Grant(1, 8)
	c.Grant(2, 8)
	count := map[WorkerID]int{}
	next := TaskID(1)
	for done := 0; done < 2000; {
		for c.Room() > 0 && next <= 2000 {
			c.Submit(task(next, "f", nil))
			next++
		}
		w, tk, ok := c.Next()
		if !ok {
			t.Fatal("stuck")
		}
		count[w]++
		c.Done(w, tk.ID)
		c.Grant(w, 1)
		done++
	}
	if count[1] < 800 || count[2] < 800 {
		t.Fatalf("uneven: %v", count)
	}
}

func TestFunctionsAndJoinMidway(t *testing.T) {
	c := New(100, 0)
	c.Join(1, []string{"a"})
	c.Grant(1, 10)
	c.Submit(task(1, "b", nil))
	c.Submit(task(2, "a", nil))
	got := drain(c)
	if len(got[1]) != 1 || got[1][0] != 2 {
		t.Fatalf("worker for a only: %v", got)
	}
	// A worker that serves b joins and takes the waiting task at once.
	c.Join(2, nil)
	c.Grant(2, 1)
	if w, tk, ok := c.Next(); !ok || w != 2 || tk.ID != 1 {
		t.Fatalf("joiner: %v %v %v", w, tk, ok)
	}
	if err := c.Join(2, nil); err == nil {
		t.Fatal("joined twice")
	}
}

func TestBoundedQueue(t *testing.T) {
	c := New(2, 0)
	c.Submit(task(1, "f", nil))
	c.Submit(task(2, "f", nil))
	if err := c.Submit(task(3, "f", nil)); !errors.Is(err, ErrFull) {
		t.Fatalf("third task in a queue of 2: %v", err)
	}
	if _, _, ok := c.Next(); ok {
		t.Fatal("a task was handed out with no worker")
	}
}

func TestRedeliveryAndAttempts(t *testing.T) {
	c := New(100, 3)
	c.Join(1, nil)
	c.Grant(1, 2)
	c.Submit(task(1, "f", nil))
	c.Submit(task(2, "f", nil))
	c.Submit(task(3, "f", nil))
	drain(c) // 1 and 2 to worker 1
	if failed := c.Leave(1); len(failed) != 0 {
		t.Fatalf("failed after one attempt: %v", failed)
	}
	if c.Queued() != 3 || c.InFlight() != 0 {
		t.Fatalf("queued %d in flight %d", c.Queued(), c.InFlight())
	}
	// The requeued tasks come first, oldest first.
	c.Join(2, nil)
	c.Grant(2, 1)
	if _, tk, _ := c.Next(); tk.ID != 1 || tk.Attempts != 2 {
		t.Fatalf("first after redelivery: %+v", tk)
	}
	// The worker that left sends a late result: ignored.
	if _, ok := c.Done(1, 1); ok || c.Holds(1, 1) {
		t.Fatal("late duplicate accepted")
	}
	// Task 1 kills every worker that takes it.
	c.Leave(2)
	c.Join(3, nil)
	c.Grant(3, 1)
	if _, tk, _ := c.Next(); tk.ID != 1 || tk.Attempts != 3 {
		t.Fatalf("third attempt: %+v", tk)
	}
	failed := c.Leave(3)
	if len(failed) != 1 || failed[0].ID != 1 {
		t.Fatalf("after 3 attempts: %v", failed)
	}
	if c.Queued() != 2 || c.Workers() != 0 {
		t.Fatalf("queued %d workers %d", c.Queued(), c.Workers())
	}
}

func TestCancelOrigin(t *testing.T) {
	c := New(100, 0)
	a, b := new(int), new(int)
	c.Submit(task(1, "f", a))
	c.Submit(task(2, "f", b))
	c.Submit(task(3, "f", a))
	dropped := c.Cancel(a)
	if len(dropped) != 2 || c.Queued() != 1 {
		t.Fatalf("dropped %v, %d left", dropped, c.Queued())
	}
	c.Join(1, nil)
	c.Grant(1, 5)
	if _, tk, _ := c.Next(); tk.ID != 2 {
		t.Fatalf("left task: %v", tk)
	}
}

func TestAbsurdCredit(t *testing.T) {
	c := New(10, 0)
	c.Join(1, nil)
	c.Grant(1, 1<<30)
	c.Grant(1, 1<<30)
	if c.Credit(1) != MaxCredit {
		t.Fatalf("credit %d", c.Credit(1))
	}
	if c.Grant(9, 1) || c.Credit(9) != -1 {
		t.Fatal("credit for an unknown worker")
	}
	c.Grant(1, -5)
	if c.Credit(1) != MaxCredit {
		t.Fatal("negative grant changed credit")
	}
}

func TestLeaveKeepsRoundRobinIndexValid(t *testing.T) {
	c := New(100, 0)
	for id := WorkerID(1); id <= 3; id++ {
		c.Join(id, nil)
		c.Grant(id, 100)
	}
	for i := range 5 {
		c.Submit(task(TaskID(i+1), "f", nil))
	}
	c.Next()
	c.Next() // next is now worker 3
	c.Leave(3)
	c.Leave(1)
	if w, _, ok := c.Next(); !ok || w != 2 {
		t.Fatalf("after leaves: %v %v", w, ok)
	}
}

// A task that kills every worker fails alone: the tasks that shared a
// worker with it once are isolated from it afterwards.
func TestPoisonDiesAlone(t *testing.T) {
	c := New(100, 3)
	for i := range 10 {
		c.Submit(task(TaskID(i+1), "f", nil))
	}
	var failed []*Task
	next := WorkerID(1)
	for c.Queued()+c.InFlight() > 0 {
		w := next
		next++
		c.Join(w, nil)
		c.Grant(w, 4)
		var holdsPoison bool
		for {
			_, tk, ok := c.Next()
			if !ok {
				break
			}
			holdsPoison = holdsPoison || tk.ID == 1
		}
		if holdsPoison {
			failed = append(failed, c.Leave(w)...) // task 1 kills the worker
			continue
		}
		for _, tk := range heldBy(c, w) {
			c.Done(w, tk)
		}
		c.Leave(w)
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
