package main

import (
	"context"
	"fmt"
	"io"
)

// A scale is one shape of the scaling section: so many workers (NATS:
// subscribers in the queue group) and so many clients (NATS: publishing
// connections), the messages of a run shared out among the clients.
type scale struct{ workers, clients int }

// scales: workers 1, 2, 4, 8 with one client, then clients 4 and 16 with
// two workers. {2, 1} is the base both sweeps are measured against.
var (
	scales    = []scale{{1, 1}, {2, 1}, {4, 1}, {8, 1}, {2, 4}, {2, 16}}
	baseScale = scale{2, 1}
)

func plural(n int, one string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %ss", n, one)
}

func (s scale) palm() string {
	return fmt.Sprintf("palm master, %s, %s", plural(s.workers, "worker"), plural(s.clients, "client"))
}

func (s scale) nats() string {
	return fmt.Sprintf("nats, %s, %s", plural(s.workers, "subscriber"), plural(s.clients, "publisher"))
}

// goal is the acceptance for the palm row of s against the base.
func (s scale) goal() string {
	switch s {
	case scale{8, 1}:
		return "≥ 1.0x 2 workers"
	case scale{2, 16}:
		return "≥ 1.0x 1 client"
	}
	return ""
}

// scalingShapes pairs each scale's NATS shape with its palm shape.
func scalingShapes() []shape {
	var shapes []shape
	for _, s := range scales {
		shapes = append(shapes,
			shape{s.nats(), func() (*system, error) { return startNATS(s.workers, s.clients) }},
			shape{s.palm(), func() (*system, error) { return startMaster(s.workers, s.clients, nil) }})
	}
	return shapes
}

// runScaling measures every scale of NATS and palm at 100 B, interleaved.
func runScaling(ctx context.Context, cfg config) ([]row, error) {
	shapes := scalingShapes()
	samples, err := rates(ctx, shapes, cfg.runs, cfg.timeout, makePayload(100), cfg.nScaling, warmOf(cfg.nScaling))
	if err != nil {
		return nil, err
	}
	return rateRows(shapes, "100 B", samples), nil
}

// printScaling writes each shape's NATS row then its palm row, each with its
// median against NATS in the same shape and against its own system's base
// (two workers or subscribers, one client or publisher).
func printScaling(w io.Writer, rows []row, _ config) {
	t := newTable(w, "shape", "payload", "min msg/s", "median msg/s", "max msg/s", "vs nats same shape", "vs 2 workers/subs, 1 client/pub", "goal")
	for _, s := range scales {
		for _, name := range []string{s.nats(), s.palm()} {
			r := find(rows, name, "100 B", "msg/s")
			if r == nil {
				continue
			}
			nats, base, goal := find(rows, s.nats(), r.payload, r.metric), find(rows, baseScale.nats(), r.payload, r.metric), ""
			if name == s.palm() {
				base, goal = find(rows, baseScale.palm(), r.payload, r.metric), s.goal()
			}
			t.line(append(append([]string{r.shape, r.payload}, mmm(*r, "%.0f")...), ratio(r, nats), ratio(r, base), goal)...)
		}
	}
	t.flush()
}
