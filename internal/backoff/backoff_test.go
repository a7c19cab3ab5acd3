package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelaysDoubleToMaxWithJitter(t *testing.T) {
	b := New(100*time.Millisecond, 450*time.Millisecond)
	for i, delay := range []time.Duration{100, 200, 400, 450, 450} {
		delay *= time.Millisecond
		wait := b.Fail()
		if wait < delay/2 || wait > delay {
			t.Errorf("failure %d: wait %v; want within [%v, %v]", i+1, wait, delay/2, delay)
		}
		if b.Failures() != i+1 {
			t.Errorf("failure %d: Failures() = %d", i+1, b.Failures())
		}
	}
	b.Reset()
	if b.Failures() != 0 {
		t.Errorf("Failures() = %d after Reset; want 0", b.Failures())
	}
	for range 100 {
		if w := b.Wait(); w < 50*time.Millisecond || w > 100*time.Millisecond {
			t.Fatalf("Wait after Reset = %v; want within [50ms, 100ms]", w)
		}
	}
	if b.Failures() != 0 {
		t.Errorf("Wait counted a failure")
	}
}

func TestJitterSpreads(t *testing.T) {
	b := New(time.Second, time.Second)
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[b.Wait()] = true
	}
	if len(seen) < 10 {
		t.Errorf("50 waits took %d values; want them spread", len(seen))
	}
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Error("Sleep with a live context reported it ended")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) {
		t.Error("Sleep with an ended context reported the wait passed")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Sleep with an ended context took %v", d)
	}
}
