package test

// Benchmarks of the master with two workers beside raw gRPC, measured in
// the same run:
//
//	go test -run '^$' -bench Master -benchtime 50000x ./test/
//
// Issue targets, as ratios in one run: Job throughput through the master at
// 100 B at least 1.5x the raw single-stream echo, at 10 KiB at least 0.9x;
// Eval p50 through the master at most 2.2x the raw stream ping-pong p50.

import (
	"context"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/rawecho"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/worker"
)

// startMasterCluster serves a master named bench with two in-process
// workers serving echo (after work, when given) on loopback TCP, and returns
// a client for it.
func startMasterCluster(b *testing.B, work func()) (*client.Client, *master.Master) {
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
	wctx, stopWorkers := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, name := range []string{"w1", "w2"} {
		w, err := worker.New(name, lis.Addr().String(), quiet)
		if err != nil {
			b.Fatal(err)
		}
		w.HandleFunc("echo", func(_ context.Context, p []byte) ([]byte, error) {
			if work != nil {
				work()
			}
			return p, nil
		})
		wg.Go(func() { w.Run(wctx) })
	}
	b.Cleanup(func() {
		stopWorkers()
		wg.Wait()
		cancel()
		if err := <-served; err != nil {
			b.Error(err)
		}
	})
	for m.Workers() < 2 {
		runtime.Gosched()
	}
	c, err := client.New("bench", lis.Addr().String(), quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c, m
}

// rawPingPong measures n round trips over one raw stream, one message in
// flight at a time.
func rawPingPong(b *testing.B, raw palmv1.GatewayServiceClient, payload []byte, n int) []time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := raw.Stream(ctx)
	if err != nil {
		b.Fatal(err)
	}
	req := &palmv1.StreamRequest{Messages: []*palmv1.PalmMessage{{Client: rawecho.Client, Pipeline: rawecho.Pipeline, Function: "bench.echo", Payload: payload, Sequence: 1}}}
	lat := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if err := s.Send(req); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Recv(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	return lat
}

// BenchmarkMasterEval reports Eval latency through a master and two workers
// beside raw stream ping-pong, interleaved in chunks.
func BenchmarkMasterEval(b *testing.B) {
	raw := startRaw(b)
	c, _ := startMasterCluster(b, nil)
	ctx := context.Background()
	payload := make([]byte, 100)
	for range 200 {
		c.Eval(ctx, "bench.echo", payload)
	}
	rawPingPong(b, raw, payload, 200)
	var rawLat, palmLat []time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += 100 {
		n := min(100, b.N-done)
		rawLat = append(rawLat, rawPingPong(b, raw, payload, n)...)
		for range n {
			t0 := time.Now()
			if _, err := c.Eval(ctx, "bench.echo", payload); err != nil {
				b.Fatal(err)
			}
			palmLat = append(palmLat, time.Since(t0))
		}
	}
	b.StopTimer()
	rp50, pp50 := percentile(rawLat, .5), percentile(palmLat, .5)
	b.ReportMetric(rp50, "raw-pingpong-p50-µs")
	b.ReportMetric(percentile(rawLat, .99), "raw-pingpong-p99-µs")
	b.ReportMetric(pp50, "master-p50-µs")
	b.ReportMetric(percentile(palmLat, .99), "master-p99-µs")
	b.ReportMetric(pp50/rp50, "p50-master/raw")
}

// BenchmarkMasterJob reports Job throughput through a master and two
// workers beside raw single-stream echo (one message per Send), at 100 B,
// 10 KiB and 1 MiB, and the bytes each allocates per message (the whole
// process: client, master and workers, or both ends of the raw stream).
// One op is one message through each.
func BenchmarkMasterJob(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"100B", 100}, {"10KiB", 10 << 10}, {"1MiB", 1 << 20}} {
		b.Run(size.name, func(b *testing.B) {
			raw := startRaw(b)
			c, _ := startMasterCluster(b, nil)
			payload := make([]byte, size.n)
			warm := max(1, min(1000, (64<<20)/size.n))
			rawStream(b, raw, payload, warm, 1)
			palmJob(b, c, payload, warm)
			b.ResetTimer()
			tRaw, aRaw, _ := allocated(func() time.Duration { return rawStream(b, raw, payload, b.N, 1) })
			tPalm, aPalm, nPalm := allocated(func() time.Duration { return palmJob(b, c, payload, b.N) })
			b.StopTimer()
			rate := func(d time.Duration) float64 { return float64(b.N) / d.Seconds() }
			b.ReportMetric(rate(tRaw), "raw-msg/s")
			b.ReportMetric(rate(tPalm), "master-msg/s")
			b.ReportMetric(rate(tPalm)/rate(tRaw), "master/raw")
			b.ReportMetric(float64(aRaw)/float64(b.N), "raw-B/msg")
			b.ReportMetric(float64(aPalm)/float64(b.N), "master-B/msg")
			b.ReportMetric(float64(nPalm)/float64(b.N), "master-allocs/msg")
		})
	}
}

// allocated runs f and returns what it returns, and the bytes and the
// objects the process allocated meanwhile.
func allocated(f func() time.Duration) (time.Duration, uint64, uint64) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d := f()
	runtime.ReadMemStats(&after)
	return d, after.TotalAlloc - before.TotalAlloc, after.Mallocs - before.Mallocs
}

// BenchmarkMasterHeap sends a 1,000,000-message job of 100 B payloads
// through a master whose workers are slower than the client, and reports
// the peak heap of the process (client, master and workers together: the
// master's own is below it). Run it with -benchtime 1x.
func BenchmarkMasterHeap(b *testing.B) {
	spin := func() { // a little work per task: the workers are the bottleneck
		for t := time.Now(); time.Since(t) < 3*time.Microsecond; {
		}
	}
	c, _ := startMasterCluster(b, spin)
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
			}
		}
	}()
	payload := make([]byte, 100)
	b.ResetTimer()
	for range b.N {
		palmJob(b, c, payload, 1_000_000)
	}
	b.StopTimer()
	close(stop)
	<-sampled
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}
