package test

// The benchmarks here measure palm's standalone server beside raw gRPC on the
// same machine, in the same run, and report ratios, since machines are
// shared and noisy:
//
//	go test -run '^$' -bench . -benchtime 20000x ./test/
//
// The raw baseline is a GatewayService written directly on grpc-go, with no
// router, no checks and no window: Eval returns the message it got, Stream
// sends back each request's messages as soon as it has them. Its messages
// carry client and pipeline ids as long as the palm client's (32
// characters), so both put the same bytes on the wire.

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/rawecho"
	"github.com/gopalm/palm/pipeline"
)

// startRaw serves the raw echo on loopback TCP and returns a client for it.
func startRaw(b *testing.B) palmv1.GatewayServiceClient {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := grpc.NewServer(grpc.MaxRecvMsgSize(8<<20), grpc.MaxSendMsgSize(8<<20))
	palmv1.RegisterGatewayServiceServer(s, rawecho.Server{})
	go s.Serve(lis)
	b.Cleanup(s.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(8<<20), grpc.MaxCallSendMsgSize(8<<20)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cc.Close() })
	return palmv1.NewGatewayServiceClient(cc)
}

// startPalm serves a palm Server named bench with an echo function on
// loopback TCP and returns a palm client for it.
func startPalm(b *testing.B) *client.Client {
	srv, err := pipeline.NewServer("bench", palm.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		b.Fatal(err)
	}
	srv.HandleFunc("echo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	c, err := client.New("bench", lis.Addr().String(), palm.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func percentile(d []time.Duration, p float64) float64 {
	slices.Sort(d)
	i := int(float64(len(d)-1) * p)
	return float64(d[i].Nanoseconds()) / 1e3
}

// BenchmarkEval reports the round-trip latency of one Eval, palm beside
// raw gRPC, interleaved call by call so both see the same machine.
func BenchmarkEval(b *testing.B) {
	raw := startRaw(b)
	c := startPalm(b)
	ctx := context.Background()
	payload := make([]byte, 100)
	msg := &palmv1.PalmMessage{Client: rawecho.Client, Pipeline: rawecho.Pipeline, Function: "bench.echo", Payload: payload, Sequence: 1}
	// Warm both connections up.
	for range 100 {
		raw.Eval(ctx, &palmv1.EvalRequest{Message: msg})
		c.Eval(ctx, "bench.echo", payload)
	}
	rawLat := make([]time.Duration, 0, b.N)
	palmLat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := raw.Eval(ctx, &palmv1.EvalRequest{Message: msg}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := c.Eval(ctx, "bench.echo", payload); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		rawLat = append(rawLat, t1.Sub(t0))
		palmLat = append(palmLat, t2.Sub(t1))
	}
	b.StopTimer()
	rp50, rp99 := percentile(rawLat, .5), percentile(rawLat, .99)
	pp50, pp99 := percentile(palmLat, .5), percentile(palmLat, .99)
	b.ReportMetric(rp50, "raw-p50-µs")
	b.ReportMetric(rp99, "raw-p99-µs")
	b.ReportMetric(pp50, "palm-p50-µs")
	b.ReportMetric(pp99, "palm-p99-µs")
	b.ReportMetric(pp50/rp50, "p50-palm/raw")
	b.ReportMetric(pp99/rp99, "p99-palm/raw")
}

// rawStream echoes n messages over one raw stream, pack per Send, and
// returns how long it took from the first send to the last reply.
func rawStream(b *testing.B, raw palmv1.GatewayServiceClient, payload []byte, n, pack int) time.Duration {
	d, err := rawecho.Stream(context.Background(), raw, "bench.echo", payload, n, pack)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

func palmJob(b *testing.B, c *client.Client, payload []byte, n int) time.Duration {
	return jobThrough(b, c, "bench.echo", payload, n)
}

// jobThrough times a Job of n payloads to function and checks it got n
// replies.
func jobThrough(b *testing.B, c *client.Client, function string, payload []byte, n int) time.Duration {
	t0 := time.Now()
	got := 0
	for _, err := range c.Job(context.Background(), function, client.Repeat(payload, n)) {
		if err != nil {
			b.Fatal(err)
		}
		got++
	}
	if got != n {
		b.Fatalf("%d replies, want %d", got, n)
	}
	return time.Since(t0)
}

// BenchmarkJob reports the throughput of a Job through palm's standalone
// server beside raw gRPC stream echo, one message per Send and 64 per Send,
// for 100 B and 10 KiB payloads. One op is one message through each of the
// three.
func BenchmarkJob(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"100B", 100}, {"10KiB", 10 << 10}} {
		b.Run(size.name, func(b *testing.B) {
			raw := startRaw(b)
			c := startPalm(b)
			payload := make([]byte, size.n)
			// Warm up.
			rawStream(b, raw, payload, 1000, 1)
			palmJob(b, c, payload, 1000)
			b.ResetTimer()
			tRaw := rawStream(b, raw, payload, b.N, 1)
			tPacked := rawStream(b, raw, payload, b.N, 64)
			tPalm := palmJob(b, c, payload, b.N)
			b.StopTimer()
			rate := func(d time.Duration) float64 { return float64(b.N) / d.Seconds() }
			b.ReportMetric(rate(tRaw), "raw-msg/s")
			b.ReportMetric(rate(tPacked), "raw64-msg/s")
			b.ReportMetric(rate(tPalm), "palm-msg/s")
			b.ReportMetric(rate(tPalm)/rate(tRaw), "palm/raw")
			b.ReportMetric(rate(tPalm)/rate(tPacked), "palm/raw64")
		})
	}
}
