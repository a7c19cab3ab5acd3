package dispatch

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the expected outputs of testdata/*.txt with what the core does now")

// A transcript (testdata/*.txt) is a sequence of events, one a line, each
// followed by the outputs the core's Ready gives after it, one a line,
// each starting with "> ". A line starting with # is a comment; blank
// lines are kept. Names stand for IDs: w1 is worker 1, t3 is task 3, m1 a
// message, o1 an origin; times are offsets from the start of the run.
//
// Events:
//
//	config [capacity=N] [attempts=N] [timeout=D] [wait=D] [replace=D] [maxresult=N]
//	                                   a new core (the default: capacity=100)
//	join w1 [fns=a,b]                  a worker of a and b (of every function without fns)
//	leave w1
//	grant w1 N                         a report of credit alone
//	submit m1 [origin=o1] [single] [deadline=D] tasks=a,b,!
//	                                   a message of one task per function; ! is a rejected task
//	report w1 [result=t1[:bytes]]... [done=t1]... [fail=t1]... [credit=N]
//	gone o1
//	unsent w1 t3
//	tick D                             time passes to D
//	stop
//	state                              prints the counts
//
// Outputs, in the order a caller carries them out:
//
//	joined w1 | left w1 failed=N | watch o1 | unwatch o1 | assign t1 to w1 [attempt N]
//	route t1 m1 [done] | fail t1 m1 REASON [done] | complete m1 | drop t1 m1
//	waiting a | ignored result|done w1 t1 | timed out N | deadline D|none
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runTranscript(t, file)
		})
	}
}

// line is one line of a transcript, with the outputs expected after it
// when it is an event.
type line struct {
	n    int
	text string
	want []string
}

func runTranscript(t *testing.T, file string) {
	lines := readTranscript(t, file)
	r := &replay{t: t, c: New(Config{Capacity: 100}), now: t0}
	var out strings.Builder
	failed := false
	for _, l := range lines {
		out.WriteString(l.text + "\n")
		ev := strings.TrimSpace(l.text)
		if ev == "" || strings.HasPrefix(ev, "#") {
			continue
		}
		got, err := r.event(ev)
		if err != nil {
			t.Fatalf("%s:%d: %v", file, l.n, err)
		}
		for _, g := range got {
			out.WriteString("> " + g + "\n")
		}
		if !*update && strings.Join(got, "\n") != strings.Join(l.want, "\n") {
			failed = true
			t.Errorf("%s:%d: %s\nwant:\n> %s\ngot:\n> %s", file, l.n, ev, strings.Join(l.want, "\n> "), strings.Join(got, "\n> "))
		}
	}
	if *update {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if failed {
		t.Log("run go test ./internal/dispatch/ -run TestTranscripts -update to accept what the core does now")
	}
}

func readTranscript(t *testing.T, file string) []line {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []line
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		if out, ok := strings.CutPrefix(text, "> "); ok {
			if len(lines) == 0 {
				t.Fatalf("%s:%d: an output before any event", file, n)
			}
			lines[len(lines)-1].want = append(lines[len(lines)-1].want, out)
			continue
		}
		lines = append(lines, line{n: n, text: text})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// replay steps a core with a transcript's events.
type replay struct {
	t        *testing.T
	c        *Core
	now      time.Time
	deadline time.Time // the last deadline printed
}

// event steps the core with one event line and returns the outputs of the
// Ready that follows.
func (r *replay) event(text string) ([]string, error) {
	f := strings.Fields(text)
	verb, args := f[0], f[1:]
	kv, pos := splitArgs(args)
	ev := Event{At: r.now}
	var err error
	switch verb {
	case "config":
		return nil, r.config(kv)
	case "state":
		c := r.c
		return []string{fmt.Sprintf("queued=%d inflight=%d workers=%d requeued=%d room=%d", c.Queued(), c.InFlight(), c.Workers(), c.Requeued(), c.Room())}, nil
	case "join":
		ev.Kind, ev.Worker, err = Join, r.worker(pos, 0), need(pos, 1)
		if fns := kv["fns"]; fns != "" {
			ev.Functions = strings.Split(fns, ",")
		}
	case "leave":
		ev.Kind, ev.Worker, err = Leave, r.worker(pos, 0), need(pos, 1)
	case "grant":
		ev.Kind, ev.Worker, err = Report, r.worker(pos, 0), need(pos, 2)
		if err == nil {
			ev.Credit, err = strconv.Atoi(pos[1])
		}
	case "submit":
		err = r.submit(&ev, pos, kv)
	case "report":
		err = r.report(&ev, args)
	case "gone":
		if err = need(pos, 1); err == nil {
			ev.Kind, ev.Origin = Gone, pos[0]
		}
	case "unsent":
		ev.Kind, ev.Worker, err = Unsent, r.worker(pos, 0), need(pos, 2)
		ev.Task = TaskID(num(pos, 1))
	case "tick":
		var d time.Duration
		if err = need(pos, 1); err == nil {
			d, err = time.ParseDuration(pos[0])
		}
		if err == nil {
			r.now = t0.Add(d)
			ev.Kind, ev.At = Tick, r.now
		}
	case "stop":
		ev.Kind = Stop
	default:
		return nil, fmt.Errorf("unknown event %q", verb)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", text, err)
	}
	r.c.Step(ev)
	out := r.ready()
	check(r.t, r.c)
	return out, nil
}

func (r *replay) config(kv map[string]string) error {
	cfg := Config{Capacity: 100}
	counts := map[string]*int{"capacity": &cfg.Capacity, "attempts": &cfg.MaxAttempts, "maxresult": &cfg.MaxResultBytes}
	waits := map[string]*time.Duration{"timeout": &cfg.TaskTimeout, "wait": &cfg.WaitForWorkers, "replace": &cfg.ReplaceWait}
	for k, v := range kv {
		var err error
		if n := counts[k]; n != nil {
			*n, err = strconv.Atoi(v)
		} else if d := waits[k]; d != nil {
			*d, err = time.ParseDuration(v)
		} else {
			err = fmt.Errorf("unknown setting %q", k)
		}
		if err != nil {
			return err
		}
	}
	r.c, r.now, r.deadline = New(cfg), t0, time.Time{}
	return nil
}

func (r *replay) submit(ev *Event, pos []string, kv map[string]string) error {
	if err := need(pos, 1); err != nil {
		return err
	}
	m := &Message{Sequence: num(pos, 0)}
	if o := kv["origin"]; o != "" {
		m.Origin = o
	}
	for _, p := range pos[1:] {
		if p != "single" {
			return fmt.Errorf("unknown flag %q", p)
		}
		m.Single = true
	}
	if d := kv["deadline"]; d != "" {
		at, err := time.ParseDuration(d)
		if err != nil {
			return err
		}
		m.Deadline = t0.Add(at)
	}
	ev.Kind, ev.Message = Submit, m
	if fns := kv["tasks"]; fns != "" {
		for _, fn := range strings.Split(fns, ",") {
			ev.Tasks = append(ev.Tasks, &Task{Function: fn, Rejected: fn == "!"})
		}
	}
	return nil
}

// report reads the results, dones and credit of a report, in their order.
func (r *replay) report(ev *Event, args []string) error {
	if err := need(args, 1); err != nil {
		return err
	}
	ev.Kind, ev.Worker = Report, r.worker(args, 0)
	for _, a := range args[1:] {
		k, v, _ := strings.Cut(a, "=")
		id, bytes, _ := strings.Cut(v, ":")
		task := TaskID(num([]string{id}, 0))
		switch k {
		case "result":
			n, _ := strconv.Atoi(bytes)
			ev.Results = append(ev.Results, Result{Task: task, Bytes: n, Value: fmt.Sprintf("r%d", len(ev.Results))})
		case "done", "fail":
			ev.Dones = append(ev.Dones, Finish{Task: task, Failed: k == "fail"})
		case "credit":
			ev.Credit, _ = strconv.Atoi(v)
		default:
			return fmt.Errorf("unknown report part %q", a)
		}
	}
	return nil
}

// ready takes the core's Ready, prints it and advances.
func (r *replay) ready() []string {
	rd := r.c.Ready(r.now)
	var out []string
	p := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	for _, o := range rd.Watch {
		p("watch %v", o)
	}
	for _, o := range rd.Unwatch {
		p("unwatch %v", o)
	}
	for _, w := range rd.Joined {
		p("joined w%d", w)
	}
	for _, l := range rd.Left {
		p("left w%d failed=%d", l.Worker, l.Failed)
	}
	for _, a := range rd.Assigned {
		if a.Task.Attempts > 1 {
			p("assign t%d to w%d attempt %d", a.Task.ID, a.Worker, a.Task.Attempts)
		} else {
			p("assign t%d to w%d", a.Task.ID, a.Worker)
		}
	}
	for _, o := range rd.Outputs {
		out = append(out, describe(o))
	}
	for _, fn := range rd.Waiting {
		p("waiting %s", fn)
	}
	for _, ig := range rd.Ignored {
		what := "result"
		if ig.Done {
			what = "done"
		}
		p("ignored %s w%d t%d", what, ig.Worker, ig.Task)
	}
	if rd.TimedOut > 0 {
		p("timed out %d", rd.TimedOut)
	}
	if !rd.Deadline.Equal(r.deadline) {
		r.deadline = rd.Deadline
		if rd.Deadline.IsZero() {
			p("deadline none")
		} else {
			p("deadline %v", rd.Deadline.Sub(t0))
		}
	}
	r.c.Advance()
	return out
}

func describe(o Output) string {
	done := ""
	if o.Done {
		done = " done"
	}
	switch o.Kind {
	case Route:
		return fmt.Sprintf("route t%d m%d %v%s", o.Task.ID, o.Message.Sequence, o.Value, done)
	case Fail:
		return fmt.Sprintf("fail t%d m%d %s%s", o.Task.ID, o.Message.Sequence, strings.ReplaceAll(o.Reason.String(), " ", "-"), done)
	case Complete:
		return fmt.Sprintf("complete m%d", o.Message.Sequence)
	case Dropped:
		return fmt.Sprintf("drop t%d m%d", o.Task.ID, o.Message.Sequence)
	}
	return fmt.Sprintf("output %d", o.Kind)
}

// splitArgs parts key=value arguments from the others.
func splitArgs(args []string) (map[string]string, []string) {
	kv := map[string]string{}
	var pos []string
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok {
			kv[k] = v
		} else {
			pos = append(pos, a)
		}
	}
	return kv, pos
}

func need(args []string, n int) error {
	if len(args) < n {
		return fmt.Errorf("%d arguments; want %d", len(args), n)
	}
	return nil
}

// num is the number of a name such as w3, t12 or m1; 0 when there is none.
func num(args []string, i int) uint64 {
	if i >= len(args) {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimLeft(args[i], "wtm"), 10, 64)
	return n
}

func (r *replay) worker(args []string, i int) WorkerID { return WorkerID(num(args, i)) }
