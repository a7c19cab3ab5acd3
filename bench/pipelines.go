package main

import (
	"context"
	"io"
)

// The pipelines section: concurrent Evals through a two-stage pipeline on
// one client beside as many clients, and a three-stage pipeline Job beside
// a single stage's.
const (
	evalCallers    = 64
	evalsOnClients = "two stages, 64 Evals on 64 clients"
	evalsOnOne     = "two stages, 64 Evals on one client"
	singleStage    = "single stage (standalone server), Job"
	threeStages    = "three stages, Job"
)

var (
	evalShapes = []shape{
		{evalsOnClients, func() (*system, error) { return startChainEvals(2, evalCallers, evalCallers) }},
		{evalsOnOne, func() (*system, error) { return startChainEvals(2, 1, evalCallers) }},
	}
	jobShapes = []shape{
		{singleStage, startServer},
		{threeStages, func() (*system, error) { return startChainJob(3) }},
	}
)

// pipelineBases names, for each shape, the shape it is measured against
// and the acceptance.
var pipelineBases = map[string]struct{ base, goal string }{
	evalsOnOne:  {evalsOnClients, "≥ 0.8x"},
	threeStages: {singleStage, "≥ 0.6x"},
}

// runPipelines measures cfg.evals Evals per run through the Eval shapes and
// cfg.nJobs messages per run through the Job shapes, at 100 B.
func runPipelines(ctx context.Context, cfg config) ([]row, error) {
	payload := makePayload(100)
	evals, err := rates(ctx, evalShapes, cfg.runs, cfg.timeout, payload, cfg.evals, max(evalCallers, cfg.evals/10))
	if err != nil {
		return nil, err
	}
	jobs, err := rates(ctx, jobShapes, cfg.runs, cfg.timeout, payload, cfg.nJobs, warmOf(cfg.nJobs))
	if err != nil {
		return nil, err
	}
	return append(rateRows(evalShapes, "100 B", evals), rateRows(jobShapes, "100 B", jobs)...), nil
}

// printPipelines writes each shape's messages per second and its median
// against its base.
func printPipelines(w io.Writer, rows []row, _ config) {
	t := newTable(w, "shape", "payload", "min msg/s", "median msg/s", "max msg/s", "ratio", "against", "goal")
	for _, r := range rows {
		b := pipelineBases[r.shape]
		against := "(base)"
		if b.base != "" {
			against = b.base
		}
		t.line(append(append([]string{r.shape, r.payload}, mmm(r, "%.0f")...), ratio(&r, find(rows, b.base, r.payload, r.metric)), against, b.goal)...)
	}
	t.flush()
}
