package main

import (
	"context"
	"io"
	"time"
)

// The counters section: what the whole process spends per message of a
// 100 B Job through the master, beside the NATS queue group doing the same.
var counterShapes = []shape{
	{natsShape, func() (*system, error) { return startNATS(2, 1) }},
	{masterShape, func() (*system, error) { return startMaster(2, 1, nil) }},
}

// A counter is one per-message figure drawn from a sample's spending.
type counter struct {
	metric string
	goal   string // the bound for the master, if any
	zeroOK bool   // NATS may truthfully spend none of it
	// per returns the figure, or false when this machine cannot count it.
	per func(spent counters, n int) (float64, bool)
}

var counterKinds = []counter{
	{"CPU µs/msg", "", false, func(c counters, n int) (float64, bool) {
		return float64(c.cpu) / float64(time.Microsecond) / float64(n), true
	}},
	{"allocs/msg", "≤ 20", false, func(c counters, n int) (float64, bool) { return float64(c.mallocs) / float64(n), true }},
	{"alloc B/msg", "", false, func(c counters, n int) (float64, bool) { return float64(c.bytes) / float64(n), true }},
	{"read+write syscalls/msg", "≤ 0.2", true, func(c counters, n int) (float64, bool) {
		return float64(c.syscalls) / float64(n), c.syscalls >= 0
	}},
	{"goroutines created/msg", "", true, func(c counters, n int) (float64, bool) {
		return float64(c.goroutines) / float64(n), c.goroutines >= 0
	}},
}

// runCounters moves cfg.nCounters messages through both shapes per run and
// returns a row per shape and counter; a counter this machine cannot read
// (no /proc/self/io, an older runtime) is a row marked n/a.
func runCounters(ctx context.Context, cfg config) ([]row, error) {
	samples, err := rates(ctx, counterShapes, cfg.runs, cfg.timeout, makePayload(100), cfg.nCounters, warmOf(cfg.nCounters))
	if err != nil {
		return nil, err
	}
	var rows []row
	for i, sh := range counterShapes {
		for _, k := range counterKinds {
			r := row{shape: sh.name, payload: "100 B", metric: k.metric, zeroOK: k.zeroOK}
			for _, s := range samples[i] {
				v, ok := k.per(s.spent, s.n)
				if !ok {
					r.na, r.values = true, nil
					break
				}
				r.values = append(r.values, v)
			}
			rows = append(rows, r)
		}
	}
	return rows, nil
}

// printCounters writes a line per shape and counter: min, median and max
// per message, and the median against NATS's.
func printCounters(w io.Writer, rows []row, _ config) {
	t := newTable(w, "shape", "payload", "per message", "min", "median", "max", "vs nats", "goal")
	for _, r := range rows {
		goal := ""
		if r.shape == masterShape {
			for _, k := range counterKinds {
				if k.metric == r.metric {
					goal = k.goal
				}
			}
		}
		t.line(append(append([]string{r.shape, r.payload, r.metric}, mmm(r, "%.3f")...), ratio(&r, find(rows, natsShape, r.payload, r.metric)), goal)...)
	}
	t.flush()
}
