package parts

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
)

// confirmingStream is a PublisherService_SubscribeServer with no network
// under it. When Topics sends it the confirmation, it calls onConfirm
// before Send returns: the earliest moment a subscriber can act on the
// confirmation, with no round trip to hide a gap. It records every
// publication sent to it after that.
type confirmingStream struct {
	grpc.ServerStream // nil: Topics calls only Context and Send
	ctx               context.Context
	onConfirm         func(confirm *palmv1.SubscribeResponse)

	confirmed bool
	got       []*palmv1.Publication
}

func (s *confirmingStream) Context() context.Context { return s.ctx }

func (s *confirmingStream) Send(resp *palmv1.SubscribeResponse) error {
	if resp.GetSubscribed() {
		if s.confirmed {
			return errors.New("a second confirmation")
		}
		s.confirmed = true
		s.onConfirm(resp)
		return nil
	}
	if !s.confirmed {
		return errors.New("a publication before the confirmation")
	}
	// Topics reuses its response: keep the publications, not the slice.
	s.got = append(s.got, resp.GetPublications()...)
	return nil
}

// The promise of Topics: a subscription is registered before its
// confirmation is sent, so a message published the moment the confirmation
// arrives (here from inside the confirmation's Send, before it returns)
// reaches the subscriber; one published before the subscription does not,
// and is counted in the confirmation instead.
//
// The test is deterministic: it starts no goroutine and waits for nothing.
// Closing the publisher inside the same Send makes Subscribe return once it
// has sent what is queued for the subscriber, and nothing else.
func TestConfirmationAfterRegistration(t *testing.T) {
	p := NewTopics(4, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Publish(ctx, "t", &palmv1.PalmMessage{Payload: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	var published map[string]uint64
	stream := &confirmingStream{ctx: ctx, onConfirm: func(confirm *palmv1.SubscribeResponse) {
		published = confirm.GetPublished()
		if err := p.Publish(ctx, "t", &palmv1.PalmMessage{Payload: []byte("at the confirmation")}); err != nil {
			t.Errorf("Publish from inside the confirmation's Send: %v", err)
		}
		p.Close()
	}}
	err := p.Subscribe(&palmv1.SubscribeRequest{Subscriber: "s", Topics: []string{"t"}}, stream)
	if status.Code(err) != codes.Unavailable {
		t.Errorf("Subscribe ended with %v; want Unavailable, for the publisher closed", err)
	}
	if !stream.confirmed {
		t.Fatal("no confirmation was sent")
	}
	if published["t"] != 1 {
		t.Errorf("the confirmation counts %d messages under t; want 1, the one published before the subscription", published["t"])
	}
	var got []string
	for _, pub := range stream.got {
		got = append(got, pub.GetTopic()+":"+string(pub.GetMessage().GetPayload()))
	}
	if len(got) != 1 || got[0] != "t:at the confirmation" {
		t.Fatalf("the subscriber received %q; want only the message published when its confirmation arrived (the subscription was not registered before its confirmation was sent)", got)
	}
	if p.droppedCount() != 1 {
		t.Errorf("dropped %d; want 1, the message published before anyone subscribed", p.droppedCount())
	}
	if p.Subscribers() != 0 || p.queuedCount() != 0 {
		t.Errorf("after Subscribe returned: %d subscribers, %d queued; want none", p.Subscribers(), p.queuedCount())
	}
}
