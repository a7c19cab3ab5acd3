package parts

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
)

// told collects the losses PublishTold reports.
type told struct {
	mu   sync.Mutex
	errs []error
}

func (k *told) loss(_ context.Context, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.errs = append(k.errs, err)
}

func (k *told) count() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.errs)
}

// A message with no subscriber is told lost at once; one queued for a
// subscription that ends is told when it ends; one another subscriber of
// the topic took is not told when one of them loses it.
func TestLossIsTold(t *testing.T) {
	p := NewTopics(8, nil)
	c := serveTopics(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m := &palmv1.PalmMessage{Payload: []byte("x")}

	var none told
	p.PublishTold(ctx, "nobody", m, none.loss)
	if none.count() != 1 || status.Code(none.errs[0]) != codes.DataLoss {
		t.Fatalf("no subscriber: told %v; want one DataLoss", none.errs)
	}

	subCtx, leave := context.WithCancel(ctx)
	sub, err := c.Subscribe(subCtx, &palmv1.SubscribeRequest{Topics: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Recv(); err != nil {
		t.Fatal(err)
	}
	keep, err := c.Subscribe(ctx, &palmv1.SubscribeRequest{Topics: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keep.Recv(); err != nil {
		t.Fatal(err)
	}
	tee, err := c.Subscribe(subCtx, &palmv1.SubscribeRequest{Topics: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tee.Recv(); err != nil {
		t.Fatal(err)
	}
	var alone, shared told
	for range 3 {
		p.PublishTold(ctx, "a", m, alone.loss)
		p.PublishTold(ctx, "b", m, shared.loss)
	}
	for got := 0; got < 3; {
		resp, err := keep.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got += len(resp.GetPublications())
	}
	leave() // the subscriber of a, and one of b's two, go away unread
	palmtest.Eventually(t, 5*time.Second, "the subscriptions ended", func() bool { return p.Subscribers() == 1 })
	if alone.count() != 3 {
		t.Fatalf("a subscription that ended held 3 messages nobody else took; told %d", alone.count())
	}
	for _, err := range alone.errs {
		if status.Code(err) != codes.DataLoss {
			t.Fatalf("told %v; want DataLoss", err)
		}
	}
	if shared.count() != 0 {
		t.Fatalf("messages another subscriber received were told lost: %v", shared.errs)
	}
}
