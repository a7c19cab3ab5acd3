package worker

// ledger is the deterministic core of a worker: which tasks it holds on the
// current stream, how many tasks the master still owes it for the credit it
// granted, how many tasks it has completed in all, and whether it is
// stopping. It has no goroutines and no I/O; the session loop (one
// goroutine) feeds it events and carries out what it answers, and ledger
// tests check its decisions by tables.
//
// The rules:
//   - the worker never holds more than capacity tasks, and never has more
//     than capacity tasks held plus owed;
//   - with a limit (Messages), the worker never takes more tasks in all
//     than the limit: held + owed never exceeds limit - completed;
//   - while stopping, it grants no credit;
//   - credit is a top-up: whatever is missing to reach the bounds above is
//     granted at once (at the start of a stream, and one unit per task done
//     in the steady state).
type ledger struct {
	capacity  int // Credit: most tasks held at once
	limit     int // Messages: most tasks completed over Run; 0 for no limit
	completed int // tasks completed over Run, on every stream

	held     map[uint64]struct{} // tasks held on this stream
	owed     int                 // credit granted on this stream and not yet used
	stopping bool
}

func newLedger(capacity, limit int) *ledger {
	return &ledger{capacity: capacity, limit: limit, held: map[uint64]struct{}{}}
}

// reset starts a new stream: the tasks of the old one are abandoned (the
// master gives them to other workers), and no credit is granted yet.
func (l *ledger) reset() {
	clear(l.held)
	l.owed = 0
	l.stopping = false
}

// grant returns the credit to send now, and counts it as owed.
func (l *ledger) grant() uint32 {
	if l.stopping {
		return 0
	}
	want := l.capacity - len(l.held) - l.owed
	if l.limit > 0 {
		want = min(want, l.limit-l.completed-len(l.held)-l.owed)
	}
	if want <= 0 {
		return 0
	}
	l.owed += want
	return uint32(want)
}

// verdict is what the ledger makes of a task that arrives.
type verdict int

const (
	accept     verdict = iota // run it
	overCredit                // the master sent more tasks than the credit: refuse it
	duplicate                 // a task with that id is already held: ignore it
)

// take records the arrival of task id.
func (l *ledger) take(id uint64) verdict {
	if _, ok := l.held[id]; ok {
		return duplicate
	}
	if l.owed == 0 {
		return overCredit
	}
	l.owed--
	l.held[id] = struct{}{}
	return accept
}

// finish records that task id is done and reports whether it was held.
func (l *ledger) finish(id uint64) bool {
	if _, ok := l.held[id]; !ok {
		return false
	}
	delete(l.held, id)
	l.completed++
	return true
}

// stop makes the ledger grant no more credit.
func (l *ledger) stop() { l.stopping = true }

// holding is the number of tasks held.
func (l *ledger) holding() int { return len(l.held) }

// exhausted reports whether the worker has completed as many tasks as its
// limit allows.
func (l *ledger) exhausted() bool { return l.limit > 0 && l.completed >= l.limit }
