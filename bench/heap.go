package main

import (
	"context"
	"fmt"
	"io"
	"runtime/metrics"
	"time"
)

// The heap section: a long Job through a master whose two workers are
// slower than the client, so that messages wait in the master, and the peak
// heap of the whole process meanwhile against the bound.
const (
	heapShape    = "palm master + 2 slow workers"
	heapBoundMiB = 64
	// heapEvery is how often the heap is sampled.
	heapEvery = 2 * time.Millisecond
)

// spin is the little work each slow worker does per task, so that the
// workers are the bottleneck.
func spin() {
	for t := time.Now(); time.Since(t) < 3*time.Microsecond; {
	}
}

// heapInUse returns the bytes of the heap's spans in use, as
// runtime.MemStats.HeapInuse counts them (live and not yet swept objects,
// and the free space in their spans), without stopping the world.
func heapInUse() uint64 {
	m := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(m)
	return m[0].Value.Uint64() + m[1].Value.Uint64()
}

// runHeap sends cfg.heapN messages of 100 B in one Job, cfg.heapRuns times,
// sampling the heap every heapEvery, and returns a peak-MiB row and a
// msg/s row.
func runHeap(ctx context.Context, cfg config) ([]row, error) {
	sh := []shape{{heapShape, func() (*system, error) { return startMaster(2, 1, spin) }}}
	payload := makePayload(100)
	peak := row{shape: heapShape, payload: "100 B", metric: "peak heap MiB"}
	rate := row{shape: heapShape, payload: "100 B", metric: "msg/s"}
	move := func(s *system, n int) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
		defer cancel()
		return s.move(ctx, payload, n)
	}
	err := interleave(sh, cfg.heapRuns,
		func(_ int, s *system) error { _, err := move(s, warmOf(cfg.heapN)); return err },
		func(_ int, s *system) error {
			stop, top := make(chan struct{}), make(chan uint64)
			go func() {
				high := heapInUse()
				tick := time.NewTicker(heapEvery)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						top <- max(high, heapInUse())
						return
					case <-tick.C:
						high = max(high, heapInUse())
					}
				}
			}()
			d, err := move(s, cfg.heapN)
			close(stop)
			high := <-top
			if err != nil {
				return err
			}
			peak.values = append(peak.values, float64(high)/(1<<20))
			rate.values = append(rate.values, float64(cfg.heapN)/d.Seconds())
			return nil
		})
	if err != nil {
		return nil, err
	}
	return []row{peak, rate}, nil
}

// printHeap writes the peak heap against the bound, and the Job's rate.
func printHeap(w io.Writer, rows []row, cfg config) {
	t := newTable(w, "shape", "payload", "messages", "min peak MiB", "median peak MiB", "max peak MiB", "vs bound", "median msg/s", "goal")
	peak, rate := find(rows, heapShape, "100 B", "peak heap MiB"), find(rows, heapShape, "100 B", "msg/s")
	if peak == nil || rate == nil {
		return
	}
	bound := row{values: []float64{heapBoundMiB}}
	t.line(append(append([]string{heapShape, peak.payload, fmt.Sprint(cfg.heapN)}, mmm(*peak, "%.1f")...),
		ratio(peak, &bound), fmt.Sprintf("%.0f", rate.median()), fmt.Sprintf("≤ %d MiB", heapBoundMiB))...)
	t.flush()
}
