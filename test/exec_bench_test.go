package test

// The --exec worker beside a Go worker, in the same run:
//
//	go test -run '^$' -bench ExecWorker -benchtime 20000x ./test/

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/internal/execfn"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/worker"
)

// oneWorkerCluster serves a master with one worker serving echo with h,
// taking credit tasks at once, and returns a client for it.
func oneWorkerCluster(b *testing.B, h palm.Handler, credit int) *client.Client {
	quiet := palm.WithLogger(hclog.NewNullLogger())
	m, err := master.New("bench", quiet)
	if err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- m.Serve(ctx, lis) }()
	w, err := worker.New("w", lis.Addr().String(), quiet, worker.Credit(credit))
	if err != nil {
		b.Fatal(err)
	}
	w.Handle("echo", h)
	wctx, stopWorker := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { w.Run(wctx) })
	b.Cleanup(func() {
		stopWorker()
		wg.Wait()
		cancel()
		<-served
	})
	for m.Workers() < 1 {
		time.Sleep(time.Millisecond)
	}
	c, err := client.New("bench", lis.Addr().String(), quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkExecWorker reports the throughput of a job of 100 B payloads
// through a master and one worker whose function is a long-running command
// (palm worker --exec-mode lines --concurrency 4 --exec echo=cat), beside
// the same with a Go function, in one run.
func BenchmarkExecWorker(b *testing.B) {
	const concurrency = 4
	goEcho := palm.HandlerFunc(func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
	exec := execfn.Handler(execfn.Spec{Function: "echo", Command: "cat"}, execfn.Lines, concurrency, hclog.NewNullLogger())
	b.Cleanup(exec.Close)
	goClient := oneWorkerCluster(b, goEcho, concurrency)
	execClient := oneWorkerCluster(b, exec, concurrency)
	payload := make([]byte, 100)
	for i := range payload {
		payload[i] = 'x'
	}
	jobThrough(b, goClient, "bench.echo", payload, 500)
	jobThrough(b, execClient, "bench.echo", payload, 500)
	b.ResetTimer()
	half := max(b.N/2, 1)
	var tGo, tExec time.Duration
	for range 2 {
		tGo += jobThrough(b, goClient, "bench.echo", payload, half)
		tExec += jobThrough(b, execClient, "bench.echo", payload, half)
	}
	b.StopTimer()
	rate := func(d time.Duration) float64 { return float64(2*half) / d.Seconds() }
	b.ReportMetric(rate(tGo), "go-worker-msg/s")
	b.ReportMetric(rate(tExec), "exec-worker-msg/s")
	b.ReportMetric(rate(tExec)/rate(tGo), "exec/go")
}
