package parts

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/caller"
)

// serveAs serves p with the caller named by the metadata "who" (callers
// named "stage-..." may read any stream, others are clients), as the
// authentication interceptor of internal/server would.
func serveAs(t *testing.T, p *Topics) palmv1.PublisherServiceClient {
	t.Helper()
	l := bufconn.Listen(1 << 20)
	s := grpc.NewServer(grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		md, _ := metadata.FromIncomingContext(ss.Context())
		who := md.Get("who")[0]
		perm := caller.UseSubscribe
		if len(who) > 6 && who[:6] == "stage-" {
			perm |= caller.UseStream
		}
		return h(srv, &withCtx{ss, caller.With(ss.Context(), caller.Caller{ID: who, Perm: perm})})
	}))
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

type withCtx struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *withCtx) Context() context.Context { return w.ctx }

func subscribeWho(ctx context.Context, c palmv1.PublisherServiceClient, who string, topics ...string) (palmv1.PublisherService_SubscribeClient, error) {
	sub, err := c.Subscribe(metadata.AppendToOutgoingContext(ctx, "who", who), &palmv1.SubscribeRequest{Topics: topics})
	if err != nil {
		return nil, err
	}
	if _, err := sub.Recv(); err != nil {
		return nil, err
	}
	return sub, nil
}

// A client-only subscriber gets only its own replies under the topics it
// claimed; a client id is its first subscriber's; the component's own name
// is for stages.
func TestIsolationRules(t *testing.T) {
	p := NewTopicsWith(TopicsConfig{Name: "server"})
	c := serveAs(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := subscribeWho(ctx, c, "bob", "server"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a client subscribing to the component's name: %v; want PermissionDenied", err)
	}
	stage, err := subscribeWho(ctx, c, "stage-1", "server", "alice")
	if err != nil {
		t.Fatalf("a stage: %v", err)
	}
	alice, err := subscribeWho(ctx, c, "alice", "alice")
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	if _, err := subscribeWho(ctx, c, "bob", "bob", "alice"); status.Code(err) != codes.PermissionDenied {
		t.Errorf("bob claiming alice's id: %v; want PermissionDenied", err)
	}
	// Bob's refused subscription claimed nothing: his id is still free.
	if _, err := subscribeWho(ctx, c, "carol", "bob"); err != nil {
		t.Errorf("carol taking the id bob failed to claim: %v", err)
	}

	// Under alice's topic, a message of another client reaches the stage,
	// not alice; hers reach both.
	p.Publish(ctx, "alice", &palmv1.PalmMessage{Client: "mallory", Payload: []byte("not for alice")})
	p.Publish(ctx, "alice", &palmv1.PalmMessage{Client: "alice", Payload: []byte("for alice")})
	resp, err := alice.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetPublications(); len(got) != 1 || string(got[0].GetMessage().GetPayload()) != "for alice" {
		t.Fatalf("alice received %v; want only her own message", got)
	}
	var seen []string
	for len(seen) < 2 {
		resp, err := stage.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, pub := range resp.GetPublications() {
			seen = append(seen, string(pub.GetMessage().GetPayload()))
		}
	}
	if seen[0] != "not for alice" || seen[1] != "for alice" {
		t.Fatalf("the stage received %q", seen)
	}
}

// A claim lasts while a subscription uses it and ClaimIdle after, then
// anyone may take the id; past the bound, new claims are refused.
func TestClaims(t *testing.T) {
	now := time.Now()
	c := claims{max: 2, idle: time.Minute, by: map[string]*claim{}}
	if err := c.take("alice", []string{"a"}, now); err != nil {
		t.Fatal(err)
	}
	if err := c.take("bob", []string{"a"}, now); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("bob taking a: %v", err)
	}
	c.give([]string{"a"}, now)
	if err := c.take("bob", []string{"a"}, now.Add(59*time.Second)); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("bob taking a before it is idle for long: %v", err)
	}
	if err := c.take("alice", []string{"a"}, now.Add(59*time.Second)); err != nil {
		t.Fatalf("alice taking a again: %v", err)
	}
	c.give([]string{"a"}, now.Add(time.Minute))
	if err := c.take("bob", []string{"b", "c"}, now.Add(90*time.Second)); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("over the bound: %v", err)
	}
	if err := c.take("bob", []string{"a", "b"}, now.Add(2*time.Minute)); err != nil {
		t.Fatalf("bob taking a once idle: %v", err)
	}
	if err := c.take("carol", []string{"c"}, now.Add(2*time.Minute)); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("the bound holds: %v", err)
	}
}
