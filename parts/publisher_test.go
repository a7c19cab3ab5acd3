package parts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

func serveTopics(t *testing.T, p *Topics) palmv1.PublisherServiceClient {
	t.Helper()
	l := bufconn.Listen(1 << 20)
	s := grpc.NewServer()
	palmv1.RegisterPublisherServiceServer(s, p)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return palmv1.NewPublisherServiceClient(cc)
}

// Subscribe, wait for the confirmation, publish at once: nothing is missed.
func TestSubscribeThenPublish(t *testing.T) {
	p := NewTopics(4, nil)
	c := serveTopics(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for round := range 200 {
		sub, err := c.Subscribe(ctx, &palmv1.SubscribeRequest{Topics: []string{"a", "b"}})
		if err != nil {
			t.Fatal(err)
		}
		first, err := sub.Recv()
		if err != nil || !first.Subscribed {
			t.Fatalf("confirmation: %v %v", first, err)
		}
		p.Publish(ctx, "a", &palmv1.PalmMessage{Payload: []byte(fmt.Sprint(round))})
		p.Publish(ctx, "c", &palmv1.PalmMessage{Payload: []byte("not mine")})
		p.Publish(ctx, "b", &palmv1.PalmMessage{Payload: []byte("b")})
		var got []string
		for len(got) < 2 {
			resp, err := sub.Recv()
			if err != nil {
				t.Fatal(err)
			}
			for _, pub := range resp.Publications {
				got = append(got, pub.Topic+":"+string(pub.Message.Payload))
			}
		}
		if got[0] != fmt.Sprint("a:", round) || got[1] != "b:b" {
			t.Fatalf("round %d: %v", round, got)
		}
	}
	if p.droppedCount() != 200 {
		t.Fatalf("dropped %d; want the 200 messages nobody subscribed to", p.droppedCount())
	}
}

// A subscriber that does not read makes the publisher wait once its queue
// (and the stream's buffers) are full: nothing is dropped.
func TestSlowSubscriberBackpressure(t *testing.T) {
	p := NewTopics(2, nil)
	c := serveTopics(t, p)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := c.Subscribe(ctx, &palmv1.SubscribeRequest{Topics: []string{"t"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Recv(); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 64<<10)
	published := 0
	for ; published < 1000; published++ {
		short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
		err := p.Publish(short, "t", &palmv1.PalmMessage{Payload: big})
		stop()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
	}
	if published == 1000 {
		t.Fatal("the publisher never waited for a subscriber that does not read")
	}
	// Reading now gets every message published, in order.
	for got := 0; got < published; {
		resp, err := sub.Recv()
		if err != nil {
			t.Fatal(err)
		}
		got += len(resp.Publications)
	}
}

func TestSubscribeBadTopics(t *testing.T) {
	c := serveTopics(t, NewTopics(0, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	many := make([]string, MaxTopics+1)
	for i := range many {
		many[i] = fmt.Sprint(i)
	}
	for _, topics := range [][]string{nil, {""}, many} {
		sub, err := c.Subscribe(ctx, &palmv1.SubscribeRequest{Topics: topics})
		if err == nil {
			_, err = sub.Recv()
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%d topics: %v", len(topics), err)
		}
	}
}

// The confirmation counts what was published under each topic before it,
// whoever received it, and names the publisher's run.
func TestConfirmationCounts(t *testing.T) {
	p := NewTopics(4, nil)
	c := serveTopics(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	confirm := func(topics ...string) (*palmv1.SubscribeResponse, palmv1.PublisherService_SubscribeClient, context.CancelFunc) {
		sctx, stop := context.WithCancel(ctx)
		sub, err := c.Subscribe(sctx, &palmv1.SubscribeRequest{Topics: topics})
		if err != nil {
			t.Fatal(err)
		}
		first, err := sub.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return first, sub, stop
	}
	first, _, stop := confirm("a")
	if first.Instance != p.instanceID() || first.Instance == "" || first.Published["a"] != 0 {
		t.Fatalf("first confirmation %v", first)
	}
	for range 2 {
		p.Publish(ctx, "a", &palmv1.PalmMessage{})
	}
	stop()
	for p.Subscribers() != 0 {
		time.Sleep(time.Millisecond)
	}
	for range 3 {
		p.Publish(ctx, "a", &palmv1.PalmMessage{})
	}
	p.Publish(ctx, "b", &palmv1.PalmMessage{})
	again, _, stop := confirm("a", "b", "c")
	defer stop()
	if again.Instance != first.Instance || again.Published["a"] != 5 || again.Published["b"] != 1 || again.Published["c"] != 0 {
		t.Fatalf("second confirmation %v", again)
	}
	// Nobody heard b, nor the three under a, nor (most likely) the two
	// queued for the first subscriber when it left: at least 4 dropped.
	if d := p.droppedCount(); d < 4 || d > 6 {
		t.Errorf("Dropped() = %d, want 4 to 6", d)
	}
}

// The record of what may be in the transport to a subscriber keeps the
// last publications within its limit in bytes (payload and overhead each),
// however many they are, oldest first.
func TestTransitKeepsTheLastWindow(t *testing.T) {
	tr := transit{limit: 10 * (100 + transitOverhead)}
	for i := range 25_000 {
		tr.add(queued{pub: &palmv1.Publication{Topic: fmt.Sprint(i), Message: &palmv1.PalmMessage{Payload: make([]byte, 100)}}, fate: &fate{}})
	}
	tr.add(queued{pub: &palmv1.Publication{Topic: "no loss"}}) // nothing to tell: not kept
	got := tr.take()
	if len(got) != 10 || got[0].topic != "24990" || got[9].topic != "24999" {
		t.Fatalf("kept %d, from %q to %q; want the last 10, 24990 to 24999", len(got), got[0].topic, got[len(got)-1].topic)
	}
	if len(tr.take()) != 0 || tr.bytes != 0 {
		t.Errorf("take left something behind")
	}
	// Small messages: many more fit, with no count bound.
	tr.limit = 1 << 20
	for i := range 20_000 {
		tr.add(queued{pub: &palmv1.Publication{Topic: fmt.Sprint(i), Message: &palmv1.PalmMessage{}}, fate: &fate{}})
	}
	if n := len(tr.take()); n != (1<<20)/transitOverhead {
		t.Errorf("kept %d empty publications; want %d, a window of them", n, (1<<20)/transitOverhead)
	}
}
