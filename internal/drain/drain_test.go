package drain

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestEnterRefusedOnceDraining(t *testing.T) {
	g := New()
	if !g.Enter() {
		t.Fatal("Enter on an open gate refused")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := g.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain while holding one = %v; want DeadlineExceeded", err)
	}
	if g.Enter() {
		t.Fatal("Enter on a draining gate was taken")
	}
	if g.Held() != 1 {
		t.Fatalf("Held = %d after a refused Enter; want 1", g.Held())
	}
	select {
	case <-g.Idle():
		t.Fatal("Idle is ready while work is held")
	default:
	}
	g.Leave(1)
	select {
	case <-g.Idle():
	case <-time.After(5 * time.Second):
		t.Fatal("Idle not ready once the last work left")
	}
	if err := g.Drain(context.Background()); err != nil {
		t.Fatalf("Drain of an idle gate = %v", err)
	}
}

func TestDrainOfAnEmptyGate(t *testing.T) {
	g := New()
	if g.Draining() {
		t.Fatal("a new gate is draining")
	}
	if err := g.Drain(context.Background()); err != nil {
		t.Fatalf("Drain = %v", err)
	}
	if !g.Draining() {
		t.Fatal("not draining after Drain")
	}
}

func TestHoldCountsWhileDraining(t *testing.T) {
	g := New()
	g.Hold(2)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := g.Drain(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("Drain with an ended context = %v; want Canceled", err)
	}
	g.Hold(1) // taken before the component could refuse it
	g.Leave(2)
	g.Leave(0) // nothing: no change
	select {
	case <-g.Idle():
		t.Fatal("Idle is ready with one still held")
	default:
	}
	g.Leave(1)
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if err := g.Drain(ctx); err != nil {
		t.Fatalf("Drain once nothing is held = %v", err)
	}
}

// Work entering while the gate closes is either refused or waited for.
func TestDrainRacesEnter(t *testing.T) {
	for range 50 {
		g := New()
		var wg sync.WaitGroup
		var mu sync.Mutex
		taken := 0
		for range 8 {
			wg.Go(func() {
				for range 100 {
					if g.Enter() {
						mu.Lock()
						taken++
						mu.Unlock()
						g.Leave(1)
					}
				}
			})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := g.Drain(ctx); err != nil {
			t.Fatalf("Drain = %v", err)
		}
		cancel()
		if g.Enter() {
			t.Fatal("Enter taken after Drain returned")
		}
		wg.Wait()
		if g.Held() != 0 {
			t.Fatalf("Held = %d at the end; want 0", g.Held())
		}
	}
}
