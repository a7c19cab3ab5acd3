package client

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Evals in flight end with the error of the stream they share when it
// breaks, and the next Eval opens another stream.
func TestEvalsOutliveTheirStream(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	check := verifyNoLeaks(t, c)
	defer func() {
		c.Close() // the second stream ends with the Client
		check()
	}()
	g := ts.gateway
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	slow := make(chan error, 1)
	go func() {
		_, err := c.Eval(ctx, "srv.echo", []byte(payloadSlow))
		slow <- err
	}()
	g.waitFor(t, "the slow Eval", func() bool { return len(g.evals) == 2 }) // the warm-up's and its
	if _, err := c.Eval(ctx, "srv.echo", []byte(payloadCrash)); status.Code(err) != codes.DataLoss {
		t.Fatalf("Eval(crash) = %v; want the stream's DataLoss", err)
	}
	if err := <-slow; status.Code(err) != codes.DataLoss {
		t.Fatalf("the Eval waiting on the broken stream got %v; want DataLoss", err)
	}
	got, err := c.Eval(ctx, "srv.echo", []byte("again"))
	if err != nil || string(got) != "AGAIN" {
		t.Fatalf("Eval after the stream broke = %q, %v; want AGAIN", got, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.opened != 2 {
		t.Errorf("%d streams opened; want 2, the one that broke and the next", g.opened)
	}
}

// A Client's stream of Evals closes when no call has used it for a while,
// and opens again for the next Eval.
func TestIdleEvalStreamCloses(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t)
	c.calls.idle = 50 * time.Millisecond
	g := ts.gateway
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Eval(ctx, "srv.echo", []byte("x")); err != nil {
		t.Fatal(err)
	}
	g.waitFor(t, "the idle stream to close", func() bool { return g.opened == 1 && g.open == 0 })
	if got, err := c.Eval(ctx, "srv.echo", []byte("y")); err != nil || string(got) != "Y" {
		t.Fatalf("Eval after the idle close = %q, %v", got, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.opened != 2 || g.open != 1 {
		t.Errorf("streams opened %d, open %d; want 2 and 1", g.opened, g.open)
	}
}

// An Eval beyond the Window waits for a place, until its context ends;
// places freed by completed calls are taken again.
func TestEvalsWithinTheWindow(t *testing.T) {
	ts := startServer(t)
	c := ts.newClient(t, Window(1))
	g := ts.gateway
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, stop := context.WithCancel(ctx)
	slow := make(chan error, 1)
	go func() {
		_, err := c.Eval(first, "srv.echo", []byte(payloadSlow))
		slow <- err
	}()
	g.waitFor(t, "the slow Eval", func() bool { return len(g.evals) == 1 })
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if _, err := c.Eval(short, "srv.echo", []byte("x")); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("Eval past the window = %v; want DeadlineExceeded", err)
	}
	stop()
	if err := <-slow; status.Code(err) != codes.Canceled {
		t.Fatalf("the slow Eval = %v; want Canceled", err)
	}
	// Its place comes back once the server completes the cancelled call.
	if got, err := c.Eval(ctx, "srv.echo", []byte("z")); err != nil || string(got) != "Z" {
		t.Fatalf("Eval after the cancel = %q, %v; want Z", got, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.evals) != 2 {
		t.Errorf("the server got %d calls; want 2 (the one past the window never left)", len(g.evals))
	}
}
