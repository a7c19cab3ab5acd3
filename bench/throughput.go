package main

import (
	"context"
	"fmt"
	"io"
)

// The throughput section: the headline shapes at 100 B and 10 KiB.
const (
	natsShape   = "nats queue group of 2"
	rawShape    = "raw grpc stream, 1/Send"
	masterShape = "palm master + 2 workers"
	serverShape = "palm standalone server"
)

var throughputShapes = []shape{
	{natsShape, func() (*system, error) { return startNATS(2, 1) }},
	{rawShape, func() (*system, error) { return startRaw(1) }},
	{"raw grpc stream, 64/Send", func() (*system, error) { return startRaw(64) }},
	{masterShape, func() (*system, error) { return startMaster(2, 1, nil) }},
	{serverShape, startServer},
}

// A payload size and how many messages each shape moves at it per run.
type size struct {
	name  string
	bytes int
	n     int
}

// makePayload returns n bytes that are not all zero.
func makePayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

// warmOf is how many messages warm a shape up before it moves n per run.
func warmOf(n int) int { return max(1, min(n/10, 5000)) }

// runThroughput measures every throughput shape at each size, the shapes of
// one size started together and their runs interleaved.
func runThroughput(ctx context.Context, cfg config) ([]row, error) {
	var rows []row
	for _, sz := range []size{{"100 B", 100, cfg.n}, {"10 KiB", 10 << 10, cfg.n10k}} {
		samples, err := rates(ctx, throughputShapes, cfg.runs, cfg.timeout, makePayload(sz.bytes), sz.n, warmOf(sz.n))
		if err != nil {
			return nil, fmt.Errorf("at %s: %w", sz.name, err)
		}
		rows = append(rows, rateRows(throughputShapes, sz.name, samples)...)
	}
	return rows, nil
}

// throughputGoals are the acceptance bounds, by shape and payload.
var throughputGoals = map[string]string{
	masterShape + "|100 B":  "≥ 1.0x nats",
	masterShape + "|10 KiB": "≥ 1.2x nats",
	serverShape + "|100 B":  "≥ 2.0x nats",
	serverShape + "|10 KiB": "≥ 2.0x nats",
}

// printThroughput writes each row's min, median and max, and its median
// against the NATS and raw 1/Send medians at the same payload.
func printThroughput(w io.Writer, rows []row, _ config) {
	t := newTable(w, "shape", "payload", "min msg/s", "median msg/s", "max msg/s", "vs nats", "vs raw 1/Send", "goal")
	for _, r := range rows {
		t.line(append(append([]string{r.shape, r.payload}, mmm(r, "%.0f")...),
			ratio(&r, find(rows, natsShape, r.payload, r.metric)),
			ratio(&r, find(rows, rawShape, r.payload, r.metric)),
			throughputGoals[r.shape+"|"+r.payload])...)
	}
	t.flush()
}
