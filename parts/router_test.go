package parts

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

func TestRegistration(t *testing.T) {
	r := NewRouter(nil)
	noop := PartFunc(func(ctx context.Context, _ *Link) error { <-ctx.Done(); return nil })
	if err := r.Outbound("a", noop, "", 0); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		r.Outbound("a", noop, "", 0),
		r.Inbound("", noop, "a"),
		r.Bypass("b", nil),
		r.Outbound("c", noop, "", -1),
	} {
		if err == nil {
			t.Error("bad registration accepted")
		}
	}
	if err := r.Inbound("in", noop, "nowhere"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r.Run(ctx); !errors.Is(err, ErrUnknownPart) || !strings.Contains(err.Error(), `"nowhere"`) {
		t.Fatalf("Run with a dangling route: %v", err)
	}
}

// Messages flow inbound -> outbound -> outbound along routes, and a part
// that fails stops the router with its error.
func TestRouting(t *testing.T) {
	r := NewRouter(nil)
	got := make(chan string, 10)
	r.Inbound("in", PartFunc(func(ctx context.Context, l *Link) error {
		for _, p := range []string{"a", "b", "c"} {
			if err := l.Send(ctx, Envelope{Msg: &palmv1.PalmMessage{Payload: []byte(p)}}); err != nil {
				return err
			}
		}
		<-ctx.Done()
		return nil
	}), "upper")
	r.Outbound("upper", PartFunc(func(ctx context.Context, l *Link) error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case e := <-l.Inbox():
				e.Msg.Payload = []byte(strings.ToUpper(string(e.Msg.Payload)))
				if err := l.Send(ctx, e); err != nil {
					return err
				}
			}
		}
	}), "out", 1)
	r.Outbound("out", PartFunc(func(ctx context.Context, l *Link) error {
		for i := 0; i < 3; i++ {
			got <- string((<-l.Inbox()).Msg.Payload)
		}
		return errors.New("enough")
	}), "", 1)
	err := r.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), `part "out": enough`) {
		t.Fatalf("Run: %v", err)
	}
	close(got)
	var all []string
	for s := range got {
		all = append(all, s)
	}
	if strings.Join(all, "") != "ABC" {
		t.Fatalf("got %v", all)
	}
}

// A full inbox makes the sender wait: nothing is dropped, nothing grows.
func TestBackpressure(t *testing.T) {
	r := NewRouter(nil)
	result := make(chan error, 1)
	r.Inbound("in", PartFunc(func(ctx context.Context, l *Link) error {
		for i := 0; i < 2; i++ {
			if err := l.Send(ctx, Envelope{}); err != nil {
				result <- err
				return nil
			}
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		result <- l.Send(short, Envelope{})
		<-ctx.Done()
		return nil
	}), "stuck")
	r.Outbound("stuck", PartFunc(func(ctx context.Context, l *Link) error { <-ctx.Done(); return nil }), "", 2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	if err := <-result; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third send into a full inbox of 2: %v; want it to wait", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
