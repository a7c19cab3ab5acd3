package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestEveryShape runs every shape once at both payloads with a small N, so
// that the benchmark keeps building and every shape keeps moving all its
// messages.
func TestEveryShape(t *testing.T) {
	sizes := []size{{"100 B", 100, 2000}, {"10 KiB", 10 << 10, 2000}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rows, err := run(ctx, config{sizes: sizes, runs: 1, timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(shapes)*len(sizes) {
		t.Fatalf("%d rows, want %d", len(rows), len(shapes)*len(sizes))
	}
	for _, r := range rows {
		if len(r.rates) != 1 || r.rates[0] <= 0 {
			t.Errorf("%s at %s: rates %v, want one positive", r.shape, r.payload, r.rates)
		}
	}
	var out bytes.Buffer
	printTable(&out, rows)
	if got := strings.Count(out.String(), "\n"); got != len(rows)+1 {
		t.Errorf("table has %d lines, want %d:\n%s", got, len(rows)+1, out.String())
	}
	for _, sh := range shapes {
		if !strings.Contains(out.String(), sh.name) {
			t.Errorf("table lacks %q:\n%s", sh.name, out.String())
		}
	}
}
