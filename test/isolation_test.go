package test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/pipeline"
)

const (
	aliceToken = "alice-token-0123456789"
	bobToken   = "bob-token-0123456789ab"
	stageToken = "stage-token-0123456789"
)

// subscribeAs opens a raw subscription to topic at addr with token and
// returns it once confirmed, or the error that refused it.
func subscribeAs(t *testing.T, ctx context.Context, ca *palmtest.CA, addr, token, topic string) (palmv1.PublisherService_SubscribeClient, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, dialTLS(t, ca, palm.WithToken(token))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	sub, err := palmv1.NewPublisherServiceClient(conn).Subscribe(ctx, &palmv1.SubscribeRequest{Topics: []string{topic}, Subscriber: "test"})
	if err != nil {
		return nil, err
	}
	first, err := sub.Recv()
	if err != nil {
		return nil, err
	}
	if !first.GetSubscribed() {
		t.Fatalf("subscription to %q: the first response is not the confirmation", topic)
	}
	return sub, nil
}

// A second client's token reads nothing of another client's: not the
// pipelined server's published stream, not the other client's replies at
// the last stage, not the stage's own name there; stages and the client
// itself go on as before.
func TestIsolationSecondClient(t *testing.T) {
	ca := palmtest.NewCA(t, "palm")
	cert, key, _ := ca.Issue(t, "127.0.0.1")
	both := tlsOption(t, palm.TLSFiles{CACert: ca.File, Cert: cert, Key: key})
	tokens := palm.WithTokens(map[string]palm.Permission{aliceToken: palm.ClientRole, bobToken: palm.ClientRole, stageToken: palm.StageRole})

	srv, err := pipeline.NewServer("server", quietLog(t), tokens, both, pipeline.Pipelined())
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, p []byte) ([]byte, error) {
		return append([]byte("secret of alice: "), p...), nil
	})
	first := palmtest.ServeTCP(t, srv)
	last, err := pipeline.NewPipeline("last", pipeline.Upstream{Address: first, Topic: "server"}, quietLog(t), tokens, both, palm.WithToken(stageToken))
	if err != nil {
		t.Fatal(err)
	}
	last.HandleFunc("foo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
	lastAddr := palmtest.ServeTCP(t, last)
	palmtest.Eventually(t, 10*time.Second, "the stage subscribed", func() bool { return last.Subscribed() == 1 })

	ctx := shortCtx(t, 60*time.Second)
	// Bob may not read the server's published stream.
	_, err = subscribeAs(t, ctx, ca, first, bobToken, "server")
	wantStatus(t, "a client token subscribing to the server's published topic", err, codes.PermissionDenied, "only stages")
	// A stage token may: it sees Alice's messages, and her client id.
	watch, err := subscribeAs(t, ctx, ca, first, stageToken, "server")
	if err != nil {
		t.Fatalf("a stage token subscribing to the server's topic: %v", err)
	}

	alice, err := client.New("server", first, quietLog(t), both, palm.WithToken(aliceToken), client.SubAddress(lastAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	results := 0
	for reply, err := range alice.Job(ctx, "server.foo last.foo", numbered("", 100)) {
		if err != nil {
			t.Fatalf("alice's job: %v", err)
		}
		if !strings.HasPrefix(string(reply), "secret of alice: ") {
			t.Fatalf("alice's reply %q", reply)
		}
		results++
	}
	if results != 100 {
		t.Fatalf("alice had %d results; want 100", results)
	}
	resp, err := watch.Recv()
	if err != nil || len(resp.GetPublications()) == 0 {
		t.Fatalf("the stage token's subscription: %v, %v", resp, err)
	}
	aliceID := resp.GetPublications()[0].GetMessage().GetClient()

	// Bob may not claim Alice's client id at the last stage, even now that
	// her job is over, nor read the stage's own stream there.
	_, err = subscribeAs(t, ctx, ca, lastAddr, bobToken, aliceID)
	wantStatus(t, "a client token subscribing to another client's id", err, codes.PermissionDenied, "belongs to another caller")
	_, err = subscribeAs(t, ctx, ca, lastAddr, bobToken, "last")
	wantStatus(t, "a client token subscribing to the stage's own name", err, codes.PermissionDenied, "only stages")
	// Alice may come back to hers, and Bob may have his own.
	if _, err := subscribeAs(t, ctx, ca, lastAddr, aliceToken, aliceID); err != nil {
		t.Errorf("alice subscribing again to her client id: %v", err)
	}
	if _, err := subscribeAs(t, ctx, ca, lastAddr, bobToken, "bob-"+aliceID); err != nil {
		t.Errorf("bob subscribing to a client id of his own: %v", err)
	}
}
