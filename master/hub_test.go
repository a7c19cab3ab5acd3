package master_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gopalm/palm"
	"github.com/gopalm/palm/client"
	"github.com/gopalm/palm/internal/palmtest"
	"github.com/gopalm/palm/master"
	"github.com/gopalm/palm/pipeline"
	"github.com/gopalm/palm/worker"
)

// hubCluster serves a pipelined server named server, a hub after it with
// two workers, and returns the server's address, the hub's and the hub.
func hubCluster(t *testing.T, opts ...master.HubOption) (string, string, *master.Hub) {
	t.Helper()
	quiet := palm.WithLogger(palmtest.Logger(t, hclog.Warn))
	srv, err := pipeline.NewServer("server", quiet, pipeline.Pipelined())
	if err != nil {
		t.Fatal(err)
	}
	srv.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) { return append([]byte("you sent me "), m...), nil })
	first := palmtest.ServeTCP(t, srv)
	hub, err := master.NewHub("hub", master.Upstream{Address: first, Topic: "server"}, append([]master.HubOption{quiet}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	addr := palmtest.ServeTCP(t, hub)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, name := range []string{"worker1", "worker2"} {
		w, err := worker.New(name, addr, quiet)
		if err != nil {
			t.Fatal(err)
		}
		w.HandleFunc("foo", func(_ context.Context, m []byte) ([]byte, error) {
			time.Sleep(100 * time.Microsecond) // some work, so both workers get a share
			return append([]byte(name+" processed "), m...), nil
		})
		go func() { w.Run(ctx); done <- struct{}{} }()
	}
	t.Cleanup(func() { cancel(); <-done; <-done })
	palmtest.Eventually(t, 10*time.Second, "the hub has its workers and its upstream", func() bool {
		return hub.Workers() == 2 && hub.Subscribed()
	})
	return first, addr, hub
}

func TestHub(t *testing.T) {
	first, addr, _ := hubCluster(t)
	c, err := client.New("server", first, client.SubAddress(addr), palm.WithLogger(palmtest.Logger(t, hclog.Warn)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	got, err := c.Eval(ctx, client.Steps("server.foo", "hub.foo"), []byte("a message"))
	if err != nil || !strings.HasSuffix(string(got), " processed you sent me a message") {
		t.Fatalf("Eval: %q, %v", got, err)
	}
	share := map[string]int{}
	n := 0
	for r, err := range c.Job(ctx, client.Steps("server.foo", "hub.foo"), client.Repeat([]byte("x"), 500)) {
		if err != nil {
			t.Fatal(err)
		}
		name, rest, _ := strings.Cut(string(r), " ")
		if rest != "processed you sent me x" {
			t.Fatalf("reply %q", r)
		}
		share[name]++
		n++
	}
	if n != 500 || share["worker1"] == 0 || share["worker2"] == 0 {
		t.Fatalf("got %d replies shared %v; want 500 shared by both workers", n, share)
	}
	// A step the hub cannot take reaches the client as an error.
	_, err = c.Eval(ctx, client.Steps("server.foo", "elsewhere.foo"), []byte("x"))
	if err == nil || !strings.Contains(err.Error(), `step "elsewhere.foo" is for server "elsewhere"`) {
		t.Fatalf("got %v", err)
	}
}

func TestHubOptions(t *testing.T) {
	up := master.Upstream{Address: "127.0.0.1:1", Topic: "server"}
	// Window on a Hub, or Backoff on a Master, does not compile (see
	// test/compile_test.go); values are checked by the constructors.
	if _, err := master.NewHub("hub", up, master.Backoff(time.Second, time.Millisecond)); err == nil || !strings.Contains(err.Error(), "master: Backoff(1s, 1ms): need 0 < min <= max") {
		t.Errorf("Backoff with min > max: %v", err)
	}
	if _, err := master.NewHub("hub", up, master.QueueSize(-1)); err == nil || !strings.Contains(err.Error(), "master: QueueSize(-1)") {
		t.Errorf("a negative QueueSize on a hub: %v", err)
	}
	if _, err := master.New("m", master.WindowBytes(-1)); err == nil || !strings.Contains(err.Error(), "master: WindowBytes(-1)") {
		t.Errorf("a negative WindowBytes: %v", err)
	}
	if _, err := master.NewHub("hub", master.Upstream{Topic: "server"}); err == nil || !strings.Contains(err.Error(), "no address") {
		t.Errorf("no address: %v", err)
	}
	if _, err := master.NewHub("hub", up, master.Backoff(time.Second, time.Second)); err != nil {
		t.Error(err)
	}
}
