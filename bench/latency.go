package main

import (
	"context"
	"io"
	"math"
	"slices"
	"time"
)

// The latency section: sequential round trips of 100 B, one at a time.
const natsRequest = "nats request, queue group of 2"

var latencyShapes = []shape{
	{natsRequest, func() (*system, error) { return startNATS(2, 1) }},
	{"raw grpc unary", func() (*system, error) { return startRaw(1) }},
	{"raw grpc stream ping-pong", startRawPingPong},
	{"palm master + 2 workers, Eval", func() (*system, error) { return startMaster(2, 1, nil) }},
	{"palm standalone server, Eval", startServer},
}

// percentile returns the q-quantile of lat in µs (nearest rank).
func percentile(lat []time.Duration, q float64) float64 {
	s := slices.Clone(lat)
	slices.Sort(s)
	i := min(len(s)-1, max(0, int(math.Ceil(q*float64(len(s))))-1))
	return float64(s[i].Nanoseconds()) / 1e3
}

// runLatency makes cfg.samples round trips through every shape per run,
// after a warm-up of a tenth as many, and returns a p50 and a p99 row per
// shape, in µs.
func runLatency(ctx context.Context, cfg config) ([]row, error) {
	payload := makePayload(100)
	p50 := make([]row, len(latencyShapes))
	p99 := make([]row, len(latencyShapes))
	for i, sh := range latencyShapes {
		p50[i] = row{shape: sh.name, payload: "100 B", metric: "p50 µs"}
		p99[i] = row{shape: sh.name, payload: "100 B", metric: "p99 µs"}
	}
	rtt := func(s *system, k int) ([]time.Duration, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
		return s.rtt(ctx, payload, k)
	}
	err := interleave(latencyShapes, cfg.runs,
		func(_ int, s *system) error { _, err := rtt(s, max(1, cfg.samples/10)); return err },
		func(i int, s *system) error {
			lat, err := rtt(s, cfg.samples)
			if err != nil {
				return err
			}
			p50[i].values = append(p50[i].values, percentile(lat, .50))
			p99[i].values = append(p99[i].values, percentile(lat, .99))
			return nil
		})
	if err != nil {
		return nil, err
	}
	return append(p50, p99...), nil
}

// printLatency writes each shape's p50 and p99 (min, median and max over the
// runs) and their medians against the NATS request's.
func printLatency(w io.Writer, rows []row, _ config) {
	t := newTable(w, "shape", "payload", "min p50 µs", "median p50 µs", "max p50 µs", "min p99 µs", "median p99 µs", "max p99 µs", "p50 vs nats", "p99 vs nats", "goal")
	for _, sh := range latencyShapes {
		p50, p99 := find(rows, sh.name, "100 B", "p50 µs"), find(rows, sh.name, "100 B", "p99 µs")
		if p50 == nil || p99 == nil {
			continue
		}
		goal := ""
		if sh.name == "palm master + 2 workers, Eval" {
			goal = "p50 ≤ 1.0x, p99 ≤ 1.5x nats"
		}
		cells := append([]string{sh.name, p50.payload}, mmm(*p50, "%.1f")...)
		cells = append(cells, mmm(*p99, "%.1f")...)
		t.line(append(cells, ratio(p50, find(rows, natsRequest, "100 B", "p50 µs")), ratio(p99, find(rows, natsRequest, "100 B", "p99 µs")), goal)...)
	}
	t.flush()
}
