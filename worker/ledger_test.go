package worker

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// TestLedger runs scripts of events through the ledger. Each step is one
// event and what the ledger must answer:
//
//	grant N      grant() returns N
//	take ID V    take(ID) of a 100-byte task returns V (accept, over, dup)
//	finish ID B  finish(ID) returns B (true, false)
//	after D      the clock moves on by D (a time.Duration)
//	window N     the window is N
//	stop         stop()
//	reset        reset() (a new stream)
//	held N       holding() is N
//	exhausted B  exhausted() is B
func TestLedger(t *testing.T) {
	cases := []struct {
		name                  string
		floor, ceiling, limit int
		script                string
	}{
		{"steady state: one credit per done", 3, 3, 0, `
			grant 3; grant 0
			take 1 accept; take 2 accept; take 3 accept; held 3
			take 4 over
			finish 2 true; grant 1; grant 0
			take 4 accept; finish 1 true; finish 3 true; grant 2
			finish 9 false; held 1`},
		{"duplicate ids are ignored", 2, 2, 0, `
			grant 2; take 1 accept; take 1 dup; held 1; grant 0`},
		{"stopping grants nothing but accepts owed tasks", 2, 2, 0, `
			grant 2; take 1 accept; stop
			take 2 accept; finish 1 true; grant 0; finish 2 true; grant 0; held 0`},
		{"messages bound the total", 4, 4, 5, `
			grant 4; take 1 accept; take 2 accept; take 3 accept; take 4 accept
			finish 1 true; grant 1; finish 2 true; grant 0
			take 5 accept; take 6 over
			finish 3 true; finish 4 true; grant 0; exhausted false
			finish 5 true; exhausted true; grant 0; held 0`},
		{"messages smaller than the credit", 8, 8, 2, `
			grant 2; take 1 accept; take 2 accept; take 3 over`},
		{"a new stream abandons held tasks, which do not count", 2, 2, 3, `
			grant 2; take 1 accept; take 2 accept; finish 1 true
			stop; reset; held 0
			grant 2; take 1 accept; take 7 accept; take 8 over
			finish 1 true; finish 7 true; exhausted true; grant 0`},
		// 2 tasks per ms for 10 ms: 2,000 a second, so 10 more in 5 ms.
		{"an adaptive window opens with the rate measured", 2, 100, 0, `
			window 2; grant 2; take 1 accept; take 2 accept; finish 1 true; grant 1
			take 3 accept
			after 1ms; finish 2 true; finish 3 true; grant 2; take 4 accept; take 5 accept
			after 1ms; finish 4 true; finish 5 true; grant 2; take 6 accept; take 7 accept
			after 1ms; finish 6 true; finish 7 true; grant 2; take 8 accept; take 9 accept
			after 1ms; finish 8 true; finish 9 true; grant 2; take 10 accept; take 11 accept
			after 1ms; finish 10 true; finish 11 true; grant 2; take 12 accept; take 13 accept
			after 5ms; finish 12 true; window 8; finish 13 true; window 8; grant 8; held 0`},
		{"a slow worker's window stays near its floor", 4, 1000, 0, `
			grant 4; take 1 accept; take 2 accept; take 3 accept; take 4 accept
			finish 1 true; after 100ms; finish 2 true; window 5
			after 100ms; finish 3 true; window 5; grant 4`},
		{"the window never passes its ceiling", 1, 8, 0, `
			grant 1; take 1 accept; finish 1 true; grant 1
			take 2 accept; finish 2 true; grant 1; take 3 accept; finish 3 true; grant 1; take 4 accept; finish 4 true; grant 1; take 5 accept; finish 5 true; grant 1; take 6 accept; finish 6 true; grant 1; take 7 accept; finish 7 true; grant 1; take 8 accept; finish 8 true; grant 1; take 9 accept; finish 9 true; grant 1; take 10 accept; finish 10 true; grant 1; take 11 accept; finish 11 true; grant 1; take 12 accept; finish 12 true; grant 1; take 13 accept; finish 13 true; grant 1; take 14 accept; finish 14 true; grant 1; take 15 accept; finish 15 true; grant 1; take 16 accept; finish 16 true; grant 1; take 17 accept; finish 17 true; grant 1; take 18 accept; finish 18 true; grant 1; take 19 accept; finish 19 true; grant 1; take 20 accept; finish 20 true; grant 1; take 21 accept; finish 21 true; grant 1;
			take 22 accept; after 10ms; finish 22 true; window 8; grant 8`},
		{"a smaller window waits for the held tasks to finish", 1, 100, 0, `
			grant 1; take 1 accept; finish 1 true; grant 1; take 2 accept; after 1ms; finish 2 true; grant 1
			take 3 accept; after 9ms; finish 3 true; window 2; grant 2; take 4 accept; take 5 accept
			after 1s; finish 4 true; window 2; grant 1`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newLedger(c.floor, c.ceiling, c.limit)
			now := time.Unix(1e9, 0)
			for _, line := range strings.FieldsFunc(c.script, func(r rune) bool { return r == ';' || r == '\n' }) {
				f := strings.Fields(line)
				if len(f) == 0 {
					continue
				}
				var got string
				switch f[0] {
				case "grant":
					got = strconv.Itoa(int(l.grant()))
				case "take":
					got = [...]string{accept: "accept", overCredit: "over", duplicate: "dup"}[l.take(uint64(atoi(t, f[1])), 100)]
					f = f[1:]
				case "finish":
					got = strconv.FormatBool(l.finish(uint64(atoi(t, f[1])), now))
					f = f[1:]
				case "window":
					got = strconv.Itoa(l.window)
				case "after":
					d, err := time.ParseDuration(f[1])
					if err != nil {
						t.Fatal(err)
					}
					now = now.Add(d)
					continue
				case "held":
					got = strconv.Itoa(l.holding())
				case "exhausted":
					got = strconv.FormatBool(l.exhausted())
				case "stop":
					l.stop()
					continue
				case "reset":
					l.reset()
					continue
				default:
					t.Fatalf("bad step %q", line)
				}
				if want := f[1]; got != want {
					t.Fatalf("%s: got %s; want %s", strings.TrimSpace(line), got, want)
				}
				if len(l.held)+l.owed > l.ceiling {
					t.Fatalf("%s: %d held and %d owed exceed the ceiling %d", line, len(l.held), l.owed, l.ceiling)
				}
				if l.window < l.floor || l.window > l.ceiling {
					t.Fatalf("%s: window %d outside [%d, %d]", line, l.window, l.floor, l.ceiling)
				}
				if l.limit > 0 && l.completed+len(l.held)+l.owed > l.limit {
					t.Fatalf("%s: %d completed, %d held and %d owed exceed the limit %d", line, l.completed, len(l.held), l.owed, l.limit)
				}
			}
		})
	}
}

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBatch(t *testing.T) {
	result := func(n int) output {
		r := &palmv1.TaskResult{TaskId: 1, Message: &palmv1.PalmMessage{Payload: make([]byte, n)}}
		return output{result: r, size: proto.Size(r)}
	}
	done := output{done: &palmv1.TaskDone{TaskId: 1}}
	b := &batch{req: &palmv1.WorkRequest{}, limit: 100}
	if !b.empty() || b.full() {
		t.Fatal("a new batch is not empty")
	}
	if !b.fits(result(500)) {
		t.Error("a result over the limit does not fit an empty batch; it must, alone")
	}
	b.addResult(result(50).result, result(50).size)
	if b.fits(result(60)) {
		t.Error("a result that takes the batch over the limit fits")
	}
	if !b.fits(done) || !b.fits(result(30)) {
		t.Error("a done, or a result within the limit, does not fit")
	}
	b.addResult(result(60).result, result(60).size) // as an oversize result alone would
	if !b.full() {
		t.Error("a batch over its byte limit is not full")
	}
	req := b.take()
	if len(req.GetResults()) != 2 || !b.empty() || b.full() {
		t.Errorf("take: %d results, then empty %v", len(req.GetResults()), b.empty())
	}
	for range maxBatch {
		b.addDone(done.done)
	}
	if !b.full() {
		t.Errorf("a batch of %d dones is not full", maxBatch)
	}
	b.take()
	b.req.Credit = 1
	if b.empty() {
		t.Error("a batch carrying credit is empty")
	}
}
