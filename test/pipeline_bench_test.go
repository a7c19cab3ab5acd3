package test

// A three-stage pipeline beside a single stage, measured in the same run:
//
//	go test -run '^$' -bench Pipeline -benchtime 100000x ./test/
//
// Issue target: the three-stage pipeline's Job throughput at 100 B at least
// 0.6x the single stage's.

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/pipeline"
)

// serveBench serves s on a loopback port until the benchmark ends.
func serveBench(b *testing.B, s interface {
	Serve(context.Context, net.Listener) error
}) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lis) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	return lis.Addr().String()
}

// startThreeStage serves bench (pipelined) → first (pipelined) → second,
// each echoing, and returns a client that sends to bench and takes its
// replies from second.
func startThreeStage(b *testing.B) *client.Client {
	quiet := palm.WithLogger(hclog.NewNullLogger())
	echo := func(_ context.Context, p []byte) ([]byte, error) { return p, nil }
	srv, err := pipeline.NewServer("bench", quiet, pipeline.Pipelined())
	if err != nil {
		b.Fatal(err)
	}
	srv.HandleFunc("echo", echo)
	first := serveBench(b, srv)
	addr := first
	var stages []interface{ Subscribed() int }
	for _, st := range []struct {
		name, topic string
		opts        []pipeline.StageOption
	}{{"first", "bench", []pipeline.StageOption{quiet, pipeline.Pipelined()}}, {"second", "first", []pipeline.StageOption{quiet}}} {
		p, err := pipeline.NewPipeline(st.name, pipeline.Upstream{Address: addr, Topic: st.topic}, st.opts...)
		if err != nil {
			b.Fatal(err)
		}
		p.HandleFunc("echo", echo)
		addr = serveBench(b, p)
		stages = append(stages, p)
	}
	for _, s := range stages {
		for s.Subscribed() == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	c, err := client.New("bench", first, quiet, client.SubAddress(addr))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkPipeline reports the throughput of a Job of 100 B payloads
// through a three-stage pipeline (server → pipeline → pipeline, replies by
// subscription to the last stage) beside the same Job through one
// standalone server, in one run. One op is one message through each.
func BenchmarkPipeline(b *testing.B) {
	single := startPalm(b)
	three := startThreeStage(b)
	const steps = "bench.echo first.echo second.echo"
	payload := make([]byte, 100)
	jobThrough(b, single, "bench.echo", payload, 2000)
	jobThrough(b, three, steps, payload, 2000)
	b.ResetTimer()
	// Halves in turn, so that a change in the machine's load weighs on both.
	half := max(b.N/2, 1)
	var tSingle, tThree time.Duration
	for range 2 {
		tSingle += jobThrough(b, single, "bench.echo", payload, half)
		tThree += jobThrough(b, three, steps, payload, half)
	}
	b.StopTimer()
	rate := func(d time.Duration) float64 { return float64(2*half) / d.Seconds() }
	b.ReportMetric(rate(tSingle), "single-msg/s")
	b.ReportMetric(rate(tThree), "three-stage-msg/s")
	b.ReportMetric(rate(tThree)/rate(tSingle), "three/single")
}
