package main

import (
	"context"
	"fmt"
	"io"
)

// The large-payload section: palm's master against the raw stream, one
// message per Send, in bytes per second and bytes allocated per message.
var largeShapes = []shape{
	{rawShape, func() (*system, error) { return startRaw(1) }},
	{masterShape, func() (*system, error) { return startMaster(2, 1, nil) }},
}

// runLarge measures both shapes at each of cfg.large's sizes: a MiB/s row
// and an allocated-bytes-per-message row per shape and size.
func runLarge(ctx context.Context, cfg config) ([]row, error) {
	var rows []row
	for _, sz := range cfg.large {
		samples, err := rates(ctx, largeShapes, cfg.runs, cfg.timeout, makePayload(sz.bytes), sz.n, max(1, min(sz.n/10, 1000)))
		if err != nil {
			return nil, fmt.Errorf("at %s: %w", sz.name, err)
		}
		for i, sh := range largeShapes {
			speed := row{shape: sh.name, payload: sz.name, metric: "MiB/s"}
			alloc := row{shape: sh.name, payload: sz.name, metric: "alloc B/msg"}
			for _, s := range samples[i] {
				speed.values = append(speed.values, s.rate()*float64(sz.bytes)/(1<<20))
				alloc.values = append(alloc.values, float64(s.spent.bytes)/float64(s.n))
			}
			rows = append(rows, speed, alloc)
		}
	}
	return rows, nil
}

// printLarge writes each shape's MiB/s and its median against the raw
// stream's, and beside them the median bytes allocated per message and
// their ratio to the payload.
func printLarge(w io.Writer, rows []row, cfg config) {
	t := newTable(w, "shape", "payload", "min MiB/s", "median MiB/s", "max MiB/s", "vs raw 1/Send", "alloc B/msg", "alloc/payload", "goal")
	for _, sz := range cfg.large {
		for _, sh := range largeShapes {
			speed, alloc := find(rows, sh.name, sz.name, "MiB/s"), find(rows, sh.name, sz.name, "alloc B/msg")
			if speed == nil || alloc == nil {
				continue
			}
			goal := ""
			if sh.name == masterShape && sz.bytes == 1<<20 {
				goal = "≥ 0.8x raw, alloc ≤ 3x payload"
			}
			t.line(append(append([]string{sh.name, sz.name}, mmm(*speed, "%.1f")...),
				ratio(speed, find(rows, rawShape, sz.name, "MiB/s")),
				fmt.Sprintf("%.0f", alloc.median()), fmt.Sprintf("%.2fx", alloc.median()/float64(sz.bytes)), goal)...)
		}
	}
	t.flush()
}
