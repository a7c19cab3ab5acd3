package worker

import (
	"math"
	"time"
)

// ledger is the deterministic core of a worker: which tasks it holds on the
// current stream, how many tasks the master still owes it for the credit it
// granted, how many tasks it has completed in all, whether it is stopping,
// and how many tasks it wants to hold (its window). It has no goroutines
// and no I/O, and it takes the time as an argument; the session (under its
// mutex) feeds it events and carries out what it answers, and ledger tests
// check its decisions by tables.
//
// The rules:
//   - the worker never holds more than the window, and never has more than
//     the window held plus owed;
//   - with a limit (Messages), the worker never takes more tasks in all
//     than the limit: held + owed never exceeds limit - completed;
//   - while stopping, it grants no credit;
//   - credit is a top-up: whatever is missing to reach the bounds above is
//     granted at once (at the start of a stream, and with the dones in the
//     steady state).
//
// The window is fixed (Credit) or adaptive. An adaptive window holds as
// many tasks as the worker completes in windowTime, on top of the tasks it
// runs at once (its floor), within [floor, ceiling], and no more than
// maxHeldBytes of tasks of the average size seen: by Little's law, a worker
// that completes r tasks a second and holds floor + r·windowTime tasks has
// about windowTime of work waiting, enough to cover the round trip to the
// master and fill batches, while a slow worker (small r) holds hardly more
// than it runs. The completion rate is measured over periods of at least
// samplePeriod and smoothed; the window starts at the floor and grows as
// the measured rate does, the way a TCP sender's window opens.
type ledger struct {
	window  int // most tasks held and owed now
	floor   int // adaptive: the least window (the worker's concurrency)
	ceiling int // adaptive: the most; floor == ceiling for a fixed window

	limit     int // Messages: most tasks completed over Run; 0 for no limit
	completed int // tasks completed over Run, on every stream

	held     map[uint64]int // tasks held on this stream, with their payload sizes
	heldSize int            // payload bytes held
	owed     int            // credit granted on this stream and not yet used
	stopping bool

	// The completion rate's measurement.
	since    time.Time // start of the current period; zero before the first completion
	finished int       // completions in the current period
	rate     float64   // smoothed completions per second; 0 before the first period
	avgSize  float64   // smoothed payload size of the tasks taken
}

// The adaptive window's tuning.
const (
	windowTime   = 5 * time.Millisecond
	samplePeriod = 10 * time.Millisecond
	maxHeldBytes = 32 << 20
)

// newLedger returns a ledger with a window of floor to ceiling tasks
// (fixed when they are equal), and a limit of tasks in all (0: none).
func newLedger(floor, ceiling, limit int) *ledger {
	return &ledger{window: floor, floor: floor, ceiling: max(floor, ceiling), limit: limit, held: map[uint64]int{}}
}

// reset starts a new stream: the tasks of the old one are abandoned (the
// master gives them to other workers), and no credit is granted yet. What
// the ledger learnt of the worker's speed stays.
func (l *ledger) reset() {
	clear(l.held)
	l.heldSize = 0
	l.owed = 0
	l.stopping = false
}

// grant returns the credit to send now, and counts it as owed.
func (l *ledger) grant() uint32 {
	if l.stopping {
		return 0
	}
	want := l.window - len(l.held) - l.owed
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

// take records the arrival of task id, of size payload bytes.
func (l *ledger) take(id uint64, size int) verdict {
	if _, ok := l.held[id]; ok {
		return duplicate
	}
	if l.owed == 0 {
		return overCredit
	}
	l.owed--
	l.held[id] = size
	l.heldSize += size
	if l.floor < l.ceiling {
		if l.avgSize == 0 {
			l.avgSize = float64(size)
		} else {
			l.avgSize += (float64(size) - l.avgSize) / 16
		}
	}
	return accept
}

// finish records at now that task id is done and reports whether it was
// held.
func (l *ledger) finish(id uint64, now time.Time) bool {
	size, ok := l.held[id]
	if !ok {
		return false
	}
	delete(l.held, id)
	l.heldSize -= size
	l.completed++
	if l.floor < l.ceiling {
		l.observe(now)
	}
	return true
}

// observe counts a completion at now and, at the end of a period, moves
// the window to fit the rate measured.
func (l *ledger) observe(now time.Time) {
	l.finished++
	if l.since.IsZero() {
		l.since, l.finished = now, 0
		return
	}
	d := now.Sub(l.since)
	if d < samplePeriod {
		return
	}
	r := float64(l.finished) / d.Seconds()
	if l.rate == 0 {
		l.rate = r
	} else {
		l.rate = (l.rate + r) / 2
	}
	l.since, l.finished = now, 0
	w := float64(l.floor) + math.Ceil(l.rate*windowTime.Seconds())
	if l.avgSize > 0 {
		w = min(w, maxHeldBytes/l.avgSize)
	}
	l.window = int(min(max(w, float64(l.floor)), float64(l.ceiling)))
}

// stop makes the ledger grant no more credit.
func (l *ledger) stop() { l.stopping = true }

// holding is the number of tasks held.
func (l *ledger) holding() int { return len(l.held) }

// exhausted reports whether the worker has completed as many tasks as its
// limit allows.
func (l *ledger) exhausted() bool { return l.limit > 0 && l.completed >= l.limit }
