package main

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain checks that every shape, once stopped, leaves no goroutine
// behind: a shape's stop must end all it started.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestEveryShape runs every section once with the -quick counts, so that
// the benchmark keeps building and every shape keeps moving all its
// messages: a shape that fails, hangs past its bound or loses a message
// fails the test, and so does one that stops producing its figures.
func TestEveryShape(t *testing.T) {
	cfg := quick()
	// The figures each section must produce: one row per shape and metric.
	want := map[string]int{
		"throughput": len(throughputShapes) * 2,
		"scaling":    len(scales) * 2,
		"large":      len(largeShapes) * len(cfg.large) * 2,
		"latency":    len(latencyShapes) * 2,
		"counters":   len(counterShapes) * len(counterKinds),
		"heap":       2,
		"pipelines":  len(evalShapes) + len(jobShapes),
	}
	if len(want) != len(sections) {
		t.Fatalf("the test knows %d sections, the benchmark has %d", len(want), len(sections))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, s := range sections {
		t.Run(s.name, func(t *testing.T) {
			rows, err := s.run(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != want[s.name] {
				t.Errorf("%d rows, want %d", len(rows), want[s.name])
			}
			for _, r := range rows {
				checkRow(t, r, cfg)
			}
			var out bytes.Buffer
			s.print(&out, rows, cfg)
			table := out.String()
			if !strings.HasPrefix(strings.TrimSpace(table), "shape") {
				t.Errorf("table does not start with its header:\n%s", table)
			}
			for _, r := range rows {
				if !strings.Contains(table, r.shape) {
					t.Errorf("table lacks %q:\n%s", r.shape, table)
				}
			}
			t.Logf("\n%s", table)
		})
	}
}

// checkRow fails t unless r has one finite figure per run, positive unless
// it may be 0; a counter this machine cannot read may be n/a.
func checkRow(t *testing.T, r row, cfg config) {
	t.Helper()
	if r.na {
		if r.metric != "read+write syscalls/msg" && r.metric != "goroutines created/msg" {
			t.Errorf("%s %s at %s is n/a; only the syscall and goroutine counters may be", r.shape, r.metric, r.payload)
		}
		return
	}
	runs := cfg.runs
	if r.shape == heapShape {
		runs = cfg.heapRuns
	}
	if len(r.values) != runs {
		t.Errorf("%s %s at %s: %d figures, want %d", r.shape, r.metric, r.payload, len(r.values), runs)
	}
	for _, v := range r.values {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || (v == 0 && !r.zeroOK) {
			t.Errorf("%s %s at %s: figure %v, want a positive one", r.shape, r.metric, r.payload, v)
		}
	}
}

// TestSelectSections checks -only: names pick sections in the benchmark's
// order, and an unknown name is refused with the list of names.
func TestSelectSections(t *testing.T) {
	got, err := selectSections("latency, throughput")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].name != "throughput" || got[1].name != "latency" {
		t.Errorf("picked %v, want throughput then latency", got)
	}
	if all, err := selectSections(""); err != nil || len(all) != len(sections) {
		t.Errorf("empty -only picked %d sections (%v), want all %d", len(all), err, len(sections))
	}
	if _, err := selectSections("throughput,nope"); err == nil || !strings.Contains(err.Error(), "pipelines") {
		t.Errorf("unknown section: error %v, want one listing the sections", err)
	}
}

// TestPercentile checks the nearest-rank percentile the latency table uses.
func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Microsecond)
	}
	for _, c := range []struct{ q, want float64 }{{.5, 50}, {.99, 99}, {1, 100}, {0, 1}} {
		if got := percentile(lat, c.q); got != c.want {
			t.Errorf("percentile(1..100 µs, %v) = %v µs, want %v", c.q, got, c.want)
		}
	}
}
