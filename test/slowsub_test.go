package test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	palmv1 "github.com/gopalm/palm/gen/palm/v1"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/pipeline"
)

// A subscriber that reads its confirmation and then never reads again is
// cut within the slow subscriber bound, counted, and reported by health
// while it is waited on; a 5,000-message job of another client completes.
func TestSlowSubscriberCut(t *testing.T) {
	const bound = 2 * time.Second
	srv, err := pipeline.NewServer("server", quietLog(t), pipeline.Pipelined(), palm.SlowSubscriberTimeout(bound))
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
	first := palmtest.ServeTCP(t, srv)
	last, err := pipeline.NewPipeline("last", pipeline.Upstream{Address: first, Topic: "server"}, quietLog(t))
	if err != nil {
		t.Fatal(err)
	}
	last.HandleFunc("foo", func(_ context.Context, p []byte) ([]byte, error) { return p, nil })
	lastAddr := palmtest.ServeTCP(t, last)
	palmtest.Eventually(t, 10*time.Second, "the stage subscribed", func() bool { return last.Subscribed() == 1 })

	ctx := shortCtx(t, 90*time.Second)
	probe, err := grpc.NewClient(first, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	watch, err := healthpb.NewHealthClient(probe).Watch(ctx, &healthpb.HealthCheckRequest{Service: "palm.v1.PublisherService"})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		health []healthpb.HealthCheckResponse_ServingStatus
	)
	go func() {
		for {
			resp, err := watch.Recv()
			if err != nil {
				return
			}
			mu.Lock()
			health = append(health, resp.GetStatus())
			mu.Unlock()
		}
	}()

	// The stalled subscriber: small HTTP/2 windows, so that the server's
	// sends block soon; it reads the confirmation, then nothing.
	stalledConn, err := grpc.NewClient(first, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer stalledConn.Close()
	stalled, err := palmv1.NewPublisherServiceClient(stalledConn).Subscribe(ctx, &palmv1.SubscribeRequest{Topics: []string{"server"}, Subscriber: "stalled"})
	if err != nil {
		t.Fatal(err)
	}
	if conf, err := stalled.Recv(); err != nil || !conf.GetSubscribed() {
		t.Fatalf("confirmation: %v, %v", conf, err)
	}

	info := palmv1.NewInfoServiceClient(probe)
	cut := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		for ctx.Err() == nil {
			resp, err := info.Info(ctx, &palmv1.InfoRequest{})
			if err == nil && resp.GetCounters()["slow_subscribers_cut"] > 0 {
				cut <- time.Since(start)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	c, err := client.New("server", first, quietLog(t), client.SubAddress(lastAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := bytes.Repeat([]byte("x"), 1024)
	results := 0
	for reply, err := range c.Job(ctx, "server.foo last.foo", client.Repeat(payload, 5000)) {
		if err != nil {
			t.Fatalf("after %d results: %v", results, err)
		}
		if len(reply) != len(payload) {
			t.Fatalf("a reply of %d bytes", len(reply))
		}
		results++
	}
	if results != 5000 {
		t.Fatalf("%d results; want 5000", results)
	}
	select {
	case d := <-cut:
		// The job took its first messages at start; the subscriber stopped
		// reading then, so it is cut within the bound of that, with a
		// margin for a loaded machine.
		if d > bound+10*time.Second {
			t.Errorf("the stalled subscriber was cut %v after the job began; the bound is %v", d, bound)
		}
		t.Logf("cut %v after the job began (bound %v)", d, bound)
	case <-time.After(10 * time.Second):
		t.Fatal("the job completed, but the stalled subscriber was never counted as cut")
	}
	// Reading now, the stalled subscriber gets what was sent before the cut,
	// then the reason.
	for {
		_, err := stalled.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "slow subscriber") || !strings.Contains(err.Error(), "SlowSubscriberTimeout") {
			t.Fatalf("the stalled subscription ended with %v; want ResourceExhausted naming the slow subscriber and SlowSubscriberTimeout", err)
		}
		break
	}
	palmtest.Eventually(t, 10*time.Second, "health reported the stall, then serving again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		sawDown := false
		for _, s := range health {
			if s == healthpb.HealthCheckResponse_NOT_SERVING {
				sawDown = true
			}
		}
		return sawDown && health[len(health)-1] == healthpb.HealthCheckResponse_SERVING
	})
}
