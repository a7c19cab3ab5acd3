package test

// Concurrent Evals through a two-stage pipeline, from one Client with a
// SubAddress beside as many Clients, measured in the same run:
//
//	go test -run '^$' -bench SharedSubscription -benchtime 20000x ./test/
//
// Issue target: 64 concurrent Evals on one Client at least 0.8x 64 Evals on
// 64 Clients.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/pipeline"
)

// startTwoStage serves bench (pipelined) → last, both echoing, and returns
// a function making Clients that send to bench and take their replies from
// last.
func startTwoStage(b *testing.B) func() *client.Client {
	quiet := palm.WithLogger(hclog.NewNullLogger())
	echo := func(_ context.Context, p []byte) ([]byte, error) { return p, nil }
	srv, err := pipeline.NewServer("bench", quiet, pipeline.Pipelined())
	if err != nil {
		b.Fatal(err)
	}
	srv.HandleFunc("echo", echo)
	first := serveBench(b, srv)
	p, err := pipeline.NewPipeline("last", pipeline.Upstream{Address: first, Topic: "bench"}, quiet)
	if err != nil {
		b.Fatal(err)
	}
	p.HandleFunc("echo", echo)
	last := serveBench(b, p)
	for p.Subscribed() == 0 {
		time.Sleep(time.Millisecond)
	}
	return func() *client.Client {
		c, err := client.New("bench", first, quiet, client.SubAddress(last))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		return c
	}
}

// concurrentEvals runs n Evals spread over len(clients)*per goroutines,
// per goroutines on each Client, and returns the time they took.
func concurrentEvals(b *testing.B, clients []*client.Client, per, n int, payload []byte) time.Duration {
	const function = "bench.echo last.echo"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	workers := len(clients) * per
	start := time.Now()
	var wg sync.WaitGroup
	for i := range workers {
		c := clients[i%len(clients)]
		share := n / workers
		if i < n%workers {
			share++
		}
		wg.Go(func() {
			for range share {
				if _, err := c.Eval(ctx, function, payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// BenchmarkSharedSubscription reports the throughput of 64 goroutines
// calling Eval on one Client with a SubAddress beside 64 goroutines each
// calling Eval on a Client of its own, through the same two-stage
// pipeline. One op is one Eval through each.
func BenchmarkSharedSubscription(b *testing.B) {
	const calls = 64
	newClient := startTwoStage(b)
	one := []*client.Client{newClient()}
	many := make([]*client.Client, calls)
	for i := range many {
		many[i] = newClient()
	}
	payload := make([]byte, 100)
	concurrentEvals(b, one, calls, 640, payload)
	concurrentEvals(b, many, 1, 640, payload)
	b.ResetTimer()
	// Halves in turn, so that a change in the machine's load weighs on both.
	half := max(b.N/2, calls)
	var tOne, tMany time.Duration
	for range 2 {
		tOne += concurrentEvals(b, one, calls, half, payload)
		tMany += concurrentEvals(b, many, 1, half, payload)
	}
	b.StopTimer()
	rate := func(d time.Duration) float64 { return float64(2*half) / d.Seconds() }
	b.ReportMetric(rate(tOne), "one-client-msg/s")
	b.ReportMetric(rate(tMany), "64-clients-msg/s")
	b.ReportMetric(rate(tOne)/rate(tMany), "one/many")
}
